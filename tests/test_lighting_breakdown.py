import pytest

from relight.evaluation import IDENTITY, format_value, row_means
from relight.lighting_breakdown import breakdown_by_lighting_change, format_breakdown
from relight.metrics import METRIC_NAMES, RelightMetrics


def row(name: str, psnr: float, ssim: float, identity_psnr: float, identity_ssim: float) -> dict:
    scores = {"psnr": psnr, "ssim": ssim, "lpips": 0.5, "mps": 0.5 * (ssim + 0.5)}
    baseline = {"psnr": identity_psnr, "ssim": identity_ssim, "lpips": 0.5}
    baseline["mps"] = 0.5 * (identity_ssim + 0.5)
    return {"name": name, **scores, **{f"identity_{k}": v for k, v in baseline.items()}}


ROWS = [
    row("a", 20.0, 0.50, 10.0, 0.40),
    row("b", 22.0, 0.70, 14.0, 0.60),
    row("c", 15.0, 0.30, 16.0, 0.35),
]
KINDS = {"a": "other_direction", "b": "other_direction", "c": "same_direction"}


@pytest.fixture(scope="module")
def summarize():
    """Each group's means as evaluate computes them (fresh RelightMetrics accumulators)."""
    metrics = RelightMetrics(lpips_weights="none")
    return lambda rows: row_means(rows, metrics)


def test_each_group_is_the_mean_of_its_rows(summarize):
    breakdown = breakdown_by_lighting_change(ROWS, KINDS, summarize)
    assert list(breakdown) == ["same_direction", "other_direction"]  # the fixed order
    other = breakdown["other_direction"]
    assert other["images"] == 2
    assert other["results"]["S3Net"]["psnr"] == 21.0
    assert other["results"]["S3Net"]["ssim"] == pytest.approx(0.6)
    assert other["results"][IDENTITY]["psnr"] == 12.0
    assert other["results"][IDENTITY]["ssim"] == pytest.approx(0.5)
    same = breakdown["same_direction"]["results"]["S3Net"]
    assert (same["psnr"], same["ssim"]) == (15.0, 0.3)
    assert set(same) == set(METRIC_NAMES)


def test_the_table_shows_model_identity_and_difference(summarize):
    breakdown = breakdown_by_lighting_change(ROWS, KINDS, summarize)
    lines = format_breakdown(breakdown, ("psnr", "ssim"), format_value).splitlines()
    assert (
        lines[0]
        == "| lighting change | images | PSNR (S3Net / identity) | SSIM (S3Net / identity) |"
    )
    assert lines[2] == (
        "| same direction, other temperature | 1 | 15.00 / 16.00 (-1.00) | 0.3000 / 0.3500 (-0.0500) |"
    )
    assert lines[3] == (
        "| another direction (45-135°) | 2 | 21.00 / 12.00 (+9.00) | 0.6000 / 0.5000 (+0.1000) |"
    )


def test_a_row_without_a_kind_is_an_error(summarize):
    with pytest.raises(KeyError, match=r"no lighting change for rows \['c'\]"):
        breakdown_by_lighting_change(
            ROWS, {"a": "same_direction", "b": "same_direction"}, summarize
        )
