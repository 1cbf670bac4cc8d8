"""Relight checkpoints: the networks inside them, resuming, atomic writes, RNG state.

Reading a file is :func:`relight.models.weight_files.read_checkpoint` (the one reader, the
one :class:`CheckpointError`), re-exported here. The Lightning checkpoint IO is imported on
first use (:mod:`relight.lazy_exports`).
"""

from typing import TYPE_CHECKING

from relight.checkpoints.networks import (
    ANY_CHECKPOINT_HELP,
    describe_checkpoint,
    load_state_strict,
    net_from_any_checkpoint,
    net_from_checkpoint,
)
from relight.checkpoints.resume import (
    FINISHED,
    RESUMABLE,
    RESUMED,
    RESUMED_BY,
    checkpoint_problem,
    close_run,
    newest_complete_checkpoint,
    resolve_ckpt_path,
    run_closed,
    run_key,
    write_run_key,
)
from relight.checkpoints.rng import rng_states, set_rng_states
from relight.lazy_exports import lazy_exports
from relight.models.weight_files import CheckpointError, read_checkpoint

if TYPE_CHECKING:
    from relight.checkpoints.atomic_io import AtomicCheckpointIO, checkpoint_nbytes

__getattr__ = lazy_exports(
    __name__,
    {name: "relight.checkpoints.atomic_io" for name in ("AtomicCheckpointIO", "checkpoint_nbytes")},
)

__all__ = [
    "ANY_CHECKPOINT_HELP",
    "FINISHED",
    "RESUMABLE",
    "RESUMED",
    "RESUMED_BY",
    "AtomicCheckpointIO",
    "CheckpointError",
    "checkpoint_nbytes",
    "checkpoint_problem",
    "close_run",
    "describe_checkpoint",
    "load_state_strict",
    "net_from_any_checkpoint",
    "net_from_checkpoint",
    "newest_complete_checkpoint",
    "read_checkpoint",
    "resolve_ckpt_path",
    "rng_states",
    "run_closed",
    "run_key",
    "write_run_key",
    "set_rng_states",
]
