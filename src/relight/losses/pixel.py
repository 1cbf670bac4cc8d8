"""Charbonnier loss: a smooth L1 that is differentiable at zero."""

from __future__ import annotations

import torch
from torch import nn


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((pred - target)^2 + eps^2))``.

    The paper calls eps "tiny"; ``eps=1e-3`` (eps^2 = 1e-6) is the common implementation
    (MPRNet, Restormer). The loss of identical images is exactly ``eps``.
    """

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"Charbonnier eps must be positive, got {eps}")
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target).pow(2) + self.eps**2).mean()
