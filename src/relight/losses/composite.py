"""The S3Net training objective: L = l1 * Charbonnier + l2 * W-SSIM + l3 * Perceptual."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from relight.losses.perceptual import DEFAULT_LAYERS, PerceptualLoss
from relight.losses.pixel import CharbonnierLoss
from relight.losses.wssim import WSSIMLoss
from relight.models.weights import WeightsUnavailableError

#: Cheap terms computed in float32 even under mixed precision (the VGG19 term may use bf16).
FULL_PRECISION_TERMS = ("charbonnier", "wssim")


def check_loss_weights(weights: dict[str, float]) -> None:
    """A ``ValueError`` unless every weight is >= 0 and one is positive."""
    negative = {k: w for k, w in weights.items() if w < 0}
    if negative:
        raise ValueError(f"loss weights must be >= 0, got {negative}")
    if not any(weights.values()):
        raise ValueError("all loss weights are 0: nothing to optimise")


class CompositeLoss(nn.Module):
    """Weighted sum of the three terms; returns ``(total, {name: term})``.

    A term whose weight is 0 is not built or computed (e.g. ``perceptual=0`` needs no
    VGG19 weights). The returned terms are unweighted and detached, for logging.

    Args:
        charbonnier, wssim, perceptual: the weights (paper: 1, 1.1, 0.1).
        eps: Charbonnier epsilon.
        wssim_levels, wssim_ratio: W-SSIM decomposition (``levels=0``: plain SSIM).
        perceptual_layers: VGG19 layers for the perceptual term.
        vgg_weights, allow_random_init: the VGG19 weight policy.
        drop_perceptual_if_missing: when the VGG19 ImageNet weights are missing, drop the
            perceptual term with a loud warning instead of failing (a VGG19 with random
            weights measures nothing perceptual).
        extra_terms: your own terms, ``{name: {"weight": w, "term": module}}``: ``module``
            maps ``(prediction, target)`` to a scalar (in config, ``term`` is a
            ``_target_`` node; see docs/install.md, "Your own experiments"). Logged as
            ``train/<name>`` like the paper's terms.
    """

    def __init__(
        self,
        charbonnier: float = 1.0,
        wssim: float = 1.1,
        perceptual: float = 0.1,
        eps: float = 1e-3,
        wssim_levels: int = 2,
        wssim_ratio: float = 0.7,
        perceptual_layers: Sequence[str] = DEFAULT_LAYERS,
        vgg_weights: str | None = "imagenet",
        allow_random_init: bool = False,
        drop_perceptual_if_missing: bool = False,
        extra_terms: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.weights = {"charbonnier": charbonnier, "wssim": wssim, "perceptual": perceptual}
        extra_terms = dict(extra_terms or {})
        clashes = sorted(set(extra_terms) & set(self.weights))
        if clashes:
            raise ValueError(f"extra loss terms may not reuse the names {clashes}")
        self.weights.update({name: float(spec["weight"]) for name, spec in extra_terms.items()})
        check_loss_weights(self.weights)
        terms: dict[str, nn.Module] = {}
        if charbonnier:
            terms["charbonnier"] = CharbonnierLoss(eps)
        if wssim:
            terms["wssim"] = WSSIMLoss(wssim_levels, wssim_ratio)
        if perceptual:
            try:
                terms["perceptual"] = PerceptualLoss(
                    list(perceptual_layers), vgg_weights, allow_random_init
                )
            except WeightsUnavailableError as error:
                if not drop_perceptual_if_missing:
                    raise
                warnings.warn(
                    f"PERCEPTUAL LOSS DROPPED (drop_perceptual_if_missing=true): {error}",
                    stacklevel=2,
                )
                self.weights["perceptual"] = 0.0
        for name, spec in extra_terms.items():
            if not isinstance(spec["term"], nn.Module):
                raise TypeError(
                    f"extra loss term '{name}': 'term' must build an nn.Module, got "
                    f"{type(spec['term']).__name__}"
                )
            if self.weights[name]:
                terms[name] = spec["term"]
        if not terms:
            raise ValueError("no loss term left to optimise (the perceptual term was dropped)")
        self.terms = nn.ModuleDict(terms)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = pred.new_zeros((), dtype=torch.float32)
        parts: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            if name in FULL_PRECISION_TERMS:
                # under bf16/fp16 autocast (trainer.precision=bf16-mixed) these stay float32:
                # SSIM's E[x²] - E[x]² cancels badly in bf16, and ptwt refuses bf16 input
                with torch.autocast(pred.device.type, enabled=False):
                    value = term(pred.float(), target.float())
            else:
                value = term(pred, target)
            total = total + self.weights[name] * value.float()
            parts[name] = value.detach()
        return total, parts
