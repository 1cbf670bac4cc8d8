import pytest
import torch

from relight.models import S3Net, build_input
from relight.models.blocks import ChannelAttention, PixelAttention


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_authors_model(s3net):
    assert count(s3net) == 49_353_170
    assert count(s3net.encoder) == 28_180_056
    assert count(s3net.attention16) == 19_271_041
    assert count(s3net.attention8) == 1_205_089
    assert count(s3net.attention4) == 678_025
    assert count(s3net.enhancement) == 14_840
    assert count(s3net.tail) == 4_119


def test_forward_shape_and_range(s3net):
    x = torch.rand(2, 8, 64, 96)
    with torch.no_grad():
        y = s3net(x)
    assert y.shape == (2, 3, 64, 96)
    assert y.abs().max() <= 1


def test_encoder_gives_three_stages(s3net):
    with torch.no_grad():
        features = s3net.encoder(torch.rand(1, 8, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(256, 16, 16), (512, 8, 8), (1024, 4, 4)]


@pytest.mark.parametrize("size", [(50, 64), (64, 72), (16, 16)])
def test_sizes_not_multiple_of_16_or_too_small_are_rejected(s3net, size):
    with pytest.raises(ValueError, match="multiples of 16"):
        s3net(torch.rand(1, 8, *size))


def test_wrong_channel_count_is_rejected(s3net):
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\).*got shape \(1, 6, 64, 64\)"):
        s3net(torch.rand(1, 6, 64, 64))


def test_without_attention_keeps_residual_convs_only():
    model = S3Net(attention=False, encoder_weights="none")
    assert not any(isinstance(m, (ChannelAttention, PixelAttention)) for m in model.modules())
    # each block loses channel attention (C->C/8->C) and pixel attention (C->C/8->1)
    gates = sum(
        (c * c // 8 + c // 8) + (c // 8 * c + c) + (c * c // 8 + c // 8) + (c // 8 + 1)
        for c in (1024, 256, 192)
    )
    assert count(model) == 49_353_170 - gates
    assert model(torch.rand(1, 8, 32, 32)).shape == (1, 3, 32, 32)


def test_without_enhancement_is_identity():
    model = S3Net(enhancement=False, encoder_weights="none").eval()
    assert isinstance(model.enhancement, torch.nn.Identity)
    assert count(model) == 49_353_170 - 14_840
    assert model.min_size == 16
    assert model(torch.rand(1, 8, 16, 16)).shape == (1, 3, 16, 16)


def test_without_depth_takes_six_channels():
    model = S3Net(depth=False, encoder_weights="none")
    assert model.in_channels == 6
    assert count(model) == 49_353_170 - 2 * 32 * 9
    assert model(torch.rand(1, 6, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="input RGB, guide RGB"):
        model(torch.rand(1, 8, 32, 32))


def test_other_timm_encoder():
    model = S3Net(encoder="resnet18", encoder_weights="none")
    assert model.head_channels == 7
    assert model(torch.rand(1, 8, 32, 32)).shape == (1, 3, 32, 32)


def test_encoder_with_wrong_strides_is_rejected():
    with pytest.raises(ValueError, match="strides"):
        S3Net(encoder="vgg11", encoder_weights="none")


def test_global_residual_adds_the_input_image():
    torch.manual_seed(0)
    plain = S3Net(encoder="resnet18", encoder_weights="none").eval()
    residual = S3Net(encoder="resnet18", encoder_weights="none", global_residual=True).eval()
    residual.load_state_dict(plain.state_dict())
    x = torch.rand(1, 8, 32, 32)
    with torch.no_grad():
        pre_tanh = torch.atanh(plain(x).clamp(-0.999999, 0.999999))
        expected = torch.tanh(pre_tanh + x[:, :3])
        torch.testing.assert_close(residual(x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("form", "combine"),
    [
        ("outside_tanh", lambda x, tanh_t: x + tanh_t),
        ("gain", lambda x, tanh_t: x * torch.exp(2 * tanh_t)),
    ],
)
def test_residual_forms_that_start_from_the_identity(form, combine):
    torch.manual_seed(0)
    plain = S3Net(encoder="resnet18", encoder_weights="none").eval()
    residual = S3Net(
        encoder="resnet18", encoder_weights="none", global_residual=True, residual_form=form
    ).eval()
    residual.load_state_dict(plain.state_dict())
    assert residual.hparams()["residual_form"] == form
    x = torch.rand(1, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(residual(x), combine(x[:, :3], plain(x)))  # plain = tanh(t)
        torch.nn.init.zeros_(residual.tail.weight)
        torch.nn.init.zeros_(residual.tail.bias)
        torch.testing.assert_close(residual(x), x[:, :3])  # a zero tail is the identity
    with pytest.raises(ValueError, match="residual_form must be one of"):
        S3Net(encoder="resnet18", encoder_weights="none", residual_form="sum")


def test_global_colour_adds_one_learned_offset_per_image_and_channel():
    torch.manual_seed(0)
    plain = S3Net(
        encoder="resnet18", encoder_weights="none", global_residual=True, residual_form="gain"
    ).eval()
    coloured = S3Net(
        encoder="resnet18",
        encoder_weights="none",
        global_residual=True,
        residual_form="gain",
        global_colour=True,
    ).eval()
    assert coloured.hparams()["global_colour"] and not plain.hparams()["global_colour"]
    coloured.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(coloured(x), plain(x))  # zero at initialisation
        torch.nn.init.normal_(coloured.global_colour.weight)
        torch.nn.init.zeros_(coloured.tail.weight)
        torch.nn.init.zeros_(coloured.tail.bias)
        ratio = coloured(x) / x[:, :3].clamp_min(1e-6)
    gain = ratio.flatten(2)[..., 0]  # one gain per image and channel, the same at every pixel
    torch.testing.assert_close(ratio, gain[:, :, None, None].expand_as(ratio), rtol=1e-3, atol=1e-3)
    assert not torch.allclose(gain[0], gain[1])  # computed from each image's own features
    coloured.train()
    coloured(x).mean().backward()
    assert coloured.global_colour.weight.grad.abs().sum() > 0


def test_build_input_order_and_checks():
    image, guide = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    x = build_input(image, guide, torch.full((1, 32, 32), 2.0), torch.full((1, 1, 32, 32), 3.0))
    assert x.shape == (1, 8, 32, 32)
    assert [x[0, c, 0, 0].item() for c in (0, 3, 6, 7)] == [0, 1, 2, 3]
    assert build_input(image, guide).shape == (1, 6, 32, 32)
    with pytest.raises(ValueError, match="both depth maps"):
        build_input(image, guide, torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="differ in size"):
        build_input(image, torch.ones(1, 3, 32, 48))


def test_hparams_round_trip():
    model = S3Net(encoder="resnet18", encoder_weights="none", attention=False)
    again = S3Net(**model.hparams())
    assert again.hparams() == model.hparams()
