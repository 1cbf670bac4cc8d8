"""Depth for photos that come without a depth map: a monocular estimator (Depth Anything).

:func:`load_depth_model` returns a :class:`MonocularDepth`; call it on a (3, H, W) RGB
image in [0, 1] and it returns VIDIT's ``normalized_depth`` (H, W) — distance, near =
small, the farthest point at 1 — what S3Net was trained on.

The default, Depth Anything V2 Small (``depth-anything/Depth-Anything-V2-Small-hf``,
25 M parameters, Apache-2.0, run through ``transformers``), outputs *relative inverse
depth* (disparity, near = large, known only up to a scale and a shift). It is converted by
:func:`relight.data.depth_conventions.normalise_depth` with the ``disparity`` rule, which
takes the shift to be zero: distance = ``lo / clip(disparity, lo, hi)``, the farthest
point at most :data:`~relight.data.depth_conventions.MAX_DISPARITY_RATIO` times the
nearest. Any Depth Anything model (V1 or V2) may be named; metric ones
(``depth_estimation_type: metric``) output metres and use the ``distance`` rule.

The estimator runs at its processor's resolution (518 pixels on the short side for Depth
Anything, aspect ratio kept); its map is resized to the image's size like any depth map
(:func:`relight.data.transforms.resize_depth`: bilinear when enlarging, no ringing).

Weights follow the policy of :mod:`relight.models.weights`: the Hugging Face cache, a
local folder (``config.json``, ``preprocessor_config.json`` and ``model.safetensors``, as
``save_pretrained`` or ``hf download REPO --local-dir DIR`` write them), or a download when
the hub answers; otherwise :class:`WeightsUnavailableError` within seconds, naming the
model and the three ways to provide it. Needs the ``depth`` extra
(``pip install 'relight[depth]'``: ``transformers``), imported only when a model loads.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from relight.data.depth_conventions import normalise_depth
from relight.data.formats import DataFormatError
from relight.data.transforms import resize_depth
from relight.models.weights import (
    HUB_FILENAMES,
    WeightsUnavailableError,
    cached_hub_file,
    hub_unavailable_reason,
)

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
#: The configuration files a depth model needs besides its weights.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_FILES = (*HUB_FILENAMES, "model.safetensors.index.json")
#: What a Depth Anything head outputs (``depth_estimation_type``), as a depth convention.
OUTPUT_CONVENTIONS = {"relative": "disparity", "metric": "distance"}
SUPPORTED_MODEL_TYPE = "depth_anything"
INSTALL_HINT = "pip install 'relight[depth]' (or: pip install -e '.[depth]')"


@dataclass
class MonocularDepth:
    """A depth-estimation network and its image processor (``transformers``) that turn an
    RGB image into VIDIT ``normalized_depth``; ``convention`` says what the network outputs
    (``disparity``: relative inverse depth, ``distance``: metric depth)."""

    model: nn.Module
    processor: Any
    convention: str = "disparity"
    name: str = DEFAULT_DEPTH_MODEL
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.model = self.model.to(self.device).eval()

    @torch.inference_mode()
    def estimate(self, image: torch.Tensor) -> torch.Tensor:
        """The network's raw output for a (3, H, W) image in [0, 1], resized to (H, W)."""
        inputs = self.processor(images=image, do_rescale=False, return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, torch.float32)
        predicted = self.model(pixel_values=pixel_values).predicted_depth
        return resize_depth(predicted[0].float().cpu(), tuple(image.shape[-2:]))

    def __call__(self, image: torch.Tensor, origin: str = "image") -> torch.Tensor:
        """VIDIT ``normalized_depth`` (H, W) of a (3, H, W) image in [0, 1]; ``origin``
        (its file) is named in the error when the estimate has no positive value."""
        estimate = self.estimate(image)
        if not estimate.max() > 0:
            raise DataFormatError(
                f"{origin}: the depth model '{self.name}' found no depth in this image (its "
                "output has no positive value); give its depth map instead"
            )
        return normalise_depth(estimate, self.convention)


def unavailable_message(model: str, reason: str) -> str:
    """The error text for a depth model whose weights cannot be had: why, and the three ways."""
    return (
        f"weights of the depth model '{model}' are not available: {reason}.\n"
        "Provide them in one of three ways:\n"
        "  1. fill the Hugging Face cache once on a machine with network "
        f"(`hf download {model}`), then copy ~/.cache/huggingface (or point HF_HOME at it);\n"
        "  2. give a local folder: --depth-model /path/to/folder holding config.json, "
        "preprocessor_config.json and model.safetensors "
        f"(`hf download {model} --local-dir /path/to/folder`);\n"
        "  3. give the depth maps yourself: --input-depth and --guide-depth "
        "(see docs/predict.md, 'Depth maps: what the model expects')."
    )


def _looks_like_path(model: str) -> bool:
    """Whether ``model`` can only be a path (a hub repo id is ``name`` or ``owner/name``)."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _folder_missing(folder: Path) -> list[str]:
    """The files a depth-model folder lacks (empty when it is complete)."""
    missing = [name for name in CONFIG_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    return missing


def locate_depth_model(model: str | os.PathLike[str]) -> tuple[str, bool]:
    """Where to load ``model`` from and whether only local files may be used.

    A local folder (checked to hold the config, processor config and weights), else a hub
    repo id found complete in the Hugging Face cache, else the repo id to download when the
    hub answers. Raises :class:`WeightsUnavailableError` (the three ways) otherwise.
    """
    name = str(model)
    folder = Path(name).expanduser()
    if folder.exists() or _looks_like_path(name):
        if not folder.is_dir():
            reason = f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist"
            raise WeightsUnavailableError(unavailable_message(name, reason))
        missing = _folder_missing(folder)
        if missing:
            reason = f"the folder {folder} lacks {', '.join(missing)}"
            raise WeightsUnavailableError(unavailable_message(name, reason))
        return str(folder), True
    cached = all(cached_hub_file(name, (config,)) for config in CONFIG_FILES)
    if cached and cached_hub_file(name, WEIGHT_FILES) is not None:
        return name, True
    blocked = hub_unavailable_reason()
    if blocked:
        reason = f"it is not in the local Hugging Face cache and {blocked}"
        raise WeightsUnavailableError(unavailable_message(name, reason))
    return name, False


class DepthExtraMissingError(ImportError):
    """Depth maps must be estimated and ``transformers`` (the ``depth`` extra) is missing."""


def load_depth_model(
    model: str | os.PathLike[str] = DEFAULT_DEPTH_MODEL, device: torch.device | str = "cpu"
) -> MonocularDepth:
    """A Depth Anything model (hub repo id or local folder) on ``device``; see the module doc.

    Raises :class:`DepthExtraMissingError` (an ``ImportError`` saying how to install the
    ``depth`` extra) without ``transformers``,
    :class:`WeightsUnavailableError` when the weights cannot be had, ``ValueError`` for a
    model that is not a Depth Anything model.
    """
    name = str(model)
    if importlib.util.find_spec("transformers") is None:
        raise DepthExtraMissingError(
            f"estimating depth maps needs the 'depth' extra: {INSTALL_HINT}; or give the "
            "depth maps yourself (--input-depth, --guide-depth)"
        )
    source, local_only = locate_depth_model(model)
    import transformers

    def fetch(loader: Any, **kwargs: Any) -> Any:
        try:
            return loader.from_pretrained(source, local_files_only=local_only, **kwargs)
        except Exception as error:  # missing files, network and format errors: many types
            how = f"be loaded from {source}" if local_only else "be downloaded from the hub"
            reason = f"it could not {how} ({type(error).__name__}: {error})"
            raise WeightsUnavailableError(unavailable_message(name, reason)) from error

    config = fetch(transformers.AutoConfig)
    if config.model_type != SUPPORTED_MODEL_TYPE:
        raise ValueError(
            f"depth model '{name}' is a '{config.model_type}' model; relight converts the "
            f"output of Depth Anything models (model_type '{SUPPORTED_MODEL_TYPE}'), e.g. "
            f"{DEFAULT_DEPTH_MODEL}"
        )
    processor = fetch(transformers.AutoImageProcessor)
    net = fetch(transformers.AutoModelForDepthEstimation, config=config, dtype=torch.float32)
    convention = OUTPUT_CONVENTIONS[config.depth_estimation_type]
    return MonocularDepth(net, processor, convention, name, torch.device(device))
