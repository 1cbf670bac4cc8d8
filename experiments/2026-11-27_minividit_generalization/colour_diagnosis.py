"""How much of a run's SSIM gap is the image's global colour, per validation split.

    python colour_diagnosis.py data/minividit RUN_FOLDER [RUN_FOLDER ...]

Per split, with the project's SSIM on the 8-bit files: the identity; an oracle that
multiplies the input by the per-channel ratio of the target's and the input's mean colours
(the best global colour change, no shading); and per run (its ``eval``/``eval_shifted``
images): the SSIM, the SSIM once the output's mean chromaticity (mean colour over its grey
level) is set to the target's, and the mean absolute error of that chromaticity next to the
input's. A large step from the second to the third column says the run got the light's
colour wrong; what is left is shading and shadows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from relight.metrics.functional import ssim

EVAL_FOLDERS = {"validation": "eval", "validation_shifted": "eval_shifted"}


def load(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def mean_colour(image: torch.Tensor) -> torch.Tensor:
    return image.mean(dim=(2, 3), keepdim=True).clamp_min(1e-4)


def chromaticity(image: torch.Tensor) -> torch.Tensor:
    colour = mean_colour(image)
    return colour / colour.mean(dim=1, keepdim=True)


def main(data: Path, runs: list[Path]) -> None:
    for split, folder in EVAL_FOLDERS.items():
        names = sorted(p.name for p in (data / split / "target").glob("*.png"))
        if not names:
            continue
        rows: dict[str, list[float]] = {}
        for name in names:
            x = load(data / split / "input" / name)
            y = load(data / split / "target" / name)
            oracle = (x * mean_colour(y) / mean_colour(x)).clamp(0, 1)
            rows.setdefault("identity", []).append(float(ssim(x, y)))
            rows.setdefault("global-colour oracle", []).append(float(ssim(oracle, y)))
            error = (chromaticity(x) - chromaticity(y)).abs().mean()
            rows.setdefault("identity chroma error", []).append(float(error))
            for run in runs:
                p = load(run / folder / "images" / name)
                fixed = (p * chromaticity(y) / chromaticity(p)).clamp(0, 1)
                error = (chromaticity(p) - chromaticity(y)).abs().mean()
                rows.setdefault(f"{run.name}: SSIM", []).append(float(ssim(p, y)))
                rows.setdefault(f"{run.name}: SSIM, target's chroma", []).append(
                    float(ssim(fixed, y))
                )
                rows.setdefault(f"{run.name}: chroma error", []).append(float(error))
        print(f"{split} ({len(names)} pairs)")
        for key, values in rows.items():
            print(f"  {key:60s} {np.mean(values):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
