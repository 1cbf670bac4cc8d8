"""Write tiny folders in VIDIT's exact layouts (train and pairs) for tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from relight.data.vidit import DIRECTIONS, TEMPERATURES

ALL_LIGHTINGS = [(t, d) for t in TEMPERATURES for d in DIRECTIONS]


def lit_image(scene: int, temperature: int, direction: str, size: int) -> np.ndarray:
    """A deterministic RGBA uint8 image whose colour depends on the lighting."""
    rng = np.random.default_rng(scene)
    base = rng.uniform(0.2, 0.8, size=(size, size, 3))
    tint = np.array([1.2, 1.0, 0.8]) if temperature < 4500 else np.array([0.8, 1.0, 1.2])
    angle = np.deg2rad(DIRECTIONS.index(direction) * 45)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ramp = 0.6 + 0.4 * (np.cos(angle) * xx + np.sin(angle) * yy)
    rgb = np.clip(base * tint * ramp[..., None], 0, 1)
    alpha = np.ones((size, size, 1))
    return (np.concatenate([rgb, alpha], axis=2) * 255).round().astype(np.uint8)


def depth_dict(scene: int, size: int) -> dict:
    """A depth map of its own for every scene (``relight-data check`` flags identical files)."""
    depth = np.linspace(0.2, 1.0, size * size, dtype=np.float32).reshape(size, size)
    scale = 0.5 + 0.1 * (scene % 5) + 0.01 * (scene // 5)
    return {"normalized_depth": depth * scale, "ref_center_dis": 3.0}


def write_vidit(
    root: Path,
    scenes: Sequence[int] = (0, 1, 2, 3),
    size: int = 32,
    lightings: Iterable[tuple[int, str]] = ALL_LIGHTINGS,
) -> Path:
    """A track-2 train folder: ImageXXX_TTTT_D.png (RGBA) + ImageXXX.npy (pickled dict)."""
    root.mkdir(parents=True, exist_ok=True)
    lightings = list(lightings)
    for scene in scenes:
        for t, d in lightings:
            Image.fromarray(lit_image(scene, t, d, size), "RGBA").save(
                root / f"Image{scene:03d}_{t}_{d}.png"
            )
        np.save(root / f"Image{scene:03d}.npy", depth_dict(scene, size), allow_pickle=True)
    return root


def write_pairs(root: Path, count: int = 3, size: int = 32, target: bool = True) -> Path:
    """An NTIRE pairs folder: input/, guide/ (+ target/) with PairNNN.png/.npy."""
    for folder in ("input", "guide") + (("target",) if target else ()):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n in range(count):
        name = f"Pair{n:03d}"
        Image.fromarray(lit_image(10 + n, 2500, "N", size)).save(root / "input" / f"{name}.png")
        Image.fromarray(lit_image(20 + n, 6500, "E", size)).save(root / "guide" / f"{name}.png")
        np.save(root / "input" / f"{name}.npy", depth_dict(10 + n, size), allow_pickle=True)
        # flipped: unlike the input's depth whatever the scale, so a swap is caught
        guide_depth = np.ascontiguousarray(depth_dict(20 + n, size)["normalized_depth"][::-1])
        np.save(root / "guide" / f"{name}.npy", guide_depth)
        if target:
            Image.fromarray(lit_image(10 + n, 6500, "E", size)).save(
                root / "target" / f"{name}.png"
            )
    return root


def lose_header_brace(path: Path) -> None:
    """Damage a ``.npy`` header as a flipped byte does: its closing brace is lost."""
    data = bytearray(path.read_bytes())
    data[data.index(b"}")] = ord(" ")
    path.write_bytes(bytes(data))
