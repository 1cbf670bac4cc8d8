import time

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from relight.metrics import LPIPS, MPS, PSNR, SSIM, RelightMetrics, build_lpips, mps, psnr
from relight.models import WeightsUnavailableError


@pytest.fixture
def pair(generator):
    a = torch.rand(3, 3, 48, 40, generator=generator, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return a, b


def test_psnr_and_ssim_metrics_equal_skimage_per_image_means(pair):
    a, b = pair
    psnr_metric, ssim_metric = PSNR(), SSIM()
    for i in range(3):  # one image per update, like a data loader
        psnr_metric.update(a[i : i + 1], b[i : i + 1])
        ssim_metric.update(a[i : i + 1], b[i : i + 1])
    psnr_ref = [peak_signal_noise_ratio(b[i].numpy(), a[i].numpy(), data_range=1) for i in range(3)]
    ssim_ref = [
        structural_similarity(
            a[i].numpy(),
            b[i].numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=0,
        )  # fmt: skip
        for i in range(3)
    ]
    assert psnr_metric.compute().item() == pytest.approx(sum(psnr_ref) / 3, abs=1e-4)
    assert ssim_metric.compute().item() == pytest.approx(sum(ssim_ref) / 3, abs=1e-4)


def test_psnr_is_per_image_mean_not_pooled(pair):
    a, b = pair
    b = b.clone()
    b[0] = a[0] + 0.5 * (b[0] - a[0])  # one much better image
    metric = PSNR()
    metric.update(a, b)
    assert metric.compute().item() == pytest.approx(psnr(a, b).mean().item(), abs=1e-5)
    pooled = 10 * torch.log10(1 / (a - b).pow(2).mean())
    assert abs(metric.compute().item() - pooled.item()) > 0.1


def test_predictions_are_clamped_like_saved_pngs():
    target = torch.ones(1, 3, 16, 16)
    metric = PSNR()
    metric.update(torch.full((1, 3, 16, 16), 1.5), target)
    assert torch.isinf(metric.compute())


def test_mps_matches_the_ntire_table():
    assert mps(0.6784, 0.1566) == pytest.approx(0.7609)  # S3Net, NTIRE 2021 track 2
    assert mps(0.7087, 0.1737) == pytest.approx(0.7675, abs=1e-4)  # DeepBlueAI


@pytest.fixture(scope="module")
def random_lpips():
    torch.manual_seed(0)
    return LPIPS(backbone_weights="none")


def test_lpips_of_identical_images_is_zero(random_lpips, generator):
    a = torch.rand(2, 3, 64, 64, generator=generator)
    assert random_lpips.score(a, a).abs().max().item() == 0
    assert (random_lpips.score(a, torch.rand_like(a)) > 0).all()
    assert random_lpips.backbone == "alex v0.1 RANDOM backbone (test only, not comparable)"


def test_lpips_feeds_the_network_images_in_minus_one_to_one(random_lpips, generator):
    """Images in [0, 1] go to the lpips network as 2x - 1 (its convention), one score each."""
    a = torch.rand(2, 3, 64, 64, generator=generator)
    b = torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = random_lpips.network(2 * a - 1, 2 * b - 1).flatten()
        unscaled = random_lpips.network(a, b).flatten()
    torch.testing.assert_close(random_lpips.score(a, b), expected)
    assert (expected - unscaled).abs().min() > 1e-4  # the convention matters


def test_lpips_missing_backbone_fails_fast_with_clear_message():
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="alexnet-owt-7be5be79.pth"):
        build_lpips("alex")
    assert time.monotonic() - start < 10


def test_lpips_backbone_from_local_file(tmp_path):
    import torchvision

    torch.manual_seed(3)
    state = torchvision.models.alexnet().state_dict()
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    network = build_lpips("alex", backbone_weights=str(path))
    assert torch.equal(network.net.slice2.state_dict()["3.weight"], state["features.3.weight"])


def test_mps_metric_combines_ssim_and_lpips(random_lpips, generator):
    a = torch.rand(2, 3, 64, 64, generator=generator)
    b = (a + 0.05 * torch.randn(a.shape, generator=generator)).clamp(0, 1)
    metric = MPS(lpips=random_lpips)
    metric.update(b, a)
    ssim_metric, lpips_metric = SSIM(), LPIPS(backbone_weights="none")
    lpips_metric.network = random_lpips.network
    ssim_metric.update(b, a)
    lpips_metric.update(b, a)
    expected = mps(ssim_metric.compute(), lpips_metric.compute())
    assert metric.compute().item() == pytest.approx(expected.item(), abs=1e-5)


def test_relight_metrics_turns_lpips_off_with_one_warning(generator):
    with pytest.warns(RuntimeWarning, match="LPIPS and MPS are OFF"):
        metrics = RelightMetrics()
    a = torch.rand(1, 3, 32, 32, generator=generator)
    metrics.update(a, a)
    assert set(metrics.compute()) == {"psnr", "ssim"}
    assert "LPIPS n/a" in metrics.convention
    with pytest.raises(WeightsUnavailableError):
        RelightMetrics(require_lpips=True)


def test_relight_metrics_with_lpips(generator):
    torch.manual_seed(0)
    metrics = RelightMetrics(lpips_weights="none")
    a = torch.rand(2, 3, 32, 32, generator=generator)
    b = torch.rand(2, 3, 32, 32, generator=generator)
    metrics.update(a, b)
    out = metrics.compute()
    assert out["mps"].item() == pytest.approx(0.5 * (out["ssim"] + 1 - out["lpips"]).item())
    assert "LPIPS alex v0.1 RANDOM backbone" in metrics.convention
    metrics.reset()
    metrics.update(a, a)
    assert metrics.compute()["ssim"].item() == pytest.approx(1.0)
