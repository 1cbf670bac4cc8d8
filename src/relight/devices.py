"""Which device a command runs on: ``--device``/``device=`` checked against this machine."""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """The device asked for is not on this machine."""


def pick_device(name: str = "auto", option: str = "--device") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``;
    a :class:`DeviceUnavailableError` saying what there is when the machine lacks it, and
    what to give instead spelt as the command takes it: ``option`` is its flag
    (``--device``) or its config key (``device``, as in ``relight-eval device=cpu``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceUnavailableError(f"unknown device '{name}' ({error})") from error
    instead = f"use {spelt(option, 'cpu')} (or {spelt(option, 'auto')})"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device '{name}': CUDA is not available on this machine (torch "
                f"{torch.__version__}); {instead}"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device '{name}': this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device '{name}': Apple MPS is not available here; {instead}")
    return device


def spelt(option: str, value: str) -> str:
    """``--device cpu`` for a flag, ``device=cpu`` for a config key."""
    return f"{option} {value}" if option.startswith("-") else f"{option}={value}"
