"""Mini-VIDIT: procedural scenes rendered with Mitsuba 3 in VIDIT's exact layout.

Each scene (:mod:`relight.data.scene_generator`) is a textured ground with a few objects
(spheres, boxes, cylinders and meshes of revolution; diffuse to glossy materials, plain or
textured) seen by a camera above, looking down at an angle (image top = north, up to a
few degrees of yaw). It is lit by one square area light at one of the 8 compass
directions, with the colour of a black body at one of the 5 colour temperatures, plus a
dim uniform sky (direct illumination, multi-jittered sampling); a depth pass gives the
distance to the camera. Light transport is linear in the emitters, so each scene is
rendered once per direction under a white light and once under the sky alone, and each
of the 40 lightings is ``exposure * (sky + colour(T) * light(D))`` in linear RGB, encoded
as sRGB afterwards: 10 renders per scene instead of 41, the same images in expectation.

The output is VIDIT's track-2 layout, three splits:

    OUT/train/ImageXXX_TTTT_D.png     RGBA, 8-bit (alpha 255, as VIDIT)
    OUT/train/ImageXXX.npy            pickled dict: normalized_depth (H, W), ref_center_dis
    OUT/validation/{input,guide,target}/PairNNN.{png,npy}   cross-scene pairs of held-out
                                      scenes of the training generator, with truth
    OUT/validation_shifted/...        the same layout, scenes of the shifted generator
    OUT/{validation,validation_shifted}/pairs.json   each pair's source image names
                                      (:mod:`relight.data.lighting_change`)
    OUT/contact_sheet.png             one scene under all 40 lightings, then the variety
    OUT/minividit.json                settings, generators, every scene's description

Validation pairs draw their two lightings as training does (uniformly, L2 != L1), so a
split's kinds of lighting change come in VIDIT's proportions. Rendering is deterministic
for a given seed and Mitsuba variant. ``llvm_ad_rgb`` (fast, needs a working libLLVM) is
used when a probe in a subprocess succeeds; otherwise ``scalar_rgb``. Needs ``pip install
mitsuba`` (relight's ``render`` extra); ``relight-minividit`` (:mod:`relight.cli.minividit`)
renders it from the command line.
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

from relight.data.formats import DataFormatError
from relight.data.lighting_change import PAIR_SOURCES
from relight.data.procedural import MESH_SHAPES, shape_mesh, texture_image
from relight.data.scene_generator import (
    SHIFTED_GENERATOR,
    TRAIN_GENERATOR,
    GeneratorSettings,
    scene_description,
)
from relight.data.vidit import DIRECTIONS, LIGHTINGS, TEMPERATURES, VALID_LIGHTINGS, Lighting
from relight.files import write_text_atomic
from relight.panels import save_png

#: Bumped when the same settings would render other pictures (a folder rendered by another
#: version is not mixed with this one).
RENDERER_VERSION = 2
AZIMUTH = {"E": 0, "NE": 45, "N": 90, "NW": 135, "W": 180, "SW": 225, "S": 270, "SE": 315}
#: Far enough that every camera of both generators is in front of the light (a camera
#: behind it would see the back of the square, black, instead of the scene).
LIGHT_DISTANCE = 14.0
#: radiance x area of the square light: the first mini-VIDIT's 230 over 1.2 x 1.2 at a
#: distance of 9, moved to LIGHT_DISTANCE with the same irradiance
LIGHT_POWER = 230.0 * 1.44 * (LIGHT_DISTANCE / 9.0) ** 2
CAMERA_TARGET = (0.0, 0.2, 0.0)
GROUND_HALF_SIDE = 15.0
GROUND_TEXTURE_PIXELS = 512
OBJECT_TEXTURE_PIXELS = 128
#: description seeds: scene id + the generator's offset (disjoint seed ranges)
SEED_OFFSETS = {TRAIN_GENERATOR.name: 0, SHIFTED_GENERATOR.name: 50_000}
#: the split folders and the generator of their scenes
SPLITS = {
    "train": TRAIN_GENERATOR,
    "validation": TRAIN_GENERATOR,
    "validation_shifted": SHIFTED_GENERATOR,
}


@dataclass(frozen=True)
class RenderSettings:
    """What to render: sizes, counts and quality."""

    size: int = 128
    train_scenes: int = 96
    val_scenes: int = 8
    pairs_per_val_scene: int = 4
    shifted_scenes: int = 10
    pairs_per_shifted_scene: int = 4
    spp: int = 16
    seed: int = 0
    temperatures: tuple[int, ...] = TEMPERATURES
    directions: tuple[str, ...] = DIRECTIONS
    workers: int = 2
    variant: str = "auto"

    def content(self) -> dict:
        """What decides the pictures, as JSON data: these settings but the worker count and
        the variant, the generators' settings and the renderer version."""
        values = {k: v for k, v in asdict(self).items() if k not in {"workers", "variant"}}
        generators = {g.name: asdict(g) for g in SPLITS.values()}
        content = {**values, "generators": generators, "renderer_version": RENDERER_VERSION}
        return json.loads(json.dumps(content))


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


def description_seed(settings: RenderSettings, generator: GeneratorSettings, scene_id: int) -> int:
    """The seed of a scene's description: each generator has its own seed range."""
    return settings.seed * 100_003 + SEED_OFFSETS[generator.name] + scene_id


def _reflectance(texture: dict, extent: float, pixels: int) -> dict:
    """A Mitsuba texture (plain colour or procedural bitmap) of a texture spec."""
    import mitsuba as mi

    if texture["kind"] == "plain":
        return {"type": "rgb", "value": texture["colours"][0]}
    image = texture_image(texture, pixels, extent)
    return {"type": "bitmap", "data": mi.TensorXf(image), "raw": True, "filter_type": "bilinear"}


def _bsdf(material: dict) -> dict:
    reflectance = _reflectance(material["texture"], 1.0, OBJECT_TEXTURE_PIXELS)
    kind = material["kind"]
    if kind == "diffuse":
        return {"type": "diffuse", "reflectance": reflectance}
    if kind == "glossy":
        return {
            "type": "roughplastic",
            "diffuse_reflectance": reflectance,
            "alpha": material["roughness"],
        }
    if kind == "satin":
        return {
            "type": "principled",
            "base_color": reflectance,
            "metallic": material["metallic"],
            "roughness": material["roughness"],
        }
    if kind == "lacquer":
        return {"type": "plastic", "diffuse_reflectance": reflectance}
    raise ValueError(f"unknown material kind '{kind}'")


def _mesh(name: str, obj: dict, bsdf: dict):  # -> mi.Mesh
    """A Mitsuba mesh of a revolved shape, rotated and placed on the ground."""
    import mitsuba as mi

    arrays = shape_mesh(obj["shape"], obj["size"], obj["height"])
    angle = math.radians(obj["rotation"])
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]],
        np.float32,
    )
    positions = arrays.positions @ rotation.T + np.array([*obj["position"], 0.0], np.float32)
    props = mi.Properties()
    props["bsdf"] = mi.load_dict(bsdf)
    mesh = mi.Mesh(
        name,
        len(positions),
        len(arrays.faces),
        props=props,
        has_vertex_normals=arrays.normals is not None,
        has_vertex_texcoords=True,
    )
    params = mi.traverse(mesh)
    params["vertex_positions"] = type(params["vertex_positions"])(positions.ravel())
    params["faces"] = type(params["faces"])(arrays.faces.ravel())
    params["vertex_texcoords"] = type(params["vertex_texcoords"])(arrays.texcoords.ravel())
    if arrays.normals is not None:
        normals = arrays.normals @ rotation.T
        params["vertex_normals"] = type(params["vertex_normals"])(normals.ravel())
    params.update()
    return mesh


def _objects(description: dict) -> dict:
    """The scene dict entries of the ground and every object."""
    import mitsuba as mi

    T = mi.ScalarTransform4f
    extent = 2 * GROUND_HALF_SIDE
    entries: dict = {
        "ground": {
            "type": "rectangle",
            "to_world": T().scale([GROUND_HALF_SIDE, GROUND_HALF_SIDE, 1.0]),
            "bsdf": {
                "type": "diffuse",
                "reflectance": _reflectance(description["ground"], extent, GROUND_TEXTURE_PIXELS),
            },
        },
    }
    for i, obj in enumerate(description["objects"]):
        x, y = obj["position"]
        s, h, shape = obj["size"], obj["height"], obj["shape"]
        bsdf = _bsdf(obj["material"])
        if shape in MESH_SHAPES:
            entries[f"object{i}"] = _mesh(f"object{i}", obj, bsdf)
        elif shape == "sphere":
            entries[f"object{i}"] = {
                "type": "sphere",
                "center": [x, y, s],
                "radius": s,
                "bsdf": bsdf,
            }
        elif shape == "box":
            entries[f"object{i}"] = {
                "type": "cube",
                "to_world": T().translate([x, y, h / 2]).rotate([0, 0, 1], obj["rotation"])
                @ T().scale([s * 0.8, s * 0.8, h / 2]),
                "bsdf": bsdf,
            }
        elif shape == "cylinder":
            entries[f"object{i}"] = {
                "type": "cylinder",
                "p0": [x, y, 0.0],
                "p1": [x, y, h],
                "radius": s * 0.7,
                "bsdf": bsdf,
            }
            entries[f"cap{i}"] = {
                "type": "disk",
                "to_world": T().translate([x, y, h]).scale([s * 0.7, s * 0.7, 1.0]),
                "bsdf": bsdf,
            }
        else:
            raise ValueError(f"unknown shape '{shape}'")
    return entries


def _sensor(camera: dict, size: int, spp: int) -> dict:
    import mitsuba as mi

    yaw = math.radians(camera["yaw"])
    back = camera["distance"]
    origin = [back * math.sin(yaw), CAMERA_TARGET[1] - back * math.cos(yaw), camera["height"]]
    return {
        "type": "perspective",
        "fov": camera["fov"],
        "to_world": mi.ScalarTransform4f().look_at(
            origin=origin, target=CAMERA_TARGET, up=[0, 0, 1]
        ),
        "film": {"type": "hdrfilm", "width": size, "height": size, "rfilter": {"type": "box"}},
        "sampler": {"type": "multijitter", "sample_count": spp},
    }


def light_transform(light: dict, direction: str):  # -> mi.ScalarTransform4f
    """The square light of ``light`` (elevation, size) at ``direction``, facing the centre."""
    import mitsuba as mi

    T = mi.ScalarTransform4f
    azimuth, elevation = math.radians(AZIMUTH[direction]), math.radians(light["elevation"])
    position = [
        LIGHT_DISTANCE * math.cos(elevation) * math.cos(azimuth),
        LIGHT_DISTANCE * math.cos(elevation) * math.sin(azimuth),
        LIGHT_DISTANCE * math.sin(elevation),
    ]
    half = light["size"] / 2
    return T().look_at(origin=position, target=[0, 0, 0], up=[0, 0, 1]) @ T().scale(
        [half, half, 1.0]
    )


def mitsuba_scene(description: dict, render_pass: str, size: int, spp: int) -> dict:
    """The Mitsuba scene dict of one pass: ``depth`` (AOV), ``sky`` (the uniform sky alone)
    or ``light`` (the white area light alone, at the north; move it with
    :func:`light_transform` through ``mi.traverse``: key ``light.to_world``)."""
    scene = {"type": "scene", "sensor": _sensor(description["camera"], size, spp)}
    scene.update(_objects(description))
    if render_pass == "depth":
        scene["integrator"] = {"type": "aov", "aovs": "depth:depth"}
    elif render_pass == "sky":
        scene["integrator"] = {"type": "direct"}
        scene["sky"] = {
            "type": "constant",
            "radiance": {"type": "rgb", "value": description["ambient"]},
        }
    elif render_pass == "light":
        side = description["light"]["size"]
        scene["integrator"] = {"type": "direct"}
        scene["light"] = {
            "type": "rectangle",
            "to_world": light_transform(description["light"], "N"),
            "emitter": {
                "type": "area",
                "radiance": {"type": "rgb", "value": LIGHT_POWER / side**2},
            },
        }
    else:
        raise ValueError(f"unknown render pass '{render_pass}'")
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


class RendererMissingError(ImportError):
    """Mitsuba, which renders the mini-VIDIT, is not installed (relight's ``render`` extra)."""


def require_mitsuba() -> None:
    """Import Mitsuba here, in the process that starts the render workers: a worker whose
    import fails would be restarted by the pool for ever. Raises
    :class:`RendererMissingError` saying how to install it."""
    try:
        import mitsuba  # noqa: F401
    except ImportError as error:
        raise RendererMissingError(
            f"rendering the mini-VIDIT needs Mitsuba 3, which cannot be imported ({error}): "
            "pip install 'relight[render]' (or pip install 'mitsuba>=3.5,<4'), or point "
            "data.dataset_dir at a mini-VIDIT rendered elsewhere"
        ) from error


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


@dataclass(frozen=True)
class SceneJob:
    """What one worker renders of one scene: images (temperature, direction, output
    paths) and depth outputs, with the seed of each pass."""

    description: dict
    size: int
    spp: int
    seeds: dict[str, int]  # "sky", "depth" and one per direction
    images: tuple[tuple[int, str, tuple[str, ...]], ...]
    depths: tuple[str, ...]


def _render(scene, spp: int, seed: int) -> np.ndarray:  # scene: mi.Scene
    import mitsuba as mi

    return np.array(mi.render(scene, spp=spp, seed=seed))


def _render_scene(job: SceneJob) -> tuple[int, float]:
    """Render one scene's job in a worker; returns (files written, seconds)."""
    import mitsuba as mi

    start = time.perf_counter()
    description, written = job.description, 0
    if job.images:

        def load(render_pass: str):  # noqa: ANN202 - mi.Scene
            return mi.load_dict(mitsuba_scene(description, render_pass, job.size, job.spp))

        sky = _render(load("sky"), job.spp, job.seeds["sky"])[..., :3]
        light_scene = load("light")
        params = mi.traverse(light_scene)
        lit = {}
        for direction in sorted({d for _, d, _ in job.images}, key=DIRECTIONS.index):
            params["light.to_world"] = light_transform(description["light"], direction)
            params.update()
            lit[direction] = _render(light_scene, job.spp, job.seeds[direction])[..., :3]
        for temperature, direction, outputs in job.images:
            colour = np.asarray(blackbody_rgb(float(temperature)), np.float32)
            rgb = to_srgb8(description["exposure"] * (sky + colour * lit[direction]))
            rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
            for output in outputs:
                save_png(Image.fromarray(rgba, "RGBA"), output)
                written += 1
    if job.depths:
        # Box-filtered depth over 4 samples per pixel; the ground reaches past the view.
        scene = mi.load_dict(mitsuba_scene(description, "depth", job.size, job.spp))
        depth = _render(scene, 4, job.seeds["depth"])[..., -1].astype(np.float32)
        record = {
            "normalized_depth": (depth / float(depth.max())).astype(np.float32),
            "ref_center_dis": float(depth[job.size // 2, job.size // 2]),
        }
        for output in job.depths:
            _atomic_save_npy(Path(output), record)
            written += 1
    return written, time.perf_counter() - start


def _atomic_save_npy(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, record, allow_pickle=True)
    os.replace(tmp, path)


def pairs_plan(
    settings: RenderSettings, scene_ids: Sequence[int], pairs_per_scene: int, stream: int
) -> list[tuple[int, Lighting, int, Lighting]]:
    """(scene A, lighting L1, scene B, lighting L2) per pair, seeded: B another scene of the
    split, (L1, L2) uniform over the pairs of different lightings, as training draws them."""
    rng = np.random.default_rng([settings.seed, stream])
    lightings = [Lighting(t, d) for t in settings.temperatures for d in settings.directions]
    if len(lightings) < 2:
        raise ValueError("validation pairs need at least two lightings")
    plan = []
    for a in scene_ids:
        for _ in range(pairs_per_scene):
            b = int(rng.choice([s for s in scene_ids if s != a]))
            l1, l2 = rng.choice(len(lightings), size=2, replace=False)
            plan.append((a, lightings[l1], b, lightings[l2]))
    return plan


def _check(settings: RenderSettings) -> None:
    if settings.train_scenes < 2 or 1 in (settings.val_scenes, settings.shifted_scenes):
        raise ValueError(
            "mini-VIDIT needs at least 2 training scenes and 0 or >= 2 scenes per validation split"
        )
    if settings.size % 16 or settings.size < 32:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {settings.size}")
    lightings = {Lighting(t, d) for t in settings.temperatures for d in settings.directions}
    if not lightings <= LIGHTINGS:  # index_vidit refuses other lightings
        raise ValueError(
            f"mini-VIDIT renders VIDIT's lightings ({VALID_LIGHTINGS}); got temperatures "
            f"{settings.temperatures}, directions {settings.directions}"
        )


def _check_same_settings(out: Path, settings: RenderSettings) -> None:
    """A folder holding a render with other settings is not resumed (its pictures would mix)."""
    summary = out / "minividit.json"
    if not summary.is_file():
        return
    saved = json.loads(summary.read_text()).get("content")
    wanted = settings.content()
    if saved != wanted:
        differing = sorted(k for k in wanted if (saved or {}).get(k) != wanted[k])
        raise DataFormatError(
            f"{out}: holds a mini-VIDIT rendered with other settings (differing: {differing}); "
            "delete the folder or render into another one (data.dataset_dir=...)"
        )


def is_rendered(out: str | Path, settings: RenderSettings) -> bool:
    """Whether ``out`` holds a complete mini-VIDIT of these settings."""
    summary = Path(out) / "minividit.json"
    if not summary.is_file():
        return False
    saved = json.loads(summary.read_text())
    return bool(saved.get("complete")) and saved.get("content") == settings.content()


def render_minividit(
    out: str | Path, settings: RenderSettings = RenderSettings(), progress: bool = True
) -> dict:
    """Render the mini-VIDIT into ``out`` (see the module docstring); returns a summary.

    Files already present are kept, so an interrupted run resumes where it stopped; a
    folder rendered with other settings is a :class:`DataFormatError`.
    """
    _check(settings)
    out = Path(out)
    _check_same_settings(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "train": settings.train_scenes,
        "validation": settings.val_scenes,
        "validation_shifted": settings.shifted_scenes,
    }
    ids, first = {}, 0
    for split, count in counts.items():
        ids[split], first = list(range(first, first + count)), first + count
    descriptions = {
        sid: scene_description(description_seed(settings, SPLITS[split], sid), SPLITS[split])
        for split, scene_ids in ids.items()
        for sid in scene_ids
    }
    wanted_images: dict[int, dict[Lighting, list[Path]]] = {sid: {} for sid in descriptions}
    wanted_depths: dict[int, list[Path]] = {sid: [] for sid in descriptions}
    train_dir = out / "train"
    train_dir.mkdir(exist_ok=True)
    for sid in ids["train"]:
        wanted_depths[sid].append(train_dir / f"Image{sid:03d}.npy")
        for t in settings.temperatures:
            for d in settings.directions:
                wanted_images[sid][Lighting(t, d)] = [train_dir / f"Image{sid:03d}_{t}_{d}.png"]
    sources: dict[str, dict[str, dict[str, str]]] = {}
    per_scene = {
        "validation": settings.pairs_per_val_scene,
        "validation_shifted": settings.pairs_per_shifted_scene,
    }
    for stream, (split, pairs_per_scene) in enumerate(per_scene.items(), start=2):
        if not ids[split]:
            continue
        folder = out / split
        for role in ("input", "guide", "target"):
            (folder / role).mkdir(parents=True, exist_ok=True)
        sources[split] = {}
        plan = pairs_plan(settings, ids[split], pairs_per_scene, stream)
        for n, (a, l1, b, l2) in enumerate(plan):
            name = f"Pair{n:03d}"
            for sid, light, role in ((a, l1, "input"), (b, l2, "guide"), (a, l2, "target")):
                wanted_images[sid].setdefault(light, []).append(folder / role / f"{name}.png")
            wanted_depths[a].append(folder / "input" / f"{name}.npy")
            wanted_depths[b].append(folder / "guide" / f"{name}.npy")
            sources[split][name] = {
                "input": f"Image{a:03d}_{l1}",
                "guide": f"Image{b:03d}_{l2}",
                "target": f"Image{a:03d}_{l2}",
            }
        write_text_atomic(folder / PAIR_SOURCES, json.dumps(sources[split], indent=1))

    def seed(*parts: object) -> int:
        keys = [zlib.crc32(str(part).encode()) for part in parts]
        return int(np.random.SeedSequence([settings.seed, *keys]).generate_state(1)[0] % 2**31)

    jobs = []
    for sid, description in descriptions.items():
        images = tuple(
            (light.temperature, light.direction, tuple(str(p) for p in paths if not p.exists()))
            for light, paths in wanted_images[sid].items()
            if any(not p.exists() for p in paths)
        )
        depths = tuple(str(p) for p in wanted_depths[sid] if not p.exists())
        if images or depths:
            seeds = {name: seed(sid, name) for name in ("sky", "depth", *settings.directions)}
            jobs.append(SceneJob(description, settings.size, settings.spp, seeds, images, depths))

    summary = {
        "complete": False,
        "content": settings.content(),
        "settings": json.loads(json.dumps(asdict(settings))),
        "splits": {
            split: {
                "generator": SPLITS[split].name,
                "scenes": scene_ids,
                **({"pairs": sources[split]} if split in sources else {}),
            }
            for split, scene_ids in ids.items()
        },
        "descriptions": {f"Image{sid:03d}": d for sid, d in descriptions.items()},
    }
    if jobs:
        require_mitsuba()
    write_text_atomic(out / "minividit.json", json.dumps(summary, indent=1))
    variant = choose_variant(settings.variant)
    start, written = time.perf_counter(), 0
    if jobs:
        if settings.workers > 1:
            context = multiprocessing.get_context("spawn")
            with context.Pool(settings.workers, _init_worker, (variant,)) as pool:
                for files, _ in tqdm(
                    pool.imap_unordered(_render_scene, jobs),
                    total=len(jobs),
                    desc=f"rendering ({variant})",
                    disable=not progress,
                ):
                    written += files
        else:
            _init_worker(variant)
            for job in tqdm(jobs, desc=f"rendering ({variant})", disable=not progress):
                written += _render_scene(job)[0]
    seconds = time.perf_counter() - start
    save_png(contact_sheet(out, settings, ids), out / "contact_sheet.png")
    summary.update(complete=True, variant=variant, rendered=written, seconds=round(seconds, 1))
    write_text_atomic(out / "minividit.json", json.dumps(summary, indent=1))
    return summary


def _grid(
    tiles: list[list[Image.Image]], row_labels: Sequence[str], column_labels: Sequence[str]
) -> Image.Image:
    """Tiles in rows, labelled on the left and on top."""
    size = tiles[0][0].width
    margin, top, left = 4, 14, 48
    columns = max(len(row) for row in tiles)
    sheet = Image.new(
        "RGB", (left + columns * (size + margin), top + len(tiles) * (size + margin)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels):
        draw.text((left + c * (size + margin) + size // 2 - 3 * len(label), 1), label, fill="black")
    for r, row in enumerate(tiles):
        draw.text((2, top + r * (size + margin) + size // 2 - 6), row_labels[r], fill="black")
        for c, tile in enumerate(row):
            sheet.paste(tile, (left + c * (size + margin), top + r * (size + margin)))
    return sheet


def _titled(title: str, grid: Image.Image) -> Image.Image:
    section = Image.new("RGB", (grid.width, grid.height + 18), "white")
    ImageDraw.Draw(section).text((2, 4), title, fill="black")
    section.paste(grid, (0, 18))
    return section


def contact_sheet(out: Path, settings: RenderSettings, ids: dict[str, list[int]]) -> Image.Image:
    """One training scene under every lighting (rows = temperatures, columns = directions),
    then up to 16 other training scenes and 16 shifted-split scenes under assorted lightings."""
    train_dir, temps, dirs = out / "train", settings.temperatures, settings.directions

    def load(path: Path) -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB")

    first = ids["train"][0]
    sections = [
        _titled(
            f"Image{first:03d} (training) under {len(temps)} temperatures x {len(dirs)} directions",
            _grid(
                [[load(train_dir / f"Image{first:03d}_{t}_{d}.png") for d in dirs] for t in temps],
                [f"{t}K" for t in temps],
                dirs,
            ),
        )
    ]
    width = len(dirs)
    others = ids["train"][1:17]
    if others:
        tiles = [
            load(train_dir / f"Image{sid:03d}_{temps[k % len(temps)]}_{dirs[k % width]}.png")
            for k, sid in enumerate(others)
        ]
        rows = [tiles[i : i + width] for i in range(0, len(tiles), width)]
        sections.append(
            _titled(
                "training scenes (the training generator's variety)",
                _grid(rows, [""] * len(rows), []),
            )
        )
    shifted = sorted((out / "validation_shifted" / "input").glob("Pair*.png"))
    shifted = shifted[:: max(settings.pairs_per_shifted_scene, 1)][:16]
    if shifted:
        tiles = [load(p) for p in shifted]
        rows = [tiles[i : i + width] for i in range(0, len(tiles), width)]
        sections.append(
            _titled(
                "shifted validation scenes (the shifted generator)",
                _grid(rows, [""] * len(rows), []),
            )
        )
    sheet = Image.new(
        "RGB", (max(s.width for s in sections), sum(s.height for s in sections)), "white"
    )
    y = 0
    for section in sections:
        sheet.paste(section, (0, y))
        y += section.height
    return sheet
