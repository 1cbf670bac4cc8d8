"""Mini-VIDIT: procedural scenes rendered with Mitsuba 3 in VIDIT's exact layout.

Each scene is a textured ground with a few spheres, boxes and cylinders (diffuse and glossy
materials) seen by a camera above, looking down at an angle (image top = north). It is lit
by one area light at one of the 8 compass directions, at a fixed elevation, with the
colour of a black body at one of the 5 colour temperatures, plus a dim ambient term
(direct illumination, multi-jittered sampling: soft, moving shadows with little noise); a
depth pass gives the distance to the camera. The output is VIDIT's track-2 layout:

    OUT/train/ImageXXX_TTTT_D.png     RGBA, 8-bit (alpha 255, as VIDIT)
    OUT/train/ImageXXX.npy            pickled dict: normalized_depth (H, W), ref_center_dis
    OUT/validation/{input,guide,target}/PairNNN.{png,npy}   cross-scene pairs with truth
    OUT/contact_sheet.png             one scene under all 40 lightings

Rendering is deterministic for a given seed and Mitsuba variant. ``llvm_ad_rgb`` (fast,
needs a working libLLVM) is used when a probe in a subprocess succeeds; otherwise
``scalar_rgb``. Needs ``pip install mitsuba`` (relight's ``render`` extra).
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from relight.data.vidit import DIRECTIONS, TEMPERATURES
from relight.panels import save_png

AZIMUTH = {"E": 0, "NE": 45, "N": 90, "NW": 135, "W": 180, "SW": 225, "S": 270, "SE": 315}
LIGHT_ELEVATION_DEG = 35.0
LIGHT_DISTANCE = 9.0
LIGHT_RADIANCE = 230.0
AMBIENT_RADIANCE = 0.06
CAMERA_ORIGIN = (0.0, -4.2, 7.2)
CAMERA_TARGET = (0.0, 0.2, 0.0)
CAMERA_FOV = 42.0


@dataclass(frozen=True)
class RenderSettings:
    """What to render: sizes, counts and quality."""

    size: int = 128
    train_scenes: int = 32
    val_scenes: int = 8
    pairs_per_val_scene: int = 2
    spp: int = 16
    seed: int = 0
    temperatures: tuple[int, ...] = TEMPERATURES
    directions: tuple[str, ...] = DIRECTIONS
    workers: int = 2
    variant: str = "auto"


# ---------------------------------------------------------------------------- colour


def _cie_xyz(wavelength_nm: np.ndarray) -> np.ndarray:
    """CIE 1931 colour matching functions, multi-lobe Gaussian fit (Wyman et al. 2013)."""

    def g(x: np.ndarray, mu: float, s1: float, s2: float) -> np.ndarray:
        return np.exp(-0.5 * ((x - mu) / np.where(x < mu, s1, s2)) ** 2)

    w = wavelength_nm
    x = (
        1.056 * g(w, 599.8, 37.9, 31.0)
        + 0.362 * g(w, 442.0, 16.0, 26.7)
        - 0.065 * g(w, 501.1, 20.4, 26.2)
    )
    y = 0.821 * g(w, 568.8, 46.9, 40.5) + 0.286 * g(w, 530.9, 16.3, 31.1)
    z = 1.217 * g(w, 437.0, 11.8, 36.0) + 0.681 * g(w, 459.0, 26.0, 13.8)
    return np.stack([x, y, z], axis=1)


@functools.cache
def blackbody_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear sRGB colour of a black body at ``kelvin``, unit luminance (D65 white point)."""
    w = np.arange(380.0, 781.0, 1.0)
    metres = w * 1e-9
    radiance = 1.0 / (metres**5 * (np.exp(1.4388e-2 / (metres * kelvin)) - 1.0))
    xyz = (_cie_xyz(w) * radiance[:, None]).sum(axis=0)
    xyz /= xyz[1]
    to_srgb = np.array(
        [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]
    )
    rgb = np.clip(to_srgb @ xyz, 0.0, None)
    luminance = float(np.dot([0.2126, 0.7152, 0.0722], rgb))
    return tuple(float(c) for c in rgb / luminance)


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB -> 8-bit sRGB (the standard transfer curve), clipped."""
    x = np.clip(linear, 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (encoded * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------- scenes


def scene_description(scene_seed: int) -> dict:
    """A random scene (plain data, no Mitsuba objects): ground texture and 3-6 objects."""
    rng = np.random.default_rng(scene_seed)

    def colour(low: float, high: float) -> list[float]:
        hue, sat = rng.random(), rng.uniform(0.3, 0.8)
        base = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)])
        rgb = np.clip(base, 0, 1) * sat + (1 - sat)
        return (rgb * rng.uniform(low, high)).round(4).tolist()

    objects, placed = [], []
    for _ in range(int(rng.integers(3, 7))):
        size = float(rng.uniform(0.35, 0.8))
        for _attempt in range(20):
            x, y = rng.uniform(-2.4, 2.4, size=2)
            if all(math.hypot(x - px, y - py) > size + ps + 0.1 for px, py, ps in placed):
                break
        placed.append((x, y, size))
        objects.append(
            {
                "shape": str(rng.choice(["sphere", "cube", "cylinder"])),
                "position": [round(float(x), 4), round(float(y), 4)],
                "size": round(size, 4),
                "height": round(float(rng.uniform(0.6, 2.0)), 4),
                "rotation": round(float(rng.uniform(0, 90)), 2),
                "colour": colour(0.35, 0.85),
                "glossy": bool(rng.random() < 0.4),
            }
        )
    return {
        "ground": {
            "colour0": colour(0.25, 0.6),
            "colour1": colour(0.25, 0.6),
            "checks": int(rng.integers(4, 12)),
        },
        "objects": objects,
    }


def _bsdf(colour: list[float], glossy: bool) -> dict:
    reflectance = {"type": "rgb", "value": colour}
    if glossy:
        return {"type": "roughplastic", "diffuse_reflectance": reflectance, "alpha": 0.12}
    return {"type": "diffuse", "reflectance": reflectance}


def mitsuba_scene(
    description: dict, temperature: int | None, direction: str | None, size: int, spp: int
) -> dict:
    """The Mitsuba scene dict; ``temperature=None`` gives the depth (AOV) scene."""
    import mitsuba as mi

    T = mi.ScalarTransform4f
    ground = description["ground"]
    scene: dict = {
        "type": "scene",
        "sensor": {
            "type": "perspective",
            "fov": CAMERA_FOV,
            "to_world": T().look_at(origin=CAMERA_ORIGIN, target=CAMERA_TARGET, up=[0, 0, 1]),
            "film": {"type": "hdrfilm", "width": size, "height": size, "rfilter": {"type": "box"}},
            "sampler": {"type": "multijitter", "sample_count": spp},
        },
        "ground": {
            "type": "rectangle",
            "to_world": T().scale([6.0, 6.0, 1.0]),
            "bsdf": {
                "type": "diffuse",
                "reflectance": {
                    "type": "checkerboard",
                    "color0": {"type": "rgb", "value": ground["colour0"]},
                    "color1": {"type": "rgb", "value": ground["colour1"]},
                    "to_uv": mi.ScalarTransform4f().scale([ground["checks"], ground["checks"], 1]),
                },
            },
        },
    }
    for i, obj in enumerate(description["objects"]):
        x, y = obj["position"]
        s, h = obj["size"], obj["height"]
        bsdf = _bsdf(obj["colour"], obj["glossy"])
        if obj["shape"] == "sphere":
            scene[f"object{i}"] = {"type": "sphere", "center": [x, y, s], "radius": s, "bsdf": bsdf}
        elif obj["shape"] == "cube":
            scene[f"object{i}"] = {
                "type": "cube",
                "to_world": T().translate([x, y, h / 2]).rotate([0, 0, 1], obj["rotation"])
                @ T().scale([s * 0.8, s * 0.8, h / 2]),
                "bsdf": bsdf,
            }
        else:
            scene[f"object{i}"] = {
                "type": "cylinder",
                "p0": [x, y, 0.0],
                "p1": [x, y, h],
                "radius": s * 0.7,
                "bsdf": bsdf,
            }
            scene[f"cap{i}"] = {
                "type": "disk",
                "to_world": T().translate([x, y, h]).scale([s * 0.7, s * 0.7, 1.0]),
                "bsdf": bsdf,
            }
    if temperature is None:
        scene["integrator"] = {"type": "aov", "aovs": "depth:depth"}
        return scene
    azimuth, elevation = math.radians(AZIMUTH[direction]), math.radians(LIGHT_ELEVATION_DEG)
    light_position = [
        LIGHT_DISTANCE * math.cos(elevation) * math.cos(azimuth),
        LIGHT_DISTANCE * math.cos(elevation) * math.sin(azimuth),
        LIGHT_DISTANCE * math.sin(elevation),
    ]
    colour = blackbody_rgb(float(temperature))
    scene["integrator"] = {"type": "direct"}
    scene["light"] = {
        "type": "rectangle",
        "to_world": T().look_at(origin=light_position, target=[0, 0, 0], up=[0, 0, 1])
        @ T().scale([0.6, 0.6, 1.0]),
        "emitter": {
            "type": "area",
            "radiance": {"type": "rgb", "value": [LIGHT_RADIANCE * c for c in colour]},
        },
    }
    scene["ambient"] = {"type": "constant", "radiance": {"type": "rgb", "value": AMBIENT_RADIANCE}}
    return scene


# ---------------------------------------------------------------------------- rendering


_PROBE = """
import mitsuba as mi
mi.set_variant("llvm_ad_rgb")
scene = mi.load_dict({"type": "scene", "sensor": {"type": "perspective",
    "film": {"type": "hdrfilm", "width": 8, "height": 8}},
    "s": {"type": "sphere", "center": [0, 0, -3]}, "e": {"type": "constant"}})
import numpy as np
assert np.isfinite(np.array(mi.render(scene, spp=2))).all()
"""


@functools.cache
def choose_variant(requested: str = "auto") -> str:
    """``llvm_ad_rgb`` when it renders in a subprocess probe, else ``scalar_rgb``.

    The probe runs in a child process because a broken libLLVM aborts the process that
    loads it. ``RELIGHT_MITSUBA_VARIANT`` or an explicit ``requested`` skip the probe.
    """
    requested = os.environ.get("RELIGHT_MITSUBA_VARIANT", requested)
    if requested != "auto":
        return requested
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, timeout=120, check=False
        )
        if probe.returncode == 0:
            return "llvm_ad_rgb"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "scalar_rgb"


def _init_worker(variant: str) -> None:
    import mitsuba as mi

    mi.set_variant(variant)
    mi.set_log_level(mi.LogLevel.Error)


def _render_job(job: tuple) -> tuple[str, float]:
    """Render one image (or depth) job in a worker; returns (output, seconds)."""
    import mitsuba as mi

    kind, description, temperature, direction, size, spp, seed, outputs = job
    start = time.perf_counter()
    scene = mi.load_dict(mitsuba_scene(description, temperature, direction, size, spp))
    if kind == "depth":
        # Box-filtered depth over 4 samples per pixel; rays that miss give 0 (none do here).
        depth = np.array(mi.render(scene, spp=4, seed=seed))[..., -1].astype(np.float32)
        far = float(depth.max())
        record = {
            "normalized_depth": (depth / far).astype(np.float32),
            "ref_center_dis": float(depth[size // 2, size // 2]),
        }
        for output in outputs:
            _atomic_save_npy(Path(output), record)
    else:
        linear = np.array(mi.render(scene, spp=spp, seed=seed))[..., :3]
        rgb = to_srgb8(linear)
        rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
        for output in outputs:
            save_png(Image.fromarray(rgba, "RGBA"), output)
    return outputs[0], time.perf_counter() - start


def _atomic_save_npy(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, record, allow_pickle=True)
    os.replace(tmp, path)


def _pairs_plan(
    settings: RenderSettings, val_ids: Sequence[int]
) -> list[tuple[int, str, int, str]]:
    """(scene A, lighting L1, scene B, lighting L2) per validation pair, seeded."""
    rng = np.random.default_rng([settings.seed, 2])
    lightings = [f"{t}_{d}" for t in settings.temperatures for d in settings.directions]
    plan = []
    for a in val_ids:
        for _ in range(settings.pairs_per_val_scene):
            b = int(rng.choice([s for s in val_ids if s != a]))
            l1, l2 = rng.choice(len(lightings), size=2, replace=False)
            plan.append((a, lightings[l1], b, lightings[l2]))
    return plan


def render_minividit(
    out: str | Path, settings: RenderSettings = RenderSettings(), progress: bool = True
) -> dict:
    """Render the mini-VIDIT into ``out`` (see the module docstring); returns a summary.

    Files already present are kept, so an interrupted run resumes where it stopped.
    """
    if settings.val_scenes == 1 or settings.train_scenes < 2:
        raise ValueError(
            "mini-VIDIT needs at least 2 training scenes and 0 or >= 2 validation scenes"
        )
    if settings.size % 16 or settings.size < 32:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {settings.size}")
    out = Path(out)
    train_dir = out / "train"
    pairs_dir = out / "validation"
    for folder in (train_dir, pairs_dir / "input", pairs_dir / "guide", pairs_dir / "target"):
        folder.mkdir(parents=True, exist_ok=True)
    train_ids = list(range(settings.train_scenes))
    val_ids = list(range(settings.train_scenes, settings.train_scenes + settings.val_scenes))
    descriptions = {
        sid: scene_description(settings.seed * 100_003 + sid) for sid in train_ids + val_ids
    }

    def job_seed(*parts: object) -> int:
        keys = [zlib.crc32(str(part).encode()) for part in parts]
        return int(np.random.SeedSequence([settings.seed, *keys]).generate_state(1)[0] % 2**31)

    jobs: list[tuple] = []

    def add(kind: str, sid: int, lighting: str | None, outputs: list[Path]) -> None:
        todo = [str(p) for p in outputs if not p.exists()]
        if not todo:
            return
        temperature, direction = (None, None) if lighting is None else lighting.split("_")
        jobs.append(
            (
                kind,
                descriptions[sid],
                None if temperature is None else int(temperature),
                direction,
                settings.size,
                settings.spp,
                job_seed(sid, lighting),
                todo,
            )
        )

    for sid in train_ids:
        add("depth", sid, None, [train_dir / f"Image{sid:03d}.npy"])
        for t in settings.temperatures:
            for d in settings.directions:
                add("image", sid, f"{t}_{d}", [train_dir / f"Image{sid:03d}_{t}_{d}.png"])
    plan = _pairs_plan(settings, val_ids) if val_ids else []
    for n, (a, l1, b, l2) in enumerate(plan):
        name = f"Pair{n:03d}"
        add("image", a, l1, [pairs_dir / "input" / f"{name}.png"])
        add("depth", a, None, [pairs_dir / "input" / f"{name}.npy"])
        add("image", b, l2, [pairs_dir / "guide" / f"{name}.png"])
        add("depth", b, None, [pairs_dir / "guide" / f"{name}.npy"])
        add("image", a, l2, [pairs_dir / "target" / f"{name}.png"])

    variant = choose_variant(settings.variant)
    start = time.perf_counter()
    if jobs:
        if settings.workers > 1:
            context = multiprocessing.get_context("spawn")
            with context.Pool(settings.workers, _init_worker, (variant,)) as pool:
                for _ in tqdm(
                    pool.imap_unordered(_render_job, jobs),
                    total=len(jobs),
                    desc=f"rendering ({variant})",
                    disable=not progress,
                ):
                    pass
        else:
            _init_worker(variant)
            for job in tqdm(jobs, desc=f"rendering ({variant})", disable=not progress):
                _render_job(job)
    seconds = time.perf_counter() - start
    sheet = contact_sheet(train_dir, train_ids[0], settings.temperatures, settings.directions)
    save_png(sheet, out / "contact_sheet.png")
    summary = {
        "settings": asdict(settings),
        "variant": variant,
        "rendered": len(jobs),
        "seconds": round(seconds, 1),
        "train_scenes": train_ids,
        "val_scenes": val_ids,
        "pairs": [
            {
                "name": f"Pair{n:03d}",
                "input": f"Image{a:03d}_{l1}",
                "guide": f"Image{b:03d}_{l2}",
                "target": f"Image{a:03d}_{l2}",
            }
            for n, (a, l1, b, l2) in enumerate(plan)
        ],
    }
    (out / "minividit.json").write_text(json.dumps(summary, indent=2))
    return summary


def contact_sheet(
    train_dir: Path, scene_id: int, temperatures: Sequence[int], directions: Sequence[str]
) -> Image.Image:
    """A grid of one scene: rows = colour temperatures, columns = light directions."""
    tiles = [
        [
            Image.open(train_dir / f"Image{scene_id:03d}_{t}_{d}.png").convert("RGB")
            for d in directions
        ]
        for t in temperatures
    ]
    size = tiles[0][0].width
    margin, label = 4, 14
    sheet = Image.new(
        "RGB",
        (len(directions) * (size + margin) + 48, len(temperatures) * (size + margin) + label),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for c, d in enumerate(directions):
        draw.text((48 + c * (size + margin) + size // 2 - 6, 1), d, fill="black")
    for r, t in enumerate(temperatures):
        draw.text((2, label + r * (size + margin) + size // 2 - 6), f"{t}K", fill="black")
        for c, tile in enumerate(tiles[r]):
            sheet.paste(tile, (48 + c * (size + margin), label + r * (size + margin)))
    return sheet
