"""Finding and loading relight checkpoints (one error style for every entry point)."""

from __future__ import annotations

import os
import random
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from relight.files import OutOfSpaceError, atomic_write
from relight.models import CheckpointConversionError, S3Net, convert_authors_checkpoint

#: What :func:`net_from_any_checkpoint` reads (the help of the command-line flags).
ANY_CHECKPOINT_HELP = "a relight-train checkpoint, a relight-convert .pt or the authors' weight.pkl"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or belongs to another model."""


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a Lightning checkpoint on the CPU without running pickled code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path}: not a readable relight checkpoint ({type(error).__name__}: {error}). "
            "A checkpoint cut short by a crash cannot be used: take the previous one."
        ) from error


def net_from_checkpoint(path: str | os.PathLike[str]) -> tuple[S3Net, dict[str, Any]]:
    """Rebuild the S3Net stored in a relight training checkpoint; returns (net, net_config)."""
    return _net_from_training_checkpoint(read_checkpoint(path), path)


def _net_config(checkpoint: object) -> dict[str, Any]:
    """The ``hyper_parameters.net_config`` of a training checkpoint (empty if there is none)."""
    if not isinstance(checkpoint, Mapping):
        return {}
    hyper_parameters = checkpoint.get("hyper_parameters")
    if not isinstance(hyper_parameters, Mapping):
        return {}
    return dict(hyper_parameters.get("net_config") or {})


def _net_from_training_checkpoint(
    checkpoint: Mapping[str, Any], path: str | os.PathLike[str]
) -> tuple[S3Net, dict[str, Any]]:
    config = _net_config(checkpoint)
    if not config:
        raise CheckpointError(
            f"{path}: no 'net_config' in the checkpoint: not written by relight-train"
        )
    config.pop("_target_", None)
    config.update(encoder_weights="none", allow_random_init=False)  # weights come from the file
    net = S3Net(**config)
    state = {
        k.removeprefix("net."): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith("net.")
    }
    load_state_strict(net, state, str(path))
    return net, config


def net_from_any_checkpoint(path: str | os.PathLike[str]) -> tuple[S3Net, dict[str, Any], str]:
    """Rebuild S3Net from any checkpoint relight knows; returns (net, net_config, kind).

    ``kind`` is ``"relight"`` (a ``relight-train`` checkpoint, any variant), ``"converted"``
    (the state dict ``relight-convert`` writes: the paper's model) or ``"authors"`` (the
    authors' ``weight.pkl``, converted on the fly by
    :func:`relight.models.authors_checkpoint.convert_authors_checkpoint`).
    """
    checkpoint = read_checkpoint(path)
    if _net_config(checkpoint):
        net, config = _net_from_training_checkpoint(checkpoint, path)
        return net, config, "relight"
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if (
        not isinstance(state, Mapping)
        or not state
        or not all(torch.is_tensor(v) for v in state.values())
    ):
        raise CheckpointError(
            f"{path}: not a checkpoint relight can use: expected a relight-train checkpoint "
            "(with hyper_parameters.net_config), a relight-convert state dict, or the "
            "authors' weight.pkl (a dict with 'state_dict')"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = S3Net(encoder_weights="none")  # the paper's model, weights from the file
    if any(k.startswith(("attention16.", "enhancement.")) for k in state):
        load_state_strict(net, state, str(path))
        return net, net.hparams(), "converted"
    try:
        converted = convert_authors_checkpoint(state, net.state_dict())
    except CheckpointConversionError as error:
        raise CheckpointError(
            f"{path}: neither a relight checkpoint nor the authors' S3Net weight.pkl ({error})"
        ) from error
    load_state_strict(net, converted, str(path))
    return net, net.hparams(), "authors"


def load_state_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists the mismatching keys."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", shapes),
        ):
            if keys:
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:8])}")
        raise CheckpointError(
            f"{origin}: the checkpoint does not match this model variant ({'; '.join(parts)})"
        )
    net.load_state_dict(state, strict=True)


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint file cannot be used (``None`` when it looks complete).

    ``torch.save`` writes a zip archive whose index sits at the very end, so a file cut
    short by a crash is caught here without loading hundreds of megabytes.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return "not a torch checkpoint (no data.pkl inside)"
    except (OSError, zipfile.BadZipFile) as error:
        return f"incomplete or corrupt ({error}); probably cut short by a crash"
    return None


def newest_complete_checkpoint(
    root: Path, patterns: list[str], exclude: Path | None = None, skip_closed: bool = False
) -> Path | None:
    """The most recent complete checkpoint matching any glob pattern under ``root``.

    Files inside ``exclude`` (the current run's folder) are ignored, and with
    ``skip_closed`` so are runs that finished or were already resumed (see
    :func:`close_run`). A truncated file is reported with a warning and the next older
    checkpoint is taken instead.
    """
    candidates = [
        p for pattern in patterns for p in root.glob(pattern)
        if (exclude is None or exclude.resolve() not in p.resolve().parents)
        and not (skip_closed and run_closed(p.parents[1]))
    ]  # fmt: skip
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        warnings.warn(
            f"skipping checkpoint {path}: {problem}; falling back to the previous one",
            stacklevel=2,
        )
    return None


#: Marker files of a run folder that must not be resumed again.
FINISHED, RESUMED = "FINISHED", "RESUMED"


def close_run(run_dir: Path, marker: str, text: str = "") -> None:
    """Mark a run folder as finished, or as resumed by another run (``text`` says which)."""
    (Path(run_dir) / marker).write_text(text)


def run_closed(run_dir: Path) -> bool:
    """Whether a run folder finished or was resumed by a later run."""
    return (run_dir / FINISHED).exists() or (run_dir / RESUMED).exists()


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


def rng_states() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states, as ``weights_only``-safe values."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        kind, keys, position, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def link(target: Path, link_path: Path) -> None:
    """Point ``link_path`` at ``target`` (a relative symlink), replacing it atomically."""
    link_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = link_path.with_name(f".{link_path.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link_path.parent))
    os.replace(tmp, link_path)
