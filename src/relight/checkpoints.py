"""Finding and loading relight checkpoints (one error style for every entry point)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from relight.models import S3Net


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
    checkpoint = read_checkpoint(path)
    config = dict(checkpoint.get("hyper_parameters", {}).get("net_config") or {})
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


def newest_last_checkpoint(
    root: Path, patterns: list[str], exclude: Path | None = None
) -> Path | None:
    """The most recent ``last.ckpt`` matching any glob pattern under ``root`` (outside
    ``exclude``, the current run's folder)."""
    candidates = [
        p for pattern in patterns for p in root.glob(pattern)
        if exclude is None or exclude.resolve() not in p.resolve().parents
    ]  # fmt: skip
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def link(target: Path, link_path: Path) -> None:
    """Point ``link_path`` at ``target`` (a relative symlink), replacing it atomically."""
    link_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = link_path.with_name(f".{link_path.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link_path.parent))
    os.replace(tmp, link_path)
