"""Resizing to the training resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIZE_MULTIPLE = 16


def check_image_size(size: int | None, key: str = "data.image_size") -> int | None:
    """Validate a config ``image_size``: ``None`` (native) or a positive multiple of 16;
    ``key``: the config key the message names (relight-eval's own is ``image_size``)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % SIZE_MULTIPLE:
        raise ValueError(
            f"{key} must be a positive multiple of {SIZE_MULTIPLE} (S3Net's total "
            f"stride) or null for the native size; got {size!r}"
        )
    return size


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize_image(image: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """Resize a (3, H, W) float image to ``size``² (or ``(h, w)``) with antialiased bicubic,
    clamped to [0, 1]."""
    if size is None or tuple(image.shape[-2:]) == _pair(size):
        return image
    out = F.interpolate(image[None], size=_pair(size), mode="bicubic", antialias=True)
    return out[0].clamp_(0, 1)


def resize_depth(depth: torch.Tensor, size: int | tuple[int, int] | None) -> torch.Tensor:
    """Resize an (H, W) depth map to ``size``² (or ``(h, w)``).

    Shrinking averages over each output pixel's footprint (area), enlarging is bilinear:
    both keep depth within the range of its neighbours (no ringing, unlike bicubic).
    """
    if size is None or tuple(depth.shape[-2:]) == _pair(size):
        return depth
    h, w = _pair(size)
    shrink = h <= depth.shape[-2] and w <= depth.shape[-1]
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    return F.interpolate(depth[None, None], size=(h, w), mode=mode, **kwargs)[0, 0]
