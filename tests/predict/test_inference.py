import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from relight.any_size import (
    SizePolicy,
    blend_window,
    pad_to_multiple,
    relight_any_size,
    tile_starts,
)


def per_pixel(x: torch.Tensor) -> torch.Tensor:
    """A stand-in network that maps each pixel on its own (no context), valid sizes only."""
    assert x.shape[-2] % 16 == 0 and x.shape[-1] % 16 == 0 and min(x.shape[-2:]) >= 32
    return 0.5 * x[:, :3] + 0.25 * x[:, 3:6] + 0.1 * x[:, 6:7] - 0.05 * x[:, 7:8]


def smooth_input(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    channels = [torch.sin(3 * xx + k) * torch.cos(2 * yy - k) * 0.4 + 0.5 for k in range(8)]
    return torch.stack(channels)[None]


@pytest.mark.parametrize("size", [(750, 1000), (33, 47), (20, 18)])
def test_odd_sizes_are_padded_and_cropped_back(size):
    x = torch.rand(1, 8, *size)
    padded = pad_to_multiple(x)
    assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
    assert min(padded.shape[-2:]) >= 32
    assert torch.equal(padded[..., : size[0], : size[1]], x)
    out = relight_any_size(per_pixel, x)
    assert out.shape == (1, 3, *size)
    assert torch.allclose(out, per_pixel(padded)[..., : size[0], : size[1]].clamp(0, 1))


def test_odd_size_with_the_network(small_net):
    x = torch.rand(1, 8, 750, 1000)
    out = relight_any_size(small_net, x, min_size=small_net.min_size)
    assert out.shape == (1, 3, 750, 1000)
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize(("length", "tile", "overlap"), [(1024, 256, 64), (1008, 512, 128)])
def test_tiles_cover_on_a_grid_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(s % 16 == 0 for s in starts)
    shared = [a + tile - b for a, b in zip(starts, starts[1:], strict=False)]
    assert min(shared) >= overlap - 32 and max(shared) <= tile // 2 + 32
    assert tile_starts(200, 256, 64) == [0]


@pytest.mark.parametrize(("tile", "overlap"), [(48, 0), (48, 8), (80, 0), (112, 12), (16, 0)])
def test_tiles_leave_no_gap_whatever_the_rounding(tile, overlap):
    """Rounding the starts to the 32-pixel grid once left gaps (48-pixel tiles over 144
    pixels started at 0, 64, 96: pixels 48-63 in no tile, NaN in the output)."""
    for length in range(tile + 16, 1200, 16):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] == length - tile
        steps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert 0 < min(steps) and max(steps) <= tile - min(overlap, tile - min(tile, 32))
        assert all(s % min(tile, 32) == 0 for s in starts[:-1])


def test_tiled_output_is_finite_where_rounding_once_left_gaps():
    x = smooth_input(80, 144)
    full = relight_any_size(per_pixel, x, SizePolicy(max_pixels=10**6))
    tiled = relight_any_size(per_pixel, x, SizePolicy(max_pixels=48 * 48, tile=48, overlap=0))
    assert torch.isfinite(tiled).all()
    assert torch.allclose(tiled, full, atol=1e-6)


def test_blend_windows_sum_to_one():
    starts = tile_starts(1024, 256, 64)
    total = torch.zeros(1024)
    for i, start in enumerate(starts):
        window = blend_window(starts, i, 256)
        assert window.min() > 0 and window.max() == 1
        total[start : start + 256] += window
    assert torch.allclose(total, torch.ones(1024), atol=1e-6)


def test_tiles_equal_a_full_pass_for_a_per_pixel_network():
    x = smooth_input(300, 420)
    full = relight_any_size(per_pixel, x, SizePolicy(max_pixels=10**6))
    tiled = relight_any_size(per_pixel, x, SizePolicy(max_pixels=128 * 128, tile=128, overlap=32))
    assert torch.allclose(tiled, full, atol=1e-6)


def test_downscaled_pass_restores_the_detail():
    x = smooth_input(320, 480)
    full = relight_any_size(per_pixel, x, SizePolicy(max_pixels=10**6))
    small = SizePolicy(max_pixels=160 * 240, large="downscale")
    reduced = relight_any_size(per_pixel, x, small)
    assert reduced.shape == full.shape
    # the per-pixel map of a smooth input survives the down/up-sampling almost exactly
    assert (reduced - full).abs().max() < 0.02


def test_downscaled_pass_adds_back_the_fine_detail_the_reduced_size_loses():
    """A 2-pixel checkerboard on the input RGB is gone at half size; a network that keeps
    its input's RGB gets it back exactly (the smooth input above hides a missing add-back)."""
    x = smooth_input(320, 480)
    checker = (torch.arange(320)[:, None] + torch.arange(480)[None]) % 2
    x[:, :3] += 0.1 * (checker - 0.5)
    reduced = relight_any_size(
        lambda t: t[:, :3], x, SizePolicy(max_pixels=160 * 240, large="downscale")
    )
    torch.testing.assert_close(reduced, x[:, :3], atol=1e-5, rtol=0)


def test_downscaled_pass_of_a_network_without_depth():
    x = smooth_input(320, 480)[:, :6]  # input and guide RGB only

    def rgb_only(t: torch.Tensor) -> torch.Tensor:
        assert t.shape[1] == 6
        return 0.5 * t[:, :3] + 0.5 * t[:, 3:6]

    full = relight_any_size(rgb_only, x, SizePolicy(max_pixels=10**6))
    reduced = relight_any_size(rgb_only, x, SizePolicy(max_pixels=160 * 240, large="downscale"))
    assert (reduced - full).abs().max() < 0.02


def test_constant_image_has_no_seams(small_net):
    """A constant image: the tiled output keeps the full pass's flat (16-periodic: the
    PixelShuffle pattern) output across tile boundaries; hard seams (overlap 0) do not."""
    x = torch.full((1, 8, 256, 320), 0.5)
    x[:, 6:] = 0.7
    full = relight_any_size(small_net, x, SizePolicy(), small_net.min_size)

    def tiled(overlap: int) -> torch.Tensor:
        policy = SizePolicy(max_pixels=128 * 128, tile=128, overlap=overlap)
        return relight_any_size(small_net, x, policy, small_net.min_size)

    inner = (..., slice(48, -48), slice(48, -48))  # away from the image border

    def seam_error(out: torch.Tensor) -> float:
        return float((out - full)[inner].abs().max())

    def period_jump(out: torch.Tensor) -> float:
        core = out[inner]
        return float((core[..., 16:] - core[..., :-16]).abs().max())

    blended, hard = tiled(64), tiled(0)
    assert period_jump(full) < 1e-4  # the full pass is flat (up to the 16-pixel pattern)
    assert period_jump(blended) < 1e-3 and seam_error(blended) < 1e-3
    assert seam_error(hard) > 10 * seam_error(blended)  # the test sees seams where they are


def test_bad_policies():
    with pytest.raises(ValueError, match="multiple of 16"):
        SizePolicy(tile=100).check()
    with pytest.raises(ValueError, match="overlap"):
        SizePolicy(tile=128, overlap=100).check()
    with pytest.raises(ValueError, match="large-input mode"):
        SizePolicy(large="crop").check()


MEMORY_SCRIPT = """
import json, sys, torch
from relight.any_size import SizePolicy, relight_any_size
from tests.predict.conftest import small_s3net
from tests.predict.rss import PeakRSS
torch.set_num_threads(2)
net = small_s3net()
x = torch.rand(1, 8, {height}, {width})
relight_any_size(net, x[..., :{tile}, :{tile}])  # one tile first: one-off allocations
peaks = {{}}
for name, policy in [("tiled", SizePolicy({tile} ** 2, {tile}, {overlap})), {full}]:
    with PeakRSS() as peak:
        out = relight_any_size(net, x, policy, net.min_size)
    peaks[name] = peak.increase
print(json.dumps({{"peaks": peaks, "shape": list(out.shape)}}))
"""


def peak_memory(height: int, width: int, tile: int, overlap: int, full: bool) -> dict:
    """Peak RSS increase (MiB) of a tiled (and a full-size) pass, in a fresh process."""
    root = Path(__file__).parents[2]
    full_policy = '("full", SizePolicy(max_pixels=10**9))' if full else ""
    script = MEMORY_SCRIPT.format(
        height=height, width=width, tile=tile, overlap=overlap, full=full_policy
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "src"), str(root)]))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tiled_peak_memory_is_bounded():
    """Tiling 384x512 in 128² tiles: the peak is a small part of the full-size pass's."""
    result = peak_memory(384, 512, tile=128, overlap=32, full=True)
    assert result["shape"] == [1, 3, 384, 512]
    peaks = result["peaks"]
    assert peaks["full"] > 40, peaks  # MiB: activations at 12x the tile's size
    assert peaks["tiled"] < 0.25 * peaks["full"], peaks


@pytest.mark.slow
def test_4096x3072_input_runs_in_bounded_memory():
    """The issue's size under the default budget (1024² tiles, overlap 128)."""
    result = peak_memory(3072, 4096, tile=1024, overlap=128, full=False)
    assert result["shape"] == [1, 3, 3072, 4096]
    assert result["peaks"]["tiled"] < 3 * 1024, result  # MiB
