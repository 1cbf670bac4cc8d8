import time

import pytest
import torch

from relight.losses import CharbonnierLoss, CompositeLoss, PerceptualLoss
from relight.losses.wssim import WSSIMLoss
from relight.models import WeightsUnavailableError


def test_charbonnier_minimal_for_identical_and_matches_formula(generator):
    a = torch.rand(2, 3, 8, 8, generator=generator)
    b = torch.rand(2, 3, 8, 8, generator=generator)
    loss = CharbonnierLoss(eps=1e-3)
    assert loss(a, a).item() == pytest.approx(1e-3)
    assert loss(a, b).item() == pytest.approx(torch.sqrt((a - b) ** 2 + 1e-6).mean().item())
    assert loss(a, b) > loss(a, a)
    with pytest.raises(ValueError, match="positive"):
        CharbonnierLoss(eps=0)


def test_charbonnier_gradcheck(generator):
    a = torch.rand(1, 3, 4, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 3, 4, 4, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: CharbonnierLoss(1e-3)(x, b), (a,))


@pytest.fixture(scope="module")
def perceptual():
    torch.manual_seed(0)
    return PerceptualLoss(layers=["relu1_2", "relu2_2"], weights="none")


def test_perceptual_zero_for_identical_positive_otherwise(perceptual, generator):
    a = torch.rand(1, 3, 32, 32, generator=generator)
    b = torch.rand(1, 3, 32, 32, generator=generator)
    assert perceptual(a, a).item() == 0
    assert perceptual(a, b).item() > 0


def test_perceptual_equals_torchvision_vgg19_features_with_the_same_weights(generator):
    """The paper's term at its default layers: sum over relu1_2, relu2_2, relu3_4, relu4_4,
    relu5_4 of mean |VGG19(norm(a)) - VGG19(norm(b))|, ImageNet-normalised, computed here
    by torchvision's VGG19 holding the same weights."""
    import torchvision

    torch.manual_seed(0)
    loss = PerceptualLoss(weights="none")
    reference = torchvision.models.vgg19().features.eval()
    reference.load_state_dict(loss.features.state_dict())
    a = torch.rand(2, 3, 48, 48, generator=generator)
    b = torch.rand(2, 3, 48, 48, generator=generator)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def features(x: torch.Tensor) -> dict[int, torch.Tensor]:
        out, x = {}, (x - mean) / std
        for index, layer in enumerate(reference):
            x = layer(x)
            out[index] = x.clone()
        return out

    with torch.no_grad():
        fa, fb = features(a), features(b)
        expected = sum((fa[i] - fb[i]).abs().mean() for i in (3, 8, 17, 26, 35))
        assert loss(a, b).item() == pytest.approx(expected.item(), rel=1e-5)


def test_perceptual_keeps_only_needed_layers_frozen_in_eval(perceptual):
    assert len(perceptual.features) == 9  # up to relu2_2
    perceptual.train()
    assert not perceptual.features.training
    assert not any(p.requires_grad for p in perceptual.parameters())


def test_perceptual_gradient_flows_only_to_prediction(perceptual, generator):
    pred = torch.rand(1, 3, 16, 16, generator=generator, requires_grad=True)
    target = torch.rand(1, 3, 16, 16, generator=generator, requires_grad=True)
    perceptual(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None


def test_perceptual_gradcheck(generator):
    torch.manual_seed(0)
    loss = PerceptualLoss(layers={"relu1_2": 1.0}, weights="none").double()
    a = torch.rand(1, 3, 6, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 3, 6, 6, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: loss(x, b), (a,))


def test_perceptual_unknown_layer():
    with pytest.raises(ValueError, match="relu9_9"):
        PerceptualLoss(layers=["relu9_9"], weights="none")


def test_perceptual_imagenet_weights_offline_fail_fast():
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="vgg19"):
        PerceptualLoss()
    assert time.monotonic() - start < 10


def test_composite_is_weighted_sum_of_terms(generator):
    torch.manual_seed(0)
    loss = CompositeLoss(1.0, 1.1, 0.1, vgg_weights="none", perceptual_layers=["relu1_2"])
    pred = torch.rand(2, 3, 64, 64, generator=generator, requires_grad=True)
    target = torch.rand(2, 3, 64, 64, generator=generator)
    total, parts = loss(pred, target)
    assert set(parts) == {"charbonnier", "wssim", "perceptual"}
    expected = parts["charbonnier"] + 1.1 * parts["wssim"] + 0.1 * parts["perceptual"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert not any(p.requires_grad for p in parts.values())


def test_composite_passes_its_settings_to_the_terms(generator):
    """``loss.eps``, ``loss.wssim_levels`` and ``loss.wssim_ratio`` reach the terms (the
    other tests use only the defaults, which the terms share)."""
    coarse = torch.rand(1, 3, 8, 8, generator=generator)
    a = torch.nn.functional.interpolate(coarse, size=64, mode="bilinear")  # smooth
    b = a + 0.05 * torch.randn(1, 3, 64, 64, generator=generator)  # noisy: bands differ
    loss = CompositeLoss(1.0, 1.0, 0.0, eps=0.1, wssim_levels=1, wssim_ratio=0.5)
    _, parts = loss(a, a)
    assert parts["charbonnier"].item() == pytest.approx(0.1)  # Charbonnier of equal images
    _, parts = loss(a, b)
    assert parts["wssim"].item() == pytest.approx(WSSIMLoss(1, 0.5)(a, b).item(), rel=1e-6)
    for other in (WSSIMLoss(1, 0.7), WSSIMLoss(2, 0.5)):
        assert parts["wssim"].item() != pytest.approx(other(a, b).item(), rel=1e-3)


def test_perceptual_layer_weights_scale_their_terms(generator):
    """``perceptual_layers`` as a mapping: each layer's term times its weight."""
    a = torch.rand(1, 3, 32, 32, generator=generator)
    b = torch.rand(1, 3, 32, 32, generator=generator)

    def loss(layers: dict[str, float]) -> float:
        torch.manual_seed(0)  # the same VGG19 weights each time
        return PerceptualLoss(layers, weights="none")(a, b).item()

    first, second = loss({"relu1_2": 1.0}), loss({"relu2_2": 1.0})
    assert first > 0 and second > 0
    weighted = loss({"relu1_2": 2.0, "relu2_2": 0.5})
    assert weighted == pytest.approx(2.0 * first + 0.5 * second, rel=1e-5)


def test_composite_skips_zero_weight_terms():
    loss = CompositeLoss(perceptual=0.0)  # needs no VGG19 weights at all
    assert "perceptual" not in loss.terms
    _, parts = loss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert set(parts) == {"charbonnier", "wssim"}


def test_composite_rejects_bad_weights():
    with pytest.raises(ValueError, match="nothing to optimise"):
        CompositeLoss(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        CompositeLoss(charbonnier=-1.0, perceptual=0.0)


def test_composite_loss_under_bf16_autocast_keeps_pixel_terms_in_float32(generator):
    """trainer.precision=bf16-mixed runs the loss under autocast: W-SSIM (ptwt) and
    Charbonnier stay float32 and equal their float32 values; the total is float32."""
    from relight.losses import CompositeLoss

    loss = CompositeLoss(perceptual=0.0)
    pred = torch.rand(2, 3, 64, 64, generator=generator).bfloat16().requires_grad_()
    target = torch.rand(2, 3, 64, 64, generator=generator)
    reference, ref_parts = loss(pred.detach().float(), target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, parts = loss(pred, target)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, reference)
    assert parts.keys() == ref_parts.keys() == {"charbonnier", "wssim"}
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad.float()).all()


class _MeanOfPrediction(torch.nn.Module):
    """A user's term: the mean of the prediction (known value, known gradient)."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return prediction.mean()


def test_extra_terms_are_added_with_their_weight_and_logged(generator):
    pred = torch.rand(2, 3, 64, 64, generator=generator)
    target = torch.rand(2, 3, 64, 64, generator=generator)
    paper = CompositeLoss(perceptual=0.0)
    extended = CompositeLoss(
        perceptual=0.0, extra_terms={"brightness": {"weight": 0.5, "term": _MeanOfPrediction()}}
    )
    base_total, base_parts = paper(pred, target)
    total, parts = extended(pred, target)
    assert parts.keys() == {"charbonnier", "wssim", "brightness"}
    torch.testing.assert_close(parts["brightness"], pred.mean())
    torch.testing.assert_close(total, base_total + 0.5 * pred.mean())


def test_extra_terms_are_checked():
    term = _MeanOfPrediction()
    with pytest.raises(ValueError, match="may not reuse the names"):
        CompositeLoss(perceptual=0.0, extra_terms={"wssim": {"weight": 1.0, "term": term}})
    with pytest.raises(ValueError, match=">= 0"):
        CompositeLoss(perceptual=0.0, extra_terms={"tv": {"weight": -1.0, "term": term}})
    with pytest.raises(TypeError, match="'term' must build an nn.Module"):
        CompositeLoss(perceptual=0.0, extra_terms={"tv": {"weight": 1.0, "term": "tv"}})
