import warnings

import pytest
import torch

from relight.data.depth_conventions import MAX_DISPARITY_RATIO, check_depth_range, normalise_depth


def test_vidit_is_used_as_stored():
    depth = torch.rand(4, 5) * 1.3
    assert normalise_depth(depth, "vidit") is depth


def test_a_vidit_map_that_cannot_be_normalized_depth_warns():
    """Metres (or disparity) given in the default convention went in as stored, silently."""
    metres = torch.linspace(1.0, 40.0, 12).reshape(3, 4)
    with pytest.warns(UserWarning, match=r"room\.npy: depth values in \[1, 40\] .* distance"):
        assert torch.equal(normalise_depth(metres, "vidit", origin="room.npy"), metres)
    with pytest.warns(UserWarning, match=r"\[-0\.5, 1\]"):
        normalise_depth(torch.tensor([[-0.5, 1.0]]), "vidit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalise_depth(torch.tensor([[0.2, 1.07]]), "vidit")  # VIDIT's maximum is about 1
        normalise_depth(metres, "distance")


def test_distance_is_divided_by_the_far_plane():
    metres = torch.tensor([[2.0, 4.0], [5.0, 10.0]])
    assert torch.allclose(normalise_depth(metres, "distance"), metres / 10)
    # the scale of the unit does not matter: only ratios survive, as in normalized_depth
    assert torch.allclose(normalise_depth(metres * 1000, "distance"), metres / 10)


def test_distance_range_clips_invalid_readings():
    sensor = torch.tensor([[0.0, 0.5], [1.0, 3.0]])  # 0 = no reading, 3 beyond the range
    out = normalise_depth(sensor, "distance", (0.5, 2.0))
    assert torch.allclose(out, torch.tensor([[0.25, 0.25], [0.5, 1.0]]))


def test_disparity_is_inverted_to_a_distance():
    distance = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    out = normalise_depth(1 / distance, "disparity")
    assert torch.allclose(out, distance / 8)  # near small, far = 1, ratios kept
    assert out.argmin() == 0  # the nearest point (largest disparity) is the smallest


@pytest.mark.parametrize("convention", ["distance", "disparity"])
def test_the_far_plane_is_exactly_one(convention: str):
    # VIDIT's far plane is 1; ``lo / map`` in torch is ``map.reciprocal() * lo``, which
    # misses 1 by an ulp for about one map in seven
    generator = torch.Generator().manual_seed(0)
    for _ in range(64):
        depth = torch.rand(9, 13, generator=generator) * 10 + 0.01
        assert normalise_depth(depth, convention).max().item() == 1.0


def test_disparity_of_zero_ends_at_a_finite_distance():
    disparity = torch.tensor([[0.0, 1e-5], [1.0, 2.0]])  # 0 and 1e-5: sky
    out = normalise_depth(disparity, "disparity")
    assert torch.isfinite(out).all()
    assert out[0, 0] == out[0, 1] == 1
    assert out.min() == pytest.approx(1 / MAX_DISPARITY_RATIO)
    disparity = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    ranged = normalise_depth(disparity, "disparity", (0.5, 2.0))
    assert torch.allclose(ranged, torch.tensor([[1.0, 1.0], [0.5, 0.25]]))


def test_bad_conventions_and_ranges():
    with pytest.raises(ValueError, match="unknown depth convention 'inverse'"):
        check_depth_range("inverse", None)
    with pytest.raises(ValueError, match="used as stored"):
        check_depth_range("vidit", (0.1, 1.0))
    with pytest.raises(ValueError, match="0 < MIN < MAX"):
        check_depth_range("distance", (2.0, 1.0))
    with pytest.raises(ValueError, match="flat.npy: a 'distance' depth map needs positive"):
        normalise_depth(torch.zeros(3, 3), "distance", origin="flat.npy")
