"""One pair of your own files as a model item: images of any size and format, depth maps
in any convention (or estimated when missing), the guide resized to the input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from relight.data.depth_conventions import normalise_depth
from relight.data.formats import (
    DataFormatError,
    depth_shape,
    image_size,
    read_depth,
    read_image,
    write_depth,
)
from relight.data.pairs import PairFiles
from relight.data.transforms import resize_depth, resize_image
from relight.models.monocular_depth import MonocularDepth

#: A depth map whose aspect ratio differs from its image's by more than this is refused.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class DepthOptions:
    """How depth files are read: their convention, value range and whether pickles load;
    ``guide_convention`` and ``guide_range`` for the guide's depth when it differs (e.g. a
    VIDIT guide for your own photo), by default the same as the input's."""

    convention: str = "vidit"
    depth_range: tuple[float, float] | None = None
    allow_pickle: bool = True
    guide_convention: str | None = None
    guide_range: tuple[float, float] | None = None

    def for_guide(self) -> DepthOptions:
        """The options of the guide's depth."""
        if self.guide_convention is None:
            return self
        return DepthOptions(self.guide_convention, self.guide_range, self.allow_pickle)


def check_aspect(depth_path: Path, depth_size: tuple[int, int], size: tuple[int, int]) -> None:
    """A :class:`DataFormatError` naming the depth file when its aspect ratio is not its
    image's (another resolution of the same framing is fine: it is resized)."""
    h, w = depth_size
    if abs((h / w) / (size[0] / size[1]) - 1) > ASPECT_TOLERANCE:
        raise DataFormatError(
            f"{depth_path}: depth of {h}x{w} does not match its image's aspect ratio "
            f"({size[0]}x{size[1]})"
        )


def check_pair_files(pair: PairFiles, allow_pickle: bool = True) -> None:
    """Every file of a pair exists and reads as what it should be, from headers alone
    (fast: before a checkpoint is loaded), and each depth map frames its image."""
    for image, depth in ((pair.input, pair.input_depth), (pair.guide, pair.guide_depth)):
        size = image_size(image)
        if depth is not None:
            check_aspect(depth, depth_shape(depth, allow_pickle), size)
    if pair.target is not None:
        image_size(pair.target)


def read_depth_as(path: Path, size: tuple[int, int], options: DepthOptions) -> torch.Tensor:
    """A depth file as VIDIT ``normalized_depth`` of its image's (H, W) ``size``.

    A depth map of another resolution (a monocular estimate often is) is resized when its
    aspect ratio matches the image's; otherwise a :class:`DataFormatError` names the file.
    """
    depth = read_depth(path, options.allow_pickle)
    depth = normalise_depth(depth, options.convention, options.depth_range, origin=str(path))
    if tuple(depth.shape) != size:
        check_aspect(path, tuple(depth.shape), size)
        depth = resize_depth(depth, size)
    return depth


def depth_of(
    image: torch.Tensor,
    image_path: Path,
    depth_path: Path | None,
    options: DepthOptions,
    estimator: MonocularDepth | None = None,
    save_dir: Path | None = None,
) -> torch.Tensor:
    """The ``normalized_depth`` of an image at its size: read from ``depth_path``, or, when
    there is none, estimated by ``estimator`` and, with ``save_dir``, saved there as
    ``<stem>.npy`` (exact, reusable as a depth file, also as the depth of a pairs folder's
    image) and ``preview/<stem>_depth.png`` (16-bit; in a subfolder, so that a pairs folder
    given as ``save_dir`` does not gain images that look like pairs)."""
    size = (image.shape[-2], image.shape[-1])
    if depth_path is not None:
        return read_depth_as(depth_path, size, options)
    if estimator is None:
        raise DataFormatError(f"{image_path}: no depth map given and no depth model to estimate it")
    depth = estimator(image, origin=str(image_path))
    if save_dir is not None:
        write_depth(depth, save_dir / f"{image_path.stem}.npy")
        write_depth(depth, save_dir / "preview" / f"{image_path.stem}_depth.png")
    return depth


def read_pair(
    pair: PairFiles,
    options: DepthOptions,
    depth: bool = True,
    estimator: MonocularDepth | None = None,
    save_depth: Path | None = None,
) -> dict[str, Any]:
    """One item (``input``, ``guide``, depths, ``target`` when known, ``name``) from files.

    The guide only carries the lighting: one of another size is resized to the input's,
    and so is its depth (read, or estimated from the guide at its own size). Depth maps the
    pair lacks are estimated by ``estimator`` (and saved in ``save_depth/input/`` and
    ``save_depth/guide/``, see :func:`depth_of`).
    """
    image = read_image(pair.input)
    size = (image.shape[-2], image.shape[-1])
    guide = read_image(pair.guide)
    item: dict[str, Any] = {"name": pair.name, "input": image, "guide": resize_image(guide, size)}
    if depth:
        input_dir, guide_dir = (
            (save_depth / "input", save_depth / "guide") if save_depth else (None, None)
        )
        input_depth = depth_of(image, pair.input, pair.input_depth, options, estimator, input_dir)
        guide_depth = depth_of(
            guide, pair.guide, pair.guide_depth, options.for_guide(), estimator, guide_dir
        )
        item["input_depth"] = input_depth[None]
        item["guide_depth"] = resize_depth(guide_depth, size)[None]
    if pair.target is not None:
        target = read_image(pair.target)
        if target.shape != image.shape:
            raise DataFormatError(
                f"{pair.target}: target of {tuple(target.shape[-2:])} differs from the input "
                f"{pair.input} of {size}"
            )
        item["target"] = target
    return item
