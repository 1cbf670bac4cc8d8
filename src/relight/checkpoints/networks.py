"""S3Net out of a checkpoint file: a ``relight-train`` checkpoint (any variant), the state
dict ``relight-convert`` writes, or the authors' ``weight.pkl`` (converted on the fly)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from relight.models import CheckpointConversionError, S3Net, convert_authors_checkpoint
from relight.models.weight_files import CheckpointError, read_checkpoint, state_dict_from

#: What :func:`net_from_any_checkpoint` reads (the help of the command-line flags).
ANY_CHECKPOINT_HELP = "a relight-train checkpoint, a relight-convert .pt or the authors' weight.pkl"


def net_from_checkpoint(path: str | os.PathLike[str]) -> tuple[S3Net, dict[str, Any]]:
    """Rebuild the S3Net stored in a relight training checkpoint, in eval mode; returns
    (net, net_config)."""
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
    return net.eval(), config


def net_from_any_checkpoint(path: str | os.PathLike[str]) -> tuple[S3Net, dict[str, Any], str]:
    """Rebuild S3Net from any checkpoint relight knows, in eval mode; returns (net,
    net_config, kind).

    ``kind`` is ``"relight"`` (a ``relight-train`` checkpoint, any variant), ``"converted"``
    (the state dict ``relight-convert`` writes: the paper's model) or ``"authors"`` (the
    authors' ``weight.pkl``, converted on the fly by
    :func:`relight.models.authors_checkpoint.convert_authors_checkpoint`).
    """
    checkpoint = read_checkpoint(path)
    if _net_config(checkpoint):
        net, config = _net_from_training_checkpoint(checkpoint, path)
        return net, config, "relight"
    try:
        state = state_dict_from(checkpoint, str(path))
    except CheckpointError as error:
        raise CheckpointError(
            f"{path}: not a checkpoint relight can use: expected a relight-train checkpoint "
            "(with hyper_parameters.net_config), a relight-convert state dict, or the "
            "authors' weight.pkl (a dict with 'state_dict')"
        ) from error
    net = S3Net(encoder_weights="none")  # the paper's model, weights from the file
    if any(k.startswith(("attention16.", "enhancement.")) for k in state):
        load_state_strict(net, state, str(path))
        return net.eval(), net.hparams(), "converted"
    try:
        converted = convert_authors_checkpoint(state, net.state_dict())
    except CheckpointConversionError as error:
        raise CheckpointError(
            f"{path}: neither a relight checkpoint nor the authors' S3Net weight.pkl ({error})"
        ) from error
    load_state_strict(net, converted, str(path))
    return net.eval(), net.hparams(), "authors"


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


def describe_checkpoint(path: str | os.PathLike[str]) -> str:
    """Which run, variant and epoch a checkpoint file comes from, read from its run
    folder (``.hydra/config.yaml``) and its name (``best.ckpt`` points at
    ``epoch_NNN.ckpt``) without loading it; for a file outside a run folder, its path."""
    path = Path(path).expanduser()
    resolved = path.resolve()
    saved = resolved.parents[1] / ".hydra" / "config.yaml" if len(resolved.parents) > 1 else None
    if saved is None or not saved.is_file():
        return str(path)
    config = OmegaConf.load(saved)
    match = re.fullmatch(r"(epoch|step)_0*(\d+)\.ckpt", resolved.name)
    when = f"{match[1]} {match[2]}" if match else resolved.stem
    name = f"{path.name} -> {resolved.name}" if path.name != resolved.name else path.name
    return (
        f"{path} (run {config.get('run_name')}, variant {config.get('variant')}, {when}: "
        f"{name} in {resolved.parents[1]})"
    )
