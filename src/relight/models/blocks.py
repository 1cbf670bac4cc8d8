"""Decoder building blocks of S3Net: the FFA-style attention block and the
DCPDN-style pyramid-pooling enhancement module (see docs: S3Net model)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """Squeeze-and-excite gate: global average pool, 1x1 conv C->C/8, ReLU, 1x1 conv C/8->C, sigmoid."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.expand = nn.Conv2d(channels // reduction, channels, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, C, 1, 1) attention weights in [0, 1]."""
        y = F.adaptive_avg_pool2d(x, 1)
        return torch.sigmoid(self.expand(F.relu(self.reduce(y))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class PixelAttention(nn.Module):
    """Spatial gate: 1x1 conv C->C/8, ReLU, 1x1 conv C/8->1, sigmoid."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.expand = nn.Conv2d(channels // reduction, 1, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, 1, H, W) attention map in [0, 1]."""
        return torch.sigmoid(self.expand(F.relu(self.reduce(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class AttentionBlock(nn.Module):
    """FFA-Net block: conv3x3 -> ReLU -> +x -> conv3x3 -> channel att. -> pixel att. -> +x.

    With ``attention=False`` the two residual convolutions stay and both gates are
    dropped (the paper's "without attention" ablation).
    """

    def __init__(self, channels: int, attention: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.channel_attention: nn.Module = (
            ChannelAttention(channels) if attention else nn.Identity()
        )
        self.pixel_attention: nn.Module = PixelAttention(channels) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv1(x)) + x
        y = self.pixel_attention(self.channel_attention(self.conv2(y)))
        return y + x


class EnhancementModule(nn.Module):
    """Pyramid-pooling refinement at full resolution (DCPDN style).

    Two conv3x3 + LeakyReLU(0.2) layers to ``width`` channels, four average-pool
    branches (kernel = stride = 32, 16, 8, 4), each a 1x1 conv to one map +
    LeakyReLU, upsampled (nearest) to full size; the four maps and the features
    are fused by a conv3x3 and a tanh. Needs inputs of at least 32x32.
    """

    pool_sizes: tuple[int, ...] = (32, 16, 8, 4)

    def __init__(self, channels: int = 28, width: int = 20) -> None:
        super().__init__()
        self.refine1 = nn.Conv2d(channels, width, 3, padding=1)
        self.refine2 = nn.Conv2d(width, width, 3, padding=1)
        self.pool_convs = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in self.pool_sizes)
        self.fuse = nn.Conv2d(width + len(self.pool_sizes), channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.leaky_relu(self.refine1(x), 0.2)
        features = F.leaky_relu(self.refine2(features), 0.2)
        size = features.shape[-2:]
        maps = [
            F.interpolate(
                F.leaky_relu(conv(F.avg_pool2d(features, k)), 0.2), size=size, mode="nearest"
            )
            for k, conv in zip(self.pool_sizes, self.pool_convs, strict=True)
        ]
        return torch.tanh(self.fuse(torch.cat([*maps, features], dim=1)))
