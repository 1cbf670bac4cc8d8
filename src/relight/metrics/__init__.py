"""Challenge metrics (PSNR, SSIM, LPIPS, MPS) with their conventions written down:
:class:`RelightMetrics` computes each image's scores and their means; the functional forms
and the LPIPS network builder are below it."""

from relight.metrics.functional import mps, psnr, ssim, ssim_map
from relight.metrics.lpips import build_lpips
from relight.metrics.relight_metrics import METRIC_NAMES, RelightMetrics

__all__ = [
    "METRIC_NAMES",
    "RelightMetrics",
    "build_lpips",
    "mps",
    "psnr",
    "ssim",
    "ssim_map",
]
