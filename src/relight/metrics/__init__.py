"""Challenge metrics (PSNR, SSIM, LPIPS, MPS) with their conventions written down."""

from relight.metrics.functional import mps, psnr, ssim, ssim_map
from relight.metrics.lpips import build_lpips
from relight.metrics.relight_metrics import LPIPS, MPS, PSNR, SSIM, RelightMetrics

__all__ = [
    "LPIPS",
    "MPS",
    "PSNR",
    "SSIM",
    "RelightMetrics",
    "build_lpips",
    "mps",
    "psnr",
    "ssim",
    "ssim_map",
]
