"""Wavelet SSIM (W-SSIM) loss from Y-net (Yang et al., ICASSP 2020), with ptwt's Haar DWT.

SSIM is computed on the image and on the Haar sub-bands, and the low-pass band is
decomposed again. With ratio ``r`` each level splits the weight carried by its input
band into LH, HL: r(1-r) each, HH: (1-r)^2, and passes r^2 on to the next level's LL;
the last LL keeps what is left. For two levels and r = 0.7 (Y-net, S3Net):

    image 1 | level 1: LH, HL 0.21, HH 0.09 | level 2: LH, HL 0.1029, HH 0.0441 | LL 0.2401

(weights sum to 2). ``levels=0`` is plain single-scale SSIM. The loss is
``sum(w * (1 - SSIM(band)))``, the same gradient as Y-net's ``-sum(w * SSIM)``.
"""

from __future__ import annotations

import functools

import ptwt
import torch
from torch import nn

from relight.metrics.functional import ssim


def wssim_weights(levels: int, ratio: float) -> list[tuple[str, float]]:
    """Named band weights, image first, e.g. ``[("image", 1.0), ("L1.LH", 0.21), ...]``."""
    if levels < 0:
        raise ValueError(f"W-SSIM levels must be >= 0, got {levels}")
    if not 0 < ratio < 1:
        raise ValueError(f"W-SSIM ratio must be in (0, 1), got {ratio}")
    weights = [("image", 1.0)]
    carried = 1.0
    for level in range(1, levels + 1):
        detail = carried * ratio * (1 - ratio)
        weights += [
            (f"L{level}.LH", detail),
            (f"L{level}.HL", detail),
            (f"L{level}.HH", carried * (1 - ratio) ** 2),
        ]
        carried *= ratio**2
    if levels:
        weights.append((f"L{levels}.LL", carried))
    return weights


#: pywt's ``Wavelet("haar").filter_bank``: decomposition low and high, reconstruction low
#: and high (the tests check the bands against pywt and against ptwt given ``"haar"``).
HAAR_FILTER_BANK = (
    (0.5**0.5, 0.5**0.5),
    (-(0.5**0.5), 0.5**0.5),
    (0.5**0.5, 0.5**0.5),
    (0.5**0.5, -(0.5**0.5)),
)


class DeviceHaar:
    """The Haar wavelet with its filter bank as tensors on one device, in one dtype.

    ptwt accepts any pywt-compatible wavelet (``filter_bank`` and ``len``). Given the name
    ``"haar"``, it builds the four filters from Python floats on every call: on a GPU, four
    blocking host-to-device copies per transform, so the host stops queueing work twice per
    training step. These filters are made once per device and dtype (:func:`device_haar`).
    """

    name = "haar"

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.filter_bank = tuple(
            torch.tensor(f, dtype=dtype, device=device) for f in HAAR_FILTER_BANK
        )

    def __len__(self) -> int:
        return len(self.filter_bank[0])


@functools.lru_cache(maxsize=8)
def device_haar(device: torch.device, dtype: torch.dtype) -> DeviceHaar:
    """The :class:`DeviceHaar` of ``device`` and ``dtype``, made on first use."""
    return DeviceHaar(device, dtype)


@torch.compiler.disable
def haar_bands(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Haar sub-bands of a (B, C, H, W) batch in :func:`wssim_weights` order (image excluded).

    Per level: LH, HL, HH (pywt's horizontal, vertical, diagonal details), then the last LL.
    Never traced by ``torch.compile`` (``model.compile_loss``): torch 2.11's dynamo fails
    on ptwt's ``typing.cast`` of a generic alias; the SSIM around it is still compiled.
    """
    if levels == 0:
        return []
    coeffs = ptwt.wavedec2(x, device_haar(x.device, x.dtype), level=levels, mode="zero")
    bands: list[torch.Tensor] = []
    for details in reversed(coeffs[1:]):  # ptwt lists the coarsest level first
        bands += list(details)
    bands.append(coeffs[0])
    return bands


#: Side of SSIM's Gaussian window: the coarsest band must be at least this wide.
SSIM_WINDOW = 11


def check_wssim_size(levels: int, side: int) -> None:
    """A ``ValueError`` unless an image of ``side`` px keeps an 11x11 SSIM window on its
    coarsest Haar band after ``levels`` halvings (``11 * 2**levels`` px)."""
    if side >> levels < SSIM_WINDOW:
        raise ValueError(
            f"W-SSIM with {levels} levels needs images of at least "
            f"{SSIM_WINDOW << levels} px (an 11x11 window on the coarsest band); got {side}"
        )


class WSSIMLoss(nn.Module):
    """``sum(w_b * (1 - SSIM(pred_b, target_b)))`` over the image and its Haar sub-bands."""

    def __init__(self, levels: int = 2, ratio: float = 0.7) -> None:
        super().__init__()
        self.levels = levels
        self.ratio = ratio
        self.weights = [w for _, w in wssim_weights(levels, ratio)]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_wssim_size(self.levels, min(pred.shape[-2:]))
        pred_bands = [pred, *haar_bands(pred, self.levels)]
        target_bands = [target, *haar_bands(target, self.levels)]
        loss = pred.new_zeros(())
        for weight, p, t in zip(self.weights, pred_bands, target_bands, strict=True):
            loss = loss + weight * (1 - ssim(p, t).mean())
        return loss
