"""Run S3Net on an input of any size: pad and crop, and large inputs in tiles or downscaled.

S3Net needs H and W in multiples of 16 (and at least 32 with the enhancement module).
An input is padded on the bottom and right (reflect; replicate where the image is too
small to reflect) and the output cropped back. An input whose padded size exceeds the
pixel budget ``max_pixels`` is processed

- ``"tile"`` (the default): in overlapping tiles of at most ``tile`` x ``tile`` pixels,
  whose starts lie on a 32-pixel grid (the encoder's stride-16 features and the
  enhancement module's 32-pixel pooling cells line up with those of a full-size pass);
  each tile is weighted by a window that is 1 inside and falls as a raised cosine across
  the overlaps with its neighbours (never at the image border), and the weighted sum is
  divided by the sum of the weights. Tiles see the guide crop at the same place, as in a
  full-size pass. Peak memory is one tile's forward pass plus the output accumulator.
- ``"downscale"``: once at a reduced size that fits the budget; the output is upsampled
  and the input's lost detail (the input minus its down-up-sampled self) is added back.

S3Net has global operations (the channel attention's global average pooling, the
enhancement module's pooling), so neither equals a full-size pass exactly: docs/predict.md
gives the measured difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from relight.data.transforms import resize_depth, resize_image
from relight.models.s3net import SIZE_MULTIPLE

Forward = Callable[[torch.Tensor], torch.Tensor]
LARGE_MODES = ("tile", "downscale")
#: Tile starts lie on this grid (the enhancement module's largest pooling cell).
TILE_GRID = 32


@dataclass(frozen=True)
class SizePolicy:
    """How inputs larger than the budget are handled (the ``relight-predict`` flags).

    Args:
        max_pixels: the largest forward pass, in pixels after padding (default 1024², the
            resolution S3Net is trained at on VIDIT).
        tile: side of a tile (a multiple of 16); shrunk where ``tile²`` exceeds the budget.
        overlap: pixels shared by neighbouring tiles, blended smoothly (< tile / 2).
        large: ``"tile"`` or ``"downscale"`` for inputs over the budget.
    """

    max_pixels: int = 1024 * 1024
    tile: int = 1024
    overlap: int = 128
    large: str = "tile"

    def check(self, min_size: int = 2 * SIZE_MULTIPLE) -> SizePolicy:
        """Raise ``ValueError`` on an unusable setting; returns ``self``."""
        if self.large not in LARGE_MODES:
            raise ValueError(f"large-input mode must be one of {LARGE_MODES}; got '{self.large}'")
        if self.tile % SIZE_MULTIPLE or self.tile < min_size:
            raise ValueError(
                f"the tile size must be a multiple of {SIZE_MULTIPLE} and at least {min_size}; "
                f"got {self.tile}"
            )
        if not 0 <= self.overlap <= self.tile // 2:
            raise ValueError(
                f"the tile overlap must be between 0 and half the tile ({self.tile // 2}); "
                f"got {self.overlap}"
            )
        if self.max_pixels < min_size * min_size:
            raise ValueError(
                f"the pixel budget must be at least {min_size}x{min_size}; got {self.max_pixels}"
            )
        return self


def padded_size(length: int, min_size: int = 2 * SIZE_MULTIPLE) -> int:
    """The smallest valid network size (a multiple of 16, at least ``min_size``) >= ``length``."""
    return max(min_size, math.ceil(length / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def pad_to_multiple(x: torch.Tensor, min_size: int = 2 * SIZE_MULTIPLE) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right to a valid network size (reflect)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = padded_size(h, min_size) - h, padded_size(w, min_size) - w
    if not pad_h and not pad_w:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def tile_starts(length: int, tile: int, overlap: int, grid: int = TILE_GRID) -> list[int]:
    """Starts of tiles of size ``min(tile, length)`` covering ``length`` with about
    ``overlap`` shared pixels, spread evenly, on a ``grid`` (the last one ends at ``length``).

    Neighbours share at least ``min(overlap, tile - grid)`` pixels: rounding the even
    spread to the grid never leaves a gap (a grid coarser than the tile is narrowed to it).
    """
    if length <= tile:
        return [0]
    grid = min(grid, tile)
    widest = tile - min(overlap, tile - grid)  # the largest step between two starts
    last = length - tile
    count = math.ceil((length - overlap) / (tile - overlap))
    while True:  # ends: with enough tiles, every grid point below last is a start
        spread = {grid * round(i * last / (count - 1) / grid) for i in range(count - 1)}
        starts = sorted({min(last, s) for s in spread} | {last})
        if all(b - a <= widest for a, b in zip(starts, starts[1:], strict=False)):
            return starts
        count += 1


def _ramp(length: int, rising: bool) -> torch.Tensor:
    """A raised-cosine ramp over ``length`` pixels, strictly inside (0, 1)."""
    t = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    ramp = torch.sin(0.5 * math.pi * t) ** 2
    return ramp if rising else ramp.flip(0)


def blend_window(starts: list[int], index: int, size: int) -> torch.Tensor:
    """1-D weights of tile ``index``: tapered across the overlaps with its neighbours only.

    Where two tiles overlap by the same amount, the falling ramp of one and the rising ramp
    of the other sum to 1 (sin² + cos²).
    """
    window = torch.ones(size)
    if index > 0:
        shared = starts[index - 1] + size - starts[index]
        if shared > 0:
            window[:shared] *= _ramp(shared, rising=True)
    if index < len(starts) - 1:
        shared = starts[index] + size - starts[index + 1]
        if shared > 0:
            window[size - shared :] *= _ramp(shared, rising=False)
    return window


def run_tiled(
    forward: Forward, x: torch.Tensor, tile: int, overlap: int, progress: bool = False
) -> torch.Tensor:
    """The blended output of ``forward`` over overlapping tiles of a padded (B, C, H, W)
    input (with a progress bar over the tiles when ``progress``)."""
    height, width = x.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    total: torch.Tensor | None = None
    weights = torch.zeros(height, width, device=x.device)
    grid = [(i, top, j, left) for i, top in enumerate(rows) for j, left in enumerate(cols)]
    for i, top, j, left in tqdm(grid, desc="tiles", leave=False, disable=not progress):
        window_h = blend_window(rows, i, tile_h).to(x.device)
        window = window_h[:, None] * blend_window(cols, j, tile_w).to(x.device)[None, :]
        out = forward(x[..., top : top + tile_h, left : left + tile_w]).float()
        if total is None:
            total = x.new_zeros((x.shape[0], out.shape[1], height, width), dtype=torch.float32)
        total[..., top : top + tile_h, left : left + tile_w] += out * window
        weights[top : top + tile_h, left : left + tile_w] += window
        del out
    assert total is not None
    return total.div_(weights)


def fitting_tile(policy: SizePolicy, min_size: int = 2 * SIZE_MULTIPLE) -> int:
    """``policy.tile``, shrunk (to a multiple of 16) where a square tile exceeds the budget."""
    largest = math.isqrt(policy.max_pixels) // SIZE_MULTIPLE * SIZE_MULTIPLE
    return max(min_size, min(policy.tile, largest))


def reduced_size(height: int, width: int, max_pixels: int, min_size: int) -> tuple[int, int]:
    """The largest valid network size with the input's aspect ratio within ``max_pixels``."""
    scale = math.sqrt(max_pixels / (height * width))
    h = max(min_size, int(height * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE)
    w = max(min_size, int(width * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE)
    return h, w


def run_downscaled(
    forward: Forward, x: torch.Tensor, max_pixels: int, min_size: int
) -> torch.Tensor:
    """One pass at a reduced size; upsampled, with the input RGB's lost detail added back.

    ``x`` holds RGB channels first (input RGB, guide RGB) and depth channels, if any, last.
    """
    height, width = x.shape[-2:]
    size = reduced_size(height, width, max_pixels, min_size)
    rgb_channels = 6
    parts = [torch.stack([resize_image(item[:rgb_channels], size) for item in x])]
    if x.shape[1] > rgb_channels:  # a network without depth takes the RGB channels only
        parts.append(
            torch.stack(
                [torch.stack([resize_depth(d, size) for d in item[rgb_channels:]]) for item in x]
            )
        )
    small = torch.cat(parts, dim=1)
    out = forward(small).float()

    def upsample(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)

    detail = x[:, :3] - upsample(small[:, :3])
    return upsample(out).add_(detail)


@torch.inference_mode()
def relight_any_size(
    forward: Forward,
    x: torch.Tensor,
    policy: SizePolicy = SizePolicy(),
    min_size: int = 2 * SIZE_MULTIPLE,
    progress: bool = False,
) -> torch.Tensor:
    """Run ``forward`` (a network taking valid sizes only) on a (B, C, H, W) input of any
    size; returns (B, 3, H, W) clamped to [0, 1]. See the module docstring.

    ``progress`` shows a progress bar over the tiles of a tiled input.
    """
    policy.check(min_size)
    height, width = x.shape[-2:]
    padded = padded_size(height, min_size) * padded_size(width, min_size)
    if padded > policy.max_pixels and policy.large == "downscale":
        out = run_downscaled(forward, x, policy.max_pixels, min_size)
    else:
        x = pad_to_multiple(x, min_size)
        if padded > policy.max_pixels:
            tile = fitting_tile(policy, min_size)
            out = run_tiled(forward, x, tile, min(policy.overlap, tile // 2), progress)
        else:
            out = forward(x).float()
        out = out[..., :height, :width]
    return out.clamp_(0, 1)
