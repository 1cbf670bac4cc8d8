import numpy as np
import ptwt
import pytest
import pywt
import torch

from relight.losses import WSSIMLoss, haar_bands, wssim_weights
from relight.metrics import ssim

from ..metrics_reference import skimage_ssim


def test_haar_bands_equal_pywt(generator):
    x = torch.rand(2, 3, 32, 48, generator=generator, dtype=torch.float64)
    ours = haar_bands(x, 2)
    cA2, (cH2, cV2, cD2), (cH1, cV1, cD1) = pywt.wavedec2(x.numpy(), "haar", level=2)
    expected = [cH1, cV1, cD1, cH2, cV2, cD2, cA2]
    assert len(ours) == len(expected)
    for band, reference in zip(ours, expected, strict=True):
        np.testing.assert_allclose(band.numpy(), reference, atol=1e-12)


def test_haar_bands_build_no_filter_from_python_numbers(generator, monkeypatch):
    """On a GPU a filter made from Python floats is a blocking host-to-device copy: after
    the first call for a device and dtype, the transform must reuse tensors."""
    x = torch.rand(2, 3, 32, 48, generator=generator)
    reference = ptwt.wavedec2(x, "haar", level=2, mode="zero")
    haar_bands(x, 2)  # the filters of (cpu, float32) are made here, once
    from_numbers: list[str] = []
    for name in ("tensor", "as_tensor"):
        original = getattr(torch, name)

        def spy(data, *args, _name=name, _original=original, **kwargs):
            if not isinstance(data, torch.Tensor):
                from_numbers.append(f"torch.{_name}({data!r})")
            return _original(data, *args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    bands = haar_bands(x, 2)
    monkeypatch.undo()
    assert from_numbers == []
    expected = [*reference[2], *reference[1], reference[0]]
    for band, same in zip(bands, expected, strict=True):
        assert torch.equal(band, same)


def test_weights_are_the_y_net_ones():
    weights = dict(wssim_weights(2, 0.7))
    assert weights == pytest.approx(
        {
            "image": 1.0,
            "L1.LH": 0.21,
            "L1.HL": 0.21,
            "L1.HH": 0.09,
            "L2.LH": 0.1029,
            "L2.HL": 0.1029,
            "L2.HH": 0.0441,
            "L2.LL": 0.2401,
        }
    )
    assert sum(weights.values()) == pytest.approx(2.0)
    assert wssim_weights(0, 0.7) == [("image", 1.0)]


@pytest.mark.parametrize("shape", [(1, 3, 40, 40), (2, 3, 64, 48), (1, 1, 33, 21)])
def test_single_scale_ssim_equals_skimage(generator, shape):
    a = torch.rand(shape, generator=generator, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(shape[0]):
        reference = skimage_ssim(a[i].numpy(), b[i].numpy())
        assert ours[i].item() == pytest.approx(reference, abs=1e-4)
    assert 0.1 < ours.mean() < 0.95  # a meaningful (not degenerate) comparison


def test_level_zero_is_plain_ssim_loss(generator):
    a = torch.rand(1, 3, 32, 32, generator=generator)
    b = torch.rand(1, 3, 32, 32, generator=generator)
    assert WSSIMLoss(levels=0)(a, b).item() == pytest.approx(1 - ssim(a, b).item(), abs=1e-6)


def test_wssim_zero_for_identical_positive_otherwise(generator):
    a = torch.rand(2, 3, 64, 64, generator=generator)
    b = (a + 0.1 * torch.randn(2, 3, 64, 64, generator=generator)).clamp(0, 1)
    loss = WSSIMLoss(levels=2)
    assert loss(a, a).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(a, b).item() > 0.1


def test_wssim_is_the_weighted_sum_of_band_terms(generator):
    a = torch.rand(1, 3, 64, 64, generator=generator, dtype=torch.float64)
    b = torch.rand(1, 3, 64, 64, generator=generator, dtype=torch.float64)
    bands_a, bands_b = [a, *haar_bands(a, 2)], [b, *haar_bands(b, 2)]
    expected = sum(
        w * (1 - ssim(x, y).mean())
        for (_, w), x, y in zip(wssim_weights(2, 0.7), bands_a, bands_b, strict=True)
    )
    assert WSSIMLoss(2, 0.7)(a, b).item() == pytest.approx(expected.item(), rel=1e-10)


def test_too_small_for_levels_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 44 px"):
        WSSIMLoss(levels=2)(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def test_wssim_gradcheck(generator):
    a = torch.rand(1, 1, 24, 24, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 1, 24, 24, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: WSSIMLoss(levels=1)(x, b), (a,))


def test_compiled_wssim_leaves_ptwt_to_eager(monkeypatch):
    """torch 2.11's dynamo fails inside ptwt.wavedec2 (seen on an H200, compile_loss=true):
    compilation must not trace into it, and the compiled loss must equal the eager one."""
    import ptwt

    from relight.losses.wssim import WSSIMLoss

    traced: list[int] = []
    original = ptwt.wavedec2

    def wavedec2(*args, **kwargs):
        if torch.compiler.is_compiling():
            traced.append(1)  # a side effect dynamo would replay if it traced this call
        return original(*args, **kwargs)

    monkeypatch.setattr(ptwt, "wavedec2", wavedec2)
    torch._dynamo.reset()
    loss = WSSIMLoss(levels=2)
    pred = torch.rand(2, 3, 48, 48, requires_grad=True)
    target = torch.rand(2, 3, 48, 48)
    compiled = torch.compile(loss, backend="eager")(pred, target)
    compiled.backward()
    assert not traced
    assert torch.allclose(compiled, loss(pred, target))
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
