"""Depth models for tests, nothing downloaded: a tiny Depth Anything built from its config
(random weights) saved as a local model folder, and a stub whose disparity is known."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

#: The tiny model's processor size: 56 pixels (4 patches of 14) on the short side.
TINY_SIZE = 56


def tiny_depth_anything(seed: int = 0, depth_estimation_type: str = "relative"):
    """A Depth Anything (DINOv2 backbone) of ~0.1 M parameters with random weights and its
    image processor (keep aspect ratio, multiple of 14, ImageNet normalisation, as the
    real one at 518). A random ReLU head outputs mostly zeros, so its last conv gets
    positive random weights and a small bias: the disparity is positive and varies."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    backbone = dict(
        model_type="dinov2",
        hidden_size=24,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=48,
        image_size=TINY_SIZE,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=24,
        neck_hidden_sizes=[8, 16, 24, 24],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type=depth_estimation_type,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear | nn.ConvTranspose2d):
            module.reset_parameters()  # torch's default init: activations of order 1
    with torch.no_grad():
        model.head.conv3.weight.abs_().mul_(5)
        model.head.conv3.bias.fill_(0.1)
    processor = DPTImageProcessor(
        size={"height": TINY_SIZE, "width": TINY_SIZE},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
    )
    return model, processor


def save_tiny_depth_model(folder: Path, **kwargs) -> Path:
    """The tiny model as a local model folder (config, processor config, safetensors)."""
    model, processor = tiny_depth_anything(**kwargs)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def reference_normalized_depth(folder: Path, image: torch.Tensor) -> np.ndarray:
    """What the depth of a (3, H, W) image in [0, 1] should be, computed the documented
    ``transformers`` way (processor, model, bilinear resize to the image) and the
    disparity rule written out: ``lo / clip(p, lo, hi)``, ``lo >= hi / 100``."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True).eval()
    inputs = processor(images=image, do_rescale=False, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**inputs).predicted_depth[None]
    height, width = image.shape[-2:]
    assert predicted.shape[-2] <= height and predicted.shape[-1] <= width  # enlarged: bilinear
    disparity = nn.functional.interpolate(
        predicted, size=(height, width), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    hi = disparity.max()
    lo = max(disparity[disparity > 0].min(), hi / 100)
    return lo / np.clip(disparity, lo, hi)


class RampDisparity(nn.Module):
    """A stub depth network: the disparity of a scene whose distance is encoded in the
    image's red channel, ``distance = near + (far - near) * red`` (metres), or that
    distance itself (``metric=True``)."""

    def __init__(self, near: float, far: float, metric: bool = False) -> None:
        super().__init__()
        self.near, self.far, self.metric = near, far, metric

    def forward(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        distance = self.near + (self.far - self.near) * pixel_values[:, 0]
        return SimpleNamespace(predicted_depth=distance if self.metric else 1 / distance)
