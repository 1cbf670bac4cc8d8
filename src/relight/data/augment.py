"""Augmentations of training items, applied to all five tensors together.

An item is input (scene A under L1), guide (scene B under L2), target (A under L2) and the
depth maps of A and B. Transforming all five the same way keeps it a valid any-to-any
example: a horizontal flip mirrors both scenes and both lights (east becomes west for the
input, the guide and the target alike), and a crop is the same view through a narrower
window. Flipping or cropping only some of them would pair a target with a light or a
geometry that is not the guide's or the input's. A scene tint scales the colours of one
scene by a per-channel gain: the same gain for input and target (scene A), another for
the guide (scene B). Light transport is linear in the reflectances, so that is the same
scenes with other surface colours (up to the sRGB curve's linear toe and clipping); it
keeps a model from reading the guide's light colour off the guide scene's own colours.

Every draw comes from :func:`relight.data.sampling.augment_rng` ``(seed, epoch, index)``,
so an item is the same whatever the worker, process or resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from relight.data.transforms import SIZE_MULTIPLE

#: The tensors of an item that move together.
JOINT_KEYS = ("input", "guide", "target", "input_depth", "guide_depth")


@dataclass(frozen=True)
class JointAugmentation:
    """``hflip``: probability of a horizontal flip; ``crop_size``: side of a random square
    crop (a multiple of 16), or ``None`` for none; ``scene_tint``: each scene's colours are
    multiplied by ``exp(u)`` per channel, ``u`` uniform in ``[-scene_tint, scene_tint]``."""

    hflip: float = 0.0
    crop_size: int | None = None
    scene_tint: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.hflip, bool) or not 0.0 <= float(self.hflip) <= 1.0:
            raise ValueError(
                f"data.augment.hflip must be a probability in [0, 1], got {self.hflip!r}"
            )
        if isinstance(self.scene_tint, bool) or not 0.0 <= float(self.scene_tint) <= 1.0:
            raise ValueError(f"data.augment.scene_tint must be in [0, 1], got {self.scene_tint!r}")
        size = self.crop_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % SIZE_MULTIPLE
        ):
            raise ValueError(
                f"data.augment.crop_size must be a positive multiple of {SIZE_MULTIPLE} or null, "
                f"got {size!r}"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> JointAugmentation | None:
        """From ``data.augment`` (a mapping); ``None`` when it changes nothing."""
        augmentation = cls(**{str(k): config[k] for k in config}) if config else cls()
        return augmentation if augmentation.active else None

    @property
    def active(self) -> bool:
        return self.hflip > 0 or self.crop_size is not None or self.scene_tint > 0

    def check_size(self, image_size: int | None) -> None:
        """A crop must fit in the training resolution."""
        if self.crop_size is not None and image_size is not None and self.crop_size > image_size:
            raise ValueError(
                f"data.augment.crop_size={self.crop_size} is larger than data.image_size="
                f"{image_size}"
            )

    def __call__(self, item: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The item with its five tensors flipped and/or cropped together (a new dict)."""
        out = dict(item)
        flip = rng.random() < self.hflip
        height, width = item["input"].shape[-2:]
        top = left = 0
        size = self.crop_size
        if size is not None:
            if size > min(height, width):
                raise ValueError(
                    f"data.augment.crop_size={size} is larger than the item '{item.get('name')}' "
                    f"({height}x{width})"
                )
            top = int(rng.integers(height - size + 1))
            left = int(rng.integers(width - size + 1))
        for key in JOINT_KEYS:
            if key not in out:
                continue
            tensor: torch.Tensor = out[key]
            if size is not None:
                tensor = tensor[..., top : top + size, left : left + size]
            if flip:
                tensor = tensor.flip(-1)
            out[key] = tensor.contiguous()
        if self.scene_tint:
            for keys in (("input", "target"), ("guide",)):
                gain = np.exp(rng.uniform(-self.scene_tint, self.scene_tint, size=3))
                for key in keys:
                    if key in out:
                        out[key] = _tinted(out[key], torch.tensor(gain, dtype=torch.float32))
        return out


def _tinted(image: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``image`` (3, H, W) times a per-channel gain, clipped; uint8 images stay uint8."""
    scaled = image.float() * gain[:, None, None]
    if image.dtype == torch.uint8:
        return scaled.round_().clamp_(0, 255).to(torch.uint8)
    return scaled.clamp_(0, 1).to(image.dtype)
