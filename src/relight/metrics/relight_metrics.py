"""torchmetrics objects for relighting: PSNR, SSIM, LPIPS and the NTIRE ranking score MPS.

Every metric is a per-image value averaged over the set (the NTIRE convention), computed
on predictions clamped to [0, 1] (what a saved PNG holds); see
:mod:`relight.metrics.functional` for the PSNR/SSIM conventions.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics import Metric

from relight.metrics.functional import mps, psnr, ssim
from relight.metrics.lpips import build_lpips
from relight.models.weights import WeightsUnavailableError


class PerImageMean(Metric):
    """Mean over images of a per-image score; subclasses define :meth:`score`."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = self.score(preds.clamp(0, 1), target)
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


class PSNR(PerImageMean):
    """Mean per-image PSNR (dB) on RGB in [0, 1], no border crop."""

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return psnr(preds, target)


class SSIM(PerImageMean):
    """Mean per-image SSIM on RGB in [0, 1] (Gaussian 11x11, sigma 1.5, no border crop)."""

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ssim(preds.double(), target.double())


class LPIPS(PerImageMean):
    """Mean per-image LPIPS distance (lower is better); ``str(metric)`` names the backbone."""

    higher_is_better = False

    def __init__(
        self, net: str = "alex", version: str = "0.1", backbone_weights: str = "imagenet", **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.net_name, self.version = net, version
        self.random_backbone = str(backbone_weights).lower() == "none"
        self.network = build_lpips(net, version, backbone_weights)

    @property
    def backbone(self) -> str:
        """E.g. ``"alex v0.1"``: printed next to every LPIPS number."""
        random = " RANDOM backbone (test only, not comparable)" if self.random_backbone else ""
        return f"{self.net_name} v{self.version}{random}"

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.network(preds, target, normalize=True).flatten()


class MPS(PerImageMean):
    """Mean per-image MPS = 0.5 * (SSIM + 1 - LPIPS), the NTIRE 2021 ranking score."""

    def __init__(self, lpips: LPIPS | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lpips = lpips if lpips is not None else LPIPS()

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mps(ssim(preds.double(), target.double()), self.lpips.score(preds, target).double())


class RelightMetrics(nn.Module):
    """PSNR, SSIM, LPIPS and MPS of one stage, computing each per-image score once.

    When the LPIPS backbone weights are missing and ``require_lpips`` is false, LPIPS and
    MPS are switched off with one warning and left out of :meth:`compute` (tables show
    ``n/a``); with ``require_lpips`` the :class:`WeightsUnavailableError` propagates.
    """

    def __init__(
        self,
        lpips_net: str = "alex",
        lpips_version: str = "0.1",
        lpips_weights: str = "imagenet",
        require_lpips: bool = False,
    ) -> None:
        super().__init__()
        self.psnr, self.ssim = PSNR(), SSIM()
        self.lpips: LPIPS | None
        try:
            self.lpips = LPIPS(lpips_net, lpips_version, lpips_weights)
        except WeightsUnavailableError as error:
            if require_lpips:
                raise
            warnings.warn(
                f"LPIPS and MPS are OFF for this run: {error}", RuntimeWarning, stacklevel=2
            )
            self.lpips = None

    @property
    def convention(self) -> str:
        """One line describing how the numbers were computed."""
        lpips = f"LPIPS {self.lpips.backbone}" if self.lpips is not None else "LPIPS n/a"
        return "RGB [0,1], no crop, per-image mean; SSIM gaussian 11/1.5; " + lpips

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.psnr.update(preds, target)
        self.ssim.update(preds, target)
        if self.lpips is not None:
            self.lpips.update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        """``{"psnr", "ssim"[, "lpips", "mps"]}`` over everything seen since the last reset."""
        out = {"psnr": self.psnr.compute(), "ssim": self.ssim.compute()}
        if self.lpips is not None:
            out["lpips"] = self.lpips.compute()
            out["mps"] = mps(out["ssim"], out["lpips"])
        return out

    def reset(self) -> None:
        for metric in (self.psnr, self.ssim, self.lpips):
            if metric is not None:
                metric.reset()
