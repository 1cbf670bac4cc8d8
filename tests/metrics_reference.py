"""Independent references for metric tests: scikit-image scores of image files, and the
per-image means a summary must equal."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def assert_means_of_rows(results: dict, rows: list[dict[str, str]]) -> None:
    """Every result of the summary is the per-image mean of its column in metrics.csv."""
    for method, prefix in (("S3Net", ""), ("identity (output = input)", "identity_")):
        for metric, value in results[method].items():
            column = [float(r[prefix + metric]) for r in rows]
            assert value == pytest.approx(sum(column) / len(column), abs=1e-9), (method, metric)


def skimage_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int = 0) -> float:
    """SSIM by scikit-image with the NTIRE convention (Gaussian 11x11, sigma 1.5,
    population statistics, data range 1)."""
    from skimage.metrics import structural_similarity

    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=channel_axis,
    )


def skimage_scores(prediction: Path, target: Path) -> dict[str, float]:
    """PSNR and SSIM of two image files by scikit-image (RGB in [0, 1], Gaussian SSIM)."""
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio

    a, b = (
        np.asarray(Image.open(p).convert("RGB"), np.float64) / 255 for p in (prediction, target)
    )
    return {
        "psnr": peak_signal_noise_ratio(b, a, data_range=1),
        "ssim": skimage_ssim(a, b, channel_axis=2),
    }
