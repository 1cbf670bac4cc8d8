"""Which device a command runs on: ``--device``/``device=`` checked against this machine."""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """The device asked for is not on this machine."""


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``;
    a :class:`DeviceUnavailableError` saying what there is when the machine lacks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceUnavailableError(f"unknown device '{name}' ({error})") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device '{name}': CUDA is not available on this machine (torch "
                f"{torch.__version__}); use --device cpu (or auto)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device '{name}': this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device '{name}': Apple MPS is not available here")
    return device
