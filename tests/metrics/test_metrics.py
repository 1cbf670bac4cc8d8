import time

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from relight.metrics import RelightMetrics, build_lpips, mps, psnr
from relight.models import WeightsUnavailableError

from ..metrics_reference import skimage_ssim


@pytest.fixture
def pair(generator):
    a = torch.rand(3, 3, 48, 40, generator=generator, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return a, b


@pytest.fixture(scope="module")
def random_lpips():
    """RelightMetrics with a random LPIPS backbone (no weights needed; numbers meaningless)."""
    torch.manual_seed(0)
    return RelightMetrics(lpips_weights="none")


def test_psnr_and_ssim_metrics_equal_skimage_per_image_means(pair, random_lpips):
    a, b = pair
    metrics = random_lpips.fresh()
    for i in range(3):  # one image per update, like a data loader
        metrics.update(a[i : i + 1], b[i : i + 1])
    psnr_ref = [peak_signal_noise_ratio(b[i].numpy(), a[i].numpy(), data_range=1) for i in range(3)]
    ssim_ref = [skimage_ssim(a[i].numpy(), b[i].numpy()) for i in range(3)]
    means = metrics.compute()
    assert means["psnr"].item() == pytest.approx(sum(psnr_ref) / 3, abs=1e-4)
    assert means["ssim"].item() == pytest.approx(sum(ssim_ref) / 3, abs=1e-4)


def test_scores_inside_a_bf16_autocast_region_are_the_float32_scores(pair, random_lpips):
    """Lightning validates a bf16-mixed run inside autocast: the scores that pick the best
    checkpoint (LPIPS's convolutions included) stay those of float32."""
    a, b = (t.float() for t in pair)
    plain = random_lpips.score(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = random_lpips.score(a, b)
    for name in ("psnr", "ssim", "lpips", "mps"):
        assert torch.equal(mixed[name], plain[name]), name


def test_psnr_is_per_image_mean_not_pooled(pair, random_lpips):
    a, b = pair
    b = b.clone()
    b[0] = a[0] + 0.5 * (b[0] - a[0])  # one much better image
    metrics = random_lpips.fresh()
    scores = metrics.update(a, b)
    assert torch.equal(scores["psnr"], psnr(a, b))  # the rows: one score per image
    assert metrics.compute()["psnr"].item() == pytest.approx(psnr(a, b).mean().item(), abs=1e-5)
    pooled = 10 * torch.log10(1 / (a - b).pow(2).mean())
    assert abs(metrics.compute()["psnr"].item() - pooled.item()) > 0.1


def test_predictions_are_clamped_like_saved_pngs(random_lpips):
    target = torch.ones(1, 3, 64, 64)
    metrics = random_lpips.fresh()
    metrics.update(torch.full((1, 3, 64, 64), 1.5), target)
    assert torch.isinf(metrics.compute()["psnr"])


def test_mps_matches_the_ntire_table():
    assert mps(0.6784, 0.1566) == pytest.approx(0.7609)  # S3Net, NTIRE 2021 track 2
    assert mps(0.7087, 0.1737) == pytest.approx(0.7675, abs=1e-4)  # DeepBlueAI


def test_lpips_of_identical_images_is_zero(random_lpips, generator):
    a = torch.rand(2, 3, 64, 64, generator=generator)
    assert random_lpips.score(a, a)["lpips"].abs().max().item() == 0
    assert (random_lpips.score(a, torch.rand_like(a))["lpips"] > 0).all()
    assert random_lpips.lpips_backbone == "alex v0.1 RANDOM backbone (test only, not comparable)"


def test_lpips_feeds_the_network_images_in_minus_one_to_one(random_lpips, generator):
    """Images in [0, 1] go to the lpips network as 2x - 1 (its convention), one score each."""
    a = torch.rand(2, 3, 64, 64, generator=generator)
    b = torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = random_lpips.lpips_network(2 * a - 1, 2 * b - 1).flatten().double()
        unscaled = random_lpips.lpips_network(a, b).flatten().double()
    torch.testing.assert_close(random_lpips.score(a, b)["lpips"], expected)
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


def test_mps_combines_each_image_s_ssim_and_lpips(random_lpips, generator):
    a = torch.rand(2, 3, 64, 64, generator=generator)
    b = (a + 0.05 * torch.randn(a.shape, generator=generator)).clamp(0, 1)
    scores = random_lpips.score(b, a)
    torch.testing.assert_close(scores["mps"], 0.5 * (scores["ssim"] + 1 - scores["lpips"]))


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


def test_means_are_float64_means_of_the_rows_also_after_moving(random_lpips, generator):
    """The means of metrics.json equal the means of the per-image rows (metrics.csv), also
    after the metrics were moved (torchmetrics drops set_dtype in .to())."""
    metrics = random_lpips.fresh().to(torch.device("cpu"))
    a = torch.rand(3, 3, 64, 64, generator=generator)
    b = torch.rand(3, 3, 64, 64, generator=generator)
    with torch.inference_mode():
        rows = metrics.update(a, b)
        means = metrics.compute()
    for name, values in rows.items():
        assert values.dtype == means[name].dtype == torch.float64
        assert means[name].item() == pytest.approx(values.mean().item(), abs=1e-12), name
