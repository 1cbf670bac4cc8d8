"""The single place where pretrained weights are resolved (timm models, LPIPS backbones).

Policy, shared by every network that can start from ImageNet weights:

- ``"imagenet"``: the model's default timm weights, found in the Hugging Face cache
  (``HF_HOME``/``HF_HUB_CACHE``) or downloaded when the hub is reachable and
  ``HF_HUB_OFFLINE`` is not set. The hub is probed first (a few seconds at most), so a
  machine without network fails at once instead of retrying for ~50 s.
- a path to a local file (``.safetensors``, ``.pth``, ``.bin``): loaded through timm's
  ``pretrained_cfg_overlay=dict(file=...)``.
- ``"none"``: random initialisation, on purpose.

When weights are requested but cannot be had, :class:`WeightsUnavailableError` says which
file is missing and the three ways to provide it. ``allow_random_init=True`` downgrades
that to a loud warning and a random init. There is never a silent random init.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from relight.files import atomic_write
from relight.models.weight_files import CheckpointError, load_weights

log = logging.getLogger(__name__)

HUB_ENDPOINT = "https://huggingface.co"
#: Seconds a silent server may keep a weights download waiting before it counts as failed.
DOWNLOAD_TIMEOUT_S = 20.0
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_CHOICES = ("imagenet", "none", "<path to a local weights file>")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but are neither cached, local nor downloadable."""


def network_errors() -> tuple[type[BaseException], ...]:
    """What a failed download raises: OS and socket errors (those of ``urllib``,
    ``requests`` and the Hugging Face hub client are ``OSError`` subclasses) and
    ``httpx``'s, when present. Anything else (a file of the wrong shape, a bug) is not a
    network problem."""
    errors: tuple[type[BaseException], ...] = (OSError,)
    for module in ("httpx", "httpx2"):
        try:
            errors += (__import__(module).HTTPError,)
        except (ImportError, AttributeError):
            pass
    return errors


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks the Hugging Face hub client never to connect."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_host() -> str:
    """The Hugging Face hub's host name (``HF_ENDPOINT`` when a mirror is set)."""
    endpoint = os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT
    return urlparse(endpoint).hostname or endpoint


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_unavailable_reason(probe: bool = True) -> str | None:
    """Why the Hugging Face hub cannot be asked now (``HF_HUB_OFFLINE``, or, when ``probe``,
    its host does not answer within a few seconds), or ``None`` when it can."""
    if hub_offline():
        return "HF_HUB_OFFLINE=1"
    if probe and not host_reachable(hub_host()):
        return f"{hub_host()} is unreachable"
    return None


def cached_hub_file(repo_id: str, filenames: tuple[str, ...] = HUB_FILENAMES) -> Path | None:
    """The first of ``filenames`` (by default a weights file) of ``repo_id`` in the local
    Hugging Face cache, if any."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _missing_message(what: str, source: str, reason: str) -> str:
    return (
        f"ImageNet weights for {what} are not available: {source} {reason}.\n"
        "Provide them in one of three ways:\n"
        f"  1. fill the Hugging Face cache once on a machine with network "
        f"(e.g. `hf download {source}` or any timm run with pretrained=True), then copy "
        "~/.cache/huggingface (or point HF_HOME at it);\n"
        "  2. give a local file: set the weights option to /path/to/weights.safetensors "
        "(or .pth);\n"
        "  3. train from scratch on purpose: set the weights option to 'none' "
        "(or allow_random_init=true to continue with random weights and a warning)."
    )


def create_timm_model(
    name: str,
    weights: str | os.PathLike[str] | None = "imagenet",
    *,
    allow_random_init: bool = False,
    what: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a timm model with ``weights`` resolved by the policy in this module's docstring.

    Args:
        name: a timm model name, e.g. ``"res2net101d"`` or ``"vgg19"``.
        weights: ``"imagenet"``, ``"none"``/``None`` or the path to a local weights file.
        allow_random_init: warn and fall back to random weights instead of raising when
            ImageNet weights are missing.
        what: how to name the network in messages (defaults to the model name).
        **kwargs: passed to :func:`timm.create_model` (``features_only``, ``in_chans``, ...).
    """
    import timm  # on first use: every console script imports this module (for its errors)

    what = what or f"timm model '{name}'"
    choice = "none" if weights is None else str(weights)
    if choice.lower() == "none":
        return timm.create_model(name, pretrained=False, **kwargs)
    if choice.lower() != "imagenet":
        path = Path(choice).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file for {what} not found: {path} "
                f"(expected one of {', '.join(WEIGHT_CHOICES)})"
            )
        weights = load_weights(path, f"weights file for {what}")  # empty, corrupt: named
        try:
            model = timm.create_model(
                name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
            )
        except (RuntimeError, KeyError) as error:  # names or shapes that do not fit: a
            # strict load's RuntimeError; older timm's stem adaptation, a KeyError
            problem = str(error).strip().splitlines()[-1].strip()[:300]
            raise CheckpointError(
                f"{path}: not weights of {what} ({type(error).__name__}: {problem})"
            ) from error
        check_weights_landed(model, weights, path, what)
        return model

    cfg = timm.models.get_pretrained_cfg(name)
    repo_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo_id:
        # Weights served from a plain URL (torch hub cache); timm handles the cache itself.
        source, cached = (getattr(cfg, "url", "") or name), None
    else:
        source, cached = repo_id, cached_hub_file(repo_id)
    if cached is not None:
        log.info("loading %s weights from the HF cache: %s", what, cached)
        return timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)}, **kwargs
        )

    blocked = hub_unavailable_reason(probe=bool(repo_id))
    reason = blocked and f"is not in the local Hugging Face cache and {blocked}"
    if reason is None:
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except network_errors() as error:
            reason = f"could not be downloaded ({type(error).__name__}: {error})"
    message = _missing_message(what, source, reason)
    if not allow_random_init:
        raise WeightsUnavailableError(message)
    warnings.warn(
        f"RANDOM INIT: {message}\nContinuing with RANDOM weights because allow_random_init=true.",
        stacklevel=2,
    )
    log.warning("RANDOM INIT of %s: ImageNet weights unavailable (%s)", what, source)
    return timm.create_model(name, pretrained=False, **kwargs)


#: The share of a model's tensors that may differ from every tensor of its weights file:
#: timm adapts the stem to other input channels and reshapes some heads (VGG's classifier).
UNLOADED_SHARE = 0.25


def check_weights_landed(
    model: nn.Module, weights: dict[str, torch.Tensor], path: Path, what: str
) -> None:
    """A :class:`CheckpointError` naming ``path`` when ``model`` did not get its tensors from
    ``weights`` (the file's): timm loads a feature extractor without checking names, so a
    file of another model left it silently at its random init. Tensors are matched by shape
    and value, not name (timm renames some on loading)."""
    by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for tensor in weights.values():
        by_shape.setdefault(tuple(tensor.shape), []).append(tensor)

    def loaded(name: str, tensor: torch.Tensor) -> bool:
        same = weights.get(name)
        candidates = ([same] if same is not None else []) + by_shape.get(tuple(tensor.shape), [])
        return any(
            c.shape == tensor.shape and torch.equal(c.to(tensor.dtype), tensor) for c in candidates
        )

    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    unloaded = [name for name, tensor in state.items() if not loaded(name, tensor)]
    if len(unloaded) > UNLOADED_SHARE * len(state):
        raise CheckpointError(
            f"{path}: not weights of {what}: {len(unloaded)} of its {len(state)} tensors "
            f"are in no tensor of the file (e.g. {', '.join(unloaded[:3])}); the file holds "
            f"{len(weights)} (e.g. {', '.join(list(weights)[:3])})"
        )


#: torchvision ImageNet weights of the LPIPS backbones (file names in the torch hub cache).
TORCHVISION_BACKBONES = {
    "alex": ("alexnet", "AlexNet_Weights"),
    "vgg": ("vgg16", "VGG16_Weights"),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights"),
}


def torchvision_state_dict(
    net: str, weights: str | os.PathLike[str] = "imagenet"
) -> dict[str, torch.Tensor]:
    """ImageNet state dict of a torchvision classifier used as an LPIPS backbone.

    ``weights="imagenet"`` reads the torch hub cache (``TORCH_HOME``, default
    ``~/.cache/torch/hub/checkpoints``) and downloads only when the host answers; a path
    reads that file. Raises :class:`WeightsUnavailableError` naming the missing file.
    """
    import torchvision

    arch, enum_name = TORCHVISION_BACKBONES[net]
    if str(weights).lower() != "imagenet":
        return load_weights(weights, f"weights file of the LPIPS backbone '{arch}'")
    url = getattr(torchvision.models, enum_name).IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return load_weights(cached, f"weights file of the LPIPS backbone '{arch}'")
    host = url.split("/")[2]

    def unavailable(reason: str) -> WeightsUnavailableError:
        return WeightsUnavailableError(
            f"ImageNet weights of the LPIPS backbone '{arch}' are not available: {cached} "
            f"does not exist and {reason}.\n"
            "Provide them in one of three ways:\n"
            f"  1. download {url} on a machine with network and put it at {cached} "
            "(or set TORCH_HOME);\n"
            "  2. give a local file: set the LPIPS backbone weights option to its path;\n"
            "  3. run without LPIPS/MPS (training and evaluation do this with a warning "
            "unless the config demands LPIPS)."
        )

    if hub_offline() or not host_reachable(host):
        raise unavailable(f"{host} cannot be reached")
    try:
        download(url, cached)
    except network_errors() as error:
        raise unavailable(f"the download failed ({type(error).__name__}: {error})") from error
    return load_weights(cached, f"weights file of the LPIPS backbone '{arch}'")


def download(url: str, path: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` into ``path`` atomically (a partial download leaves nothing); a server
    that stays silent for ``timeout`` seconds fails the request (only this request)."""

    def write(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)

    log.info("downloading %s to %s", url, path)
    return atomic_write(path, write)
