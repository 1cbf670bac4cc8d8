"""Image panels: input | guide | prediction | target (| input depth | guide depth) rows."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from relight.files import atomic_write


def depth_to_rgb(depth: torch.Tensor) -> torch.Tensor:
    """(1, H, W) depth -> (3, H, W) grey image scaled to its own [min, max]."""
    low, high = depth.min(), depth.max()
    grey = (depth - low) / (high - low).clamp(min=1e-8)
    return grey.expand(3, -1, -1)


def panel_rows(
    batch: dict[str, torch.Tensor], prediction: torch.Tensor, max_rows: int = 4, depth: bool = True
) -> torch.Tensor:
    """A (3, rows*H, cols*W) grid; one row per item, columns as in the module docstring."""
    rows = []
    for i in range(min(max_rows, prediction.shape[0])):
        columns = [batch["input"][i], batch["guide"][i], prediction[i].clamp(0, 1)]
        if "target" in batch:
            columns.append(batch["target"][i])
        if depth:
            columns += [
                depth_to_rgb(batch["input_depth"][i]),
                depth_to_rgb(batch["guide_depth"][i]),
            ]
        rows.append(torch.cat([c.detach().float().cpu() for c in columns], dim=2))
    return torch.cat(rows, dim=1)


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] -> 8-bit RGB image."""
    array = (image.clamp(0, 1) * 255 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def save_png(image: torch.Tensor | Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write a PNG atomically (temporary file + rename); returns the path."""
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))
