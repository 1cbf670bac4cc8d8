"""Perceptual loss: L1 distance between frozen VGG19 (ImageNet) features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from relight.models.weights import create_timm_model

#: Index of each named ReLU in VGG19's ``features`` (torchvision and timm agree).
VGG19_LAYERS: dict[str, int] = {
    "relu1_1": 1,
    "relu1_2": 3,
    "relu2_1": 6,
    "relu2_2": 8,
    "relu3_1": 11,
    "relu3_2": 13,
    "relu3_3": 15,
    "relu3_4": 17,
    "relu4_1": 20,
    "relu4_2": 22,
    "relu4_3": 24,
    "relu4_4": 26,
    "relu5_1": 29,
    "relu5_2": 31,
    "relu5_3": 33,
    "relu5_4": 35,
}
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """``sum_l w_l * mean|VGG_l(pred) - VGG_l(target)|`` on ImageNet-normalised RGB.

    The VGG19 is frozen and always in eval mode; target features are computed without
    gradient. Only the layers up to the deepest requested one are kept, and they run in
    channels_last layout (1.6x faster in bf16 on a CPU, 1.1x in fp32; same values).

    Args:
        layers: VGG19 ReLU names (see :data:`VGG19_LAYERS`), or a mapping name -> weight.
        weights: ``"imagenet"``, ``"none"`` or a local file (the encoder's weight policy).
        allow_random_init: warn instead of failing when ImageNet weights are missing.
    """

    def __init__(
        self,
        layers: Sequence[str] | Mapping[str, float] = DEFAULT_LAYERS,
        weights: str | None = "imagenet",
        allow_random_init: bool = False,
    ) -> None:
        super().__init__()
        layer_weights = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers, 1.0)
        unknown = sorted(set(layer_weights) - set(VGG19_LAYERS))
        if unknown or not layer_weights:
            raise ValueError(
                f"unknown VGG19 layers {unknown or '(none given)'}; choose from {list(VGG19_LAYERS)}"
            )
        self.layer_weights = {VGG19_LAYERS[name]: float(w) for name, w in layer_weights.items()}
        vgg = create_timm_model(
            "vgg19", weights, allow_random_init=allow_random_init, what="the perceptual VGG19"
        )
        self.features = vgg.features[: max(self.layer_weights) + 1]
        self.features.requires_grad_(False)
        self.features.eval()
        self.features.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen VGG in eval mode whatever the parent module does."""
        super().train(mode)
        self.features.eval()
        return self

    def extract(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Features of the requested layers for a (B, 3, H, W) batch in [0, 1]."""
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layer_weights:
                out[index] = x
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.extract(target)
        pred_features = self.extract(pred)
        loss = pred.new_zeros(())
        for index, weight in self.layer_weights.items():
            loss = loss + weight * F.l1_loss(pred_features[index], target_features[index])
        return loss
