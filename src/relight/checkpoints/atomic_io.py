"""Checkpoint writing that never leaves a truncated file (Lightning's checkpoint IO plugin)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from relight.files import OutOfSpaceError, atomic_write


def checkpoint_nbytes(checkpoint: Any) -> int:
    """About the bytes ``torch.save`` writes for ``checkpoint``: every distinct tensor
    storage, plus the archive's per-record headers and the pickled structure."""
    storages: dict[tuple[int, str], int] = {}
    records = 0

    def visit(value: Any) -> None:
        nonlocal records
        if torch.is_tensor(value):
            storage = value.untyped_storage()
            storages[storage.data_ptr(), str(storage.device)] = storage.nbytes()
            records += 1
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)
        elif isinstance(value, list | tuple | set):
            for item in value:
                visit(item)

    visit(checkpoint)
    return sum(storages.values()) + 256 * records + 65536


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file beside the target, synced, then renamed.

    A crash or ``kill -9`` while saving leaves the previous checkpoint intact, never a
    truncated one (Lightning's default writes into the system temp folder and copies, and
    holds a second in-memory copy of the checkpoint). A full disk or quota stops the run
    with an :class:`~relight.files.OutOfSpaceError` naming the folder and the size of the
    checkpoint; the temporary file is removed and the previous checkpoints stay loadable.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike[str], storage_options: Any = None
    ) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())

        try:
            atomic_write(path, write, size_hint=checkpoint_nbytes(checkpoint))
        except OutOfSpaceError as error:
            raise OutOfSpaceError(
                f"{error} Free {error.shortfall()} there (or move paths.log_dir), then rerun "
                "the same command: it resumes from the newest checkpoint.",
                error.folder,
                error.needed,
                error.free,
            ) from error.__cause__
