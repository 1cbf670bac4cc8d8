"""The challenge metrics of a set of images: per-image PSNR, SSIM, LPIPS and MPS, and their
means (the NTIRE convention: a per-image score averaged over the set).

:class:`RelightMetrics` is the one object that computes them, for training (``val/``,
``test/``), ``relight-eval`` and ``relight-predict``: :meth:`~RelightMetrics.update` scores
a batch, returns each image's scores (the rows of ``metrics.csv``) and accumulates their
means in torchmetrics ``MeanMetric``\\ s (summed across DDP ranks). Predictions are clamped
to [0, 1] first (what a saved PNG holds); see :mod:`relight.metrics.functional` for the
PSNR/SSIM conventions.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from relight.metrics.functional import mps, psnr, ssim
from relight.metrics.lpips import build_lpips
from relight.models.weights import WeightsUnavailableError

#: Every metric, in table order (LPIPS and MPS only when the LPIPS backbone is there).
METRIC_NAMES = ("psnr", "ssim", "lpips", "mps")


class RelightMetrics(nn.Module):
    """PSNR, SSIM, LPIPS and MPS of one set: per-image scores and their running means.

    When the LPIPS backbone weights are missing and ``require_lpips`` is false, LPIPS and
    MPS are switched off with one warning and left out (tables show ``n/a``); with
    ``require_lpips`` the :class:`WeightsUnavailableError` propagates.

    Args:
        lpips_net: LPIPS backbone, ``"alex"`` (NTIRE 2021), ``"vgg"`` or ``"squeeze"``.
        lpips_version: version of LPIPS' linear heads.
        lpips_weights: ``"imagenet"``, a local torchvision state-dict file, or ``"none"``
            for a random backbone (tests only: the numbers mean nothing).
        require_lpips: fail instead of switching LPIPS off when its weights are missing.
    """

    def __init__(
        self,
        lpips_net: str = "alex",
        lpips_version: str = "0.1",
        lpips_weights: str = "imagenet",
        require_lpips: bool = False,
    ) -> None:
        super().__init__()
        self.lpips_net, self.lpips_version = lpips_net, lpips_version
        self.random_backbone = str(lpips_weights).lower() == "none"
        self.lpips_network: nn.Module | None
        try:
            self.lpips_network = build_lpips(lpips_net, lpips_version, lpips_weights)
        except WeightsUnavailableError as error:
            if require_lpips:
                raise
            warnings.warn(
                f"LPIPS and MPS are OFF for this run: {error}", RuntimeWarning, stacklevel=2
            )
            self.lpips_network = None
        # on first use: importing torchmetrics takes seconds, which a console script that
        # only reads METRIC_NAMES (relight-report, relight-wandb) should not pay
        from torchmetrics import MeanMetric

        # float64 sums, as the per-image scores: the means equal those of metrics.csv
        self.means = nn.ModuleDict(
            {name: MeanMetric().set_dtype(torch.float64) for name in self.names}
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The metrics computed: ``psnr``, ``ssim`` and, with LPIPS, ``lpips`` and ``mps``."""
        return METRIC_NAMES if self.lpips_network is not None else METRIC_NAMES[:2]

    @property
    def lpips_backbone(self) -> str | None:
        """E.g. ``"alex v0.1"`` (``None`` without LPIPS): printed next to every LPIPS number."""
        if self.lpips_network is None:
            return None
        random = " RANDOM backbone (test only, not comparable)" if self.random_backbone else ""
        return f"{self.lpips_net} v{self.lpips_version}{random}"

    @property
    def convention(self) -> str:
        """One line describing how the numbers were computed."""
        lpips = f"LPIPS {self.lpips_backbone}" if self.lpips_network is not None else "LPIPS n/a"
        return "RGB [0,1], no crop, per-image mean; SSIM gaussian 11/1.5; " + lpips

    @torch.no_grad()
    def score(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each image's scores, ``{name: (B,) float64}``, of a (B, 3, H, W) batch in [0, 1]
        (the prediction is clamped to [0, 1] first). Scored in float32 or wider (LPIPS's
        network too), also inside a mixed-precision region such as Lightning's bf16-mixed
        validation; the prediction itself is whatever the network gave."""
        with torch.autocast(prediction.device.type, enabled=False):
            wide = torch.promote_types(  # bf16 -> float32, float64 stays
                torch.promote_types(prediction.dtype, target.dtype), torch.float32
            )
            prediction, target = prediction.to(wide).clamp(0, 1), target.to(wide)
            scores = {
                "psnr": psnr(prediction, target),
                "ssim": ssim(prediction.double(), target.double()),
            }
            if self.lpips_network is not None:
                distance = self.lpips_network(prediction.float(), target.float(), normalize=True)
                scores["lpips"] = distance.flatten().double()
                scores["mps"] = mps(scores["ssim"], scores["lpips"])
        return scores

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score a batch (:meth:`score`), add the scores to the means, and return them."""
        scores = self.score(prediction, target)
        self.add(scores)
        return scores

    def add(self, scores: dict[str, torch.Tensor]) -> None:
        """Add per-image scores, ``{name: (B,)}`` as :meth:`score` returns them, to the means
        (e.g. the scores of a subset of a set's images, already computed)."""
        for name, values in scores.items():
            self.means[name].update(values)

    def compute(self) -> dict[str, torch.Tensor]:
        """The per-image means of everything seen since the last :meth:`reset`."""
        return {name: self.means[name].compute() for name in self.names}

    def reset(self) -> None:
        """Forget the images seen so far."""
        for mean in self.means.values():
            mean.reset()

    def _apply(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202 - nn.Module's signature
        # torchmetrics forgets set_dtype when a metric is moved (.to(device)): its updates
        # would then be rounded to float32 before the float64 sum
        super()._apply(fn, *args, **kwargs)
        for mean in self.means.values():
            mean.set_dtype(torch.float64)
        return self

    def fresh(self) -> RelightMetrics:
        """An empty accumulator with the same settings and LPIPS weights (no second weight
        lookup, no second warning): e.g. the identity baseline next to the model."""
        other = copy.deepcopy(self)
        other.reset()
        return other
