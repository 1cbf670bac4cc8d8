"""Reading checkpoint and weight files: the one reader, and the one error naming the file.

Every file relight loads (a ``relight-train`` checkpoint, a ``relight-convert`` state dict,
the authors' ``weight.pkl``, a local weights file for an encoder, VGG19 or LPIPS backbone)
goes through :func:`read_checkpoint`: ``.safetensors`` through safetensors, anything else
through ``torch.load(weights_only=True)`` (no pickled code runs). :func:`load_weights`
takes the state dict out of it the way timm does (a nested ``state_dict``/``model``, the
``module.``/``_orig_mod.`` prefixes of DataParallel and ``torch.compile`` removed).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

PathLike = str | os.PathLike[str]


class CheckpointError(ValueError):
    """A checkpoint or weights file is missing, unreadable or belongs to another model."""


def read_checkpoint(path: PathLike, what: str = "relight checkpoint") -> Any:
    """The content of a checkpoint or weights file, loaded on the CPU without running
    pickled code; a :class:`CheckpointError` that names the file and says what is wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from error
    problem = torch_file_problem(path)
    if problem:
        raise CheckpointError(f"{path}: not a readable {what}: {problem}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise CheckpointError(
            f"{path}: not a readable {what}: it holds objects other than tensors and plain "
            f"values, which relight does not unpickle ({type(error).__name__})"
        ) from error


def torch_file_problem(path: Path) -> str | None:
    """Why ``path`` is no complete file of ``torch.save`` (``None`` when it looks like one),
    from its first bytes and zip index alone (cheap: nothing is loaded)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        return "the file is empty (0 bytes)"
    if head[:4] == b"PK\x03\x04":  # torch.save's zip format: its index is at the very end
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile) as error:
            return f"incomplete or corrupt ({error}); probably cut short by a crash or a copy"
        if not any(name.endswith("data.pkl") for name in names):
            return "a zip archive, but no torch checkpoint (no data.pkl inside)"
        return None
    if head[:1] == b"\x80":  # the legacy (before torch 1.6) pickle format
        return None
    return f"not a file torch.save or safetensors wrote at all (it starts with {head!r})"


def state_dict_from(content: Any, origin: str) -> dict[str, torch.Tensor]:
    """The tensors of what :func:`read_checkpoint` returned: a nested ``state_dict`` or
    ``model`` entry or the mapping itself, wrapper prefixes removed (timm's rules)."""
    if isinstance(content, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(content.get(key), Mapping):
                content = content[key]
                break
    if (
        not isinstance(content, Mapping)
        or not content
        or not all(torch.is_tensor(v) for v in content.values())
    ):
        raise CheckpointError(
            f"{origin}: no state dict inside (expected a mapping of tensors, or one under "
            "'state_dict' or 'model')"
        )
    from timm.models import clean_state_dict  # on first use: importing timm takes about 1 s

    return clean_state_dict(dict(content))


def load_weights(path: PathLike, what: str = "weights file") -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint or weights file (:func:`read_checkpoint` +
    :func:`state_dict_from`)."""
    return state_dict_from(read_checkpoint(path, what), str(Path(path).expanduser()))
