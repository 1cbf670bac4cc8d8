"""Per-image PSNR and SSIM with the NTIRE 2021 conventions written down.

Conventions (as the challenge scored, and as ``skimage.metrics``):
RGB in [0, 1] (``data_range`` 1), full image, no border crop, no Y-channel conversion.
SSIM uses an 11x11 Gaussian window with sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, population
(co)variances, and averages the SSIM map over the *valid* region (no padding) and the
channels, which equals ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=...)``.
Both functions return one value per image; datasets report the mean over images.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape; got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB of each image in a (B, C, H, W) batch, computed in float64."""
    _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised Gaussian window, made on ``device``: no host-to-device copy, and a
    graph compiled from it (``model.compile_loss``) has no CPU node to keep CUDA graphs off."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(dtype)


_cached_gaussian_1d = functools.lru_cache(maxsize=16)(_gaussian_1d)


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over each channel, 'valid' region only."""
    c = x.shape[1]
    k = kernel.numel()
    x = F.conv2d(x, kernel.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, kernel.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """The SSIM map over the valid region, shape (B, C, H - window + 1, W - window + 1)."""
    _check_pair(pred, target)
    if min(pred.shape[-2:]) < window:
        raise ValueError(
            f"SSIM with an {window}x{window} window needs images of at least {window} px; "
            f"got {tuple(pred.shape[-2:])}"
        )
    # eager calls share one window per device and dtype; torch.compile traces the function
    # itself (dynamo cannot use an lru_cache, and warns when it meets one)
    make = _gaussian_1d if torch.compiler.is_compiling() else _cached_gaussian_1d
    kernel = make(window, sigma, pred.dtype, pred.device)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _blur(pred, kernel), _blur(target, kernel)
    # One batched blur of the three second moments.
    moments = _blur(torch.cat([pred * pred, target * target, pred * target], dim=1), kernel)
    xx, yy, xy = moments.chunk(3, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean SSIM of each image in a (B, C, H, W) batch (see the module conventions)."""
    return ssim_map(pred, target, data_range, window, sigma).flatten(1).mean(1)


def mps(ssim_value: torch.Tensor | float, lpips_value: torch.Tensor | float):
    """NTIRE 2021 ranking score: MPS = 0.5 * (SSIM + 1 - LPIPS)."""
    return 0.5 * (ssim_value + 1 - lpips_value)
