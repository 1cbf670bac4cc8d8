"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, with relight's weight policy.

The learned linear heads ship inside the ``lpips`` package; the backbone (AlexNet by
default, as NTIRE 2021 is assumed to have used: v0.1) comes from torchvision's ImageNet
weights, resolved by :func:`relight.models.weights.torchvision_state_dict` so that a
machine without them fails at once with a clear message instead of hanging on a download.
"""

from __future__ import annotations

import os
import re
import warnings

import torch
from torch import nn

from relight.models.weights import TORCHVISION_BACKBONES, torchvision_state_dict


def build_lpips(
    net: str = "alex", version: str = "0.1", backbone_weights: str | os.PathLike[str] = "imagenet"
) -> nn.Module:
    """An ``lpips.LPIPS`` network, frozen, in eval mode.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        version: LPIPS version of the linear heads (``"0.1"`` or ``"0.0"``).
        backbone_weights: ``"imagenet"``, a local torchvision state-dict file, or
            ``"none"`` for a random backbone (tests only: the numbers mean nothing).
    """
    import lpips

    if net not in TORCHVISION_BACKBONES:
        raise ValueError(
            f"unknown LPIPS backbone '{net}'; choose from {list(TORCHVISION_BACKBONES)}"
        )
    random_backbone = str(backbone_weights).lower() == "none"
    state = None if random_backbone else torchvision_state_dict(net, backbone_weights)
    with warnings.catch_warnings():
        # lpips 0.1.4 calls torchvision with the deprecated `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(
            net=net, version=version, pretrained=True, pnet_rand=True, verbose=False
        )
    if state is not None:
        _load_backbone(model.net, state)
    model.requires_grad_(False)
    return model.eval()


def _load_backbone(backbone: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy torchvision ``features.I.*`` tensors into lpips' ``sliceK.I.*`` modules."""
    mapped = {}
    for key in backbone.state_dict():
        source = re.sub(r"^slice\d+\.", "features.", key)
        if source not in state:
            raise KeyError(f"LPIPS backbone weights lack '{source}' (needed for '{key}')")
        mapped[key] = state[source]
    backbone.load_state_dict(mapped, strict=True)
