"""Bring a depth map from any convention to what S3Net was trained on: VIDIT's ``normalized_depth``.

VIDIT's ``normalized_depth`` (and the mini-VIDIT renderer's) is the **distance to the
camera, near = small, divided by a per-scene scale** so that the farthest point is at
about 1 (VIDIT's maximum is not always exactly 1; the nearest point is well above 0).
Only ratios of distances survive, so the normalisation of a metric distance map ``d`` is
``d / d_far``.

Conventions (``--depth-convention`` of ``relight-predict``):

- ``vidit``: the values are used as stored (VIDIT's own ``.npy`` files, or a map already
  normalised as above).
- ``distance``: near = small, far = large, in any unit (metres, millimetres, a 16-bit PNG
  of a depth sensor). Normalised as ``clip(d, lo, hi) / hi``; ``lo, hi`` is the given
  ``depth_range`` or the map's own minimum and maximum. ``lo`` clips invalid values (a
  sensor's 0 for "no reading").
- ``disparity``: near = large (inverse depth, as relative monocular estimators such as
  MiDaS or Depth Anything output, and most of their 8-bit PNG visualisations). Turned into
  a distance by ``1 / disparity`` and normalised: ``lo / clip(p, lo, hi)``. Without a
  range ``hi`` is the map's maximum and ``lo`` its minimum, but at least ``hi /
  MAX_DISPARITY_RATIO`` so that sky or background with disparity 0 ends at a finite
  distance (``MAX_DISPARITY_RATIO`` times the nearest point).

Values read from integer PNGs are already scaled to [0, 1] (``value / 255`` or ``/ 65535``),
so a ``depth_range`` for a PNG is given on that scale (a float image is used as stored).
"""

from __future__ import annotations

import warnings

import torch

from relight.data.formats import DataFormatError

CONVENTIONS = ("vidit", "distance", "disparity")
#: Without a range, the farthest normalised distance is at most this many times the nearest.
MAX_DISPARITY_RATIO = 100.0


def check_depth_range(
    convention: str, depth_range: tuple[float, float] | None
) -> tuple[float, float] | None:
    """Validate a convention name and an optional (lo, hi) range; returns the range."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown depth convention '{convention}'; choose from {CONVENTIONS}")
    if depth_range is None:
        return None
    if convention == "vidit":
        raise ValueError(
            "a depth range applies to the 'distance' and 'disparity' conventions; 'vidit' "
            "depth is used as stored"
        )
    lo, hi = (float(v) for v in depth_range)
    if not 0 < lo < hi:
        raise ValueError(f"the depth range needs 0 < MIN < MAX; got {lo} {hi}")
    return lo, hi


#: A ``vidit`` map whose maximum exceeds this is not ``normalized_depth`` (VIDIT's is about 1).
VIDIT_DEPTH_MAX = 1.5


def warn_unless_normalised(depth: torch.Tensor, origin: str = "depth") -> None:
    """Warn when a map read as ``vidit`` cannot be VIDIT's ``normalized_depth`` (negative
    values, or a maximum above :data:`VIDIT_DEPTH_MAX`: metres, millimetres, disparity):
    the network would take it as stored, and its output would be wrong without a sign."""
    lo, hi = (float(v) for v in torch.aminmax(depth.float()))
    if lo < 0 or hi > VIDIT_DEPTH_MAX:
        warnings.warn(
            f"{origin}: depth values in [{lo:g}, {hi:g}] read in the 'vidit' convention, "
            f"which uses them as stored; VIDIT's normalized_depth runs from above 0 to about "
            "1. A map in metres or another unit needs --depth-convention distance, an inverse "
            "depth (a monocular estimate) disparity",
            UserWarning,
            stacklevel=2,
        )


def normalise_depth(
    depth: torch.Tensor,
    convention: str = "vidit",
    depth_range: tuple[float, float] | None = None,
    origin: str = "depth",
) -> torch.Tensor:
    """Map an (H, W) depth in ``convention`` to VIDIT's ``normalized_depth`` (see module doc).

    ``origin`` (the file name) is named in the :class:`DataFormatError` for a map with no
    positive values.
    """
    depth_range = check_depth_range(convention, depth_range)
    if convention == "vidit":
        warn_unless_normalised(depth, origin)
        return depth
    depth = depth.float()
    if depth_range is not None:
        lo, hi = depth_range
    else:
        hi = float(depth.max())
        positive = depth[depth > 0]
        lo = float(positive.min()) if positive.numel() else 0.0
        if convention == "disparity":
            lo = max(lo, hi / MAX_DISPARITY_RATIO)
        if hi <= 0 or lo <= 0:
            raise DataFormatError(
                f"{origin}: a '{convention}' depth map needs positive values; its maximum is "
                f"{hi:g}. Give --depth-range or check the convention."
            )
    clipped = depth.clamp(lo, hi)
    # true divisions by tensors: ``lo / clipped`` is ``clipped.reciprocal() * lo`` (and on
    # CUDA ``clipped / hi`` is ``clipped * (1 / hi)``), which can leave the far plane an ulp
    # below 1
    if convention == "distance":
        return clipped / clipped.new_tensor(hi)
    return clipped.new_tensor(lo) / clipped
