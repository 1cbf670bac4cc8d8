"""What a mini-VIDIT scene is drawn from: the generator settings of each split.

A :class:`GeneratorSettings` lists every factor a scene varies and its range or choices:
object shapes, count, size and proportions; materials and their roughness; ground and
object textures and colours; camera height, distance, field of view and yaw; light
elevation and size; ambient light and exposure. :func:`scene_description` draws one scene
as plain data (JSON-able, no Mitsuba objects) from a seed.

- :data:`TRAIN_GENERATOR` (training and the ordinary validation split) randomises every
  factor over wide ranges, so no single value of any factor is all a model sees.
- :data:`SHIFTED_GENERATOR` (the shifted validation split) is deliberately different:
  shape families, materials and texture kinds the training set never has, fewer, bigger
  and taller objects, more saturated colours, a higher camera with a narrower field of
  view, a higher and larger light. Its continuous ranges straddle the ends of the
  training ranges (partly inside, partly beyond).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from relight.data.procedural import TEXTURE_KEYS

Range = tuple[float, float]


@dataclass(frozen=True)
class GeneratorSettings:
    """The ranges (``(low, high)``, uniform) and choices every scene factor is drawn from."""

    name: str
    shapes: tuple[str, ...]
    object_count: tuple[int, int]  # inclusive
    object_size: Range  # footprint radius
    aspect: Range  # height / footprint diameter
    materials: tuple[str, ...]  # diffuse, glossy (rough plastic), satin, lacquer
    roughness: Range  # glossy: GGX alpha; satin: principled roughness
    metallic: Range  # satin only
    object_textures: tuple[str, ...]  # kinds on objects besides plain colour
    object_texture_share: float
    ground_textures: tuple[str, ...]
    texture_period: Range  # ground, in scene units
    saturation: Range
    object_value: Range  # brightness of object colours
    ground_value: Range
    camera_height: Range
    camera_distance: Range  # horizontal, behind the scene centre (south)
    fov: Range  # degrees
    camera_yaw: Range  # degrees around the vertical axis
    light_elevation: Range  # degrees
    light_size: Range  # side of the square area light
    ambient: Range  # radiance of the uniform sky
    exposure: Range


TRAIN_GENERATOR = GeneratorSettings(
    name="train",
    shapes=("sphere", "box", "cylinder", "cone", "capsule"),
    object_count=(2, 7),
    object_size=(0.25, 0.8),
    aspect=(0.4, 2.0),
    materials=("diffuse", "glossy"),
    roughness=(0.05, 0.4),
    metallic=(0.0, 0.0),
    object_textures=("checker", "stripes"),
    object_texture_share=0.3,
    ground_textures=("checker", "stripes", "tiles", "noise"),
    texture_period=(0.4, 2.0),
    saturation=(0.05, 0.9),  # grey to strongly saturated (0.1-0.8 before the 2026-11-27 study)
    object_value=(0.3, 0.9),
    ground_value=(0.2, 0.65),
    camera_height=(5.5, 9.0),
    camera_distance=(2.8, 5.5),
    fov=(36.0, 50.0),
    camera_yaw=(-6.0, 6.0),
    light_elevation=(25.0, 60.0),
    light_size=(0.6, 2.4),
    ambient=(0.03, 0.09),
    exposure=(0.85, 1.15),
)

SHIFTED_GENERATOR = GeneratorSettings(
    name="shifted",
    shapes=("torus", "pyramid", "prism", "dome"),
    object_count=(2, 4),
    object_size=(0.6, 1.0),
    aspect=(1.6, 2.6),
    materials=("satin", "lacquer"),
    roughness=(0.25, 0.45),
    metallic=(0.3, 0.6),
    object_textures=("dots",),
    object_texture_share=0.3,
    ground_textures=("dots", "marble"),
    texture_period=(0.5, 1.5),
    saturation=(0.7, 0.95),
    object_value=(0.5, 0.85),
    ground_value=(0.35, 0.55),
    camera_height=(8.5, 9.5),
    camera_distance=(2.2, 3.2),
    fov=(32.0, 38.0),
    camera_yaw=(-3.0, 3.0),
    light_elevation=(55.0, 68.0),
    light_size=(2.2, 3.0),
    ambient=(0.04, 0.06),
    exposure=(1.0, 1.0),
)

GENERATORS = {g.name: g for g in (TRAIN_GENERATOR, SHIFTED_GENERATOR)}


def _uniform(rng: np.random.Generator, bounds: Range, digits: int = 4) -> float:
    return round(float(rng.uniform(*bounds)), digits)


def _colour(rng: np.random.Generator, saturation: Range, value: Range) -> list[float]:
    """A random hue at the given saturation and brightness, as linear RGB."""
    hue, sat = rng.random(), rng.uniform(*saturation)
    base = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)])
    rgb = np.clip(base, 0, 1) * sat + (1 - sat)
    return (rgb * rng.uniform(*value)).round(4).tolist()


def _texture(rng: np.random.Generator, kind: str, colours: list, period: float) -> dict:
    """A texture spec (see :mod:`relight.data.procedural`) of ``kind``."""
    extra = {
        "angle": round(float(rng.uniform(0, 180)), 2),
        "grout": round(float(rng.uniform(0.05, 0.15)), 3),
        "seed": int(rng.integers(2**31)),
        "radius": round(float(rng.uniform(0.2, 0.4)), 3),
    }
    spec = {"kind": kind, "colours": colours, "period": round(period, 4)}
    spec.update({key: extra[key] for key in TEXTURE_KEYS[kind]})
    return spec


def _material(rng: np.random.Generator, g: GeneratorSettings) -> dict:
    colour = _colour(rng, g.saturation, g.object_value)
    if g.object_textures and rng.random() < g.object_texture_share:
        other = _colour(rng, g.saturation, g.object_value)
        kind = str(rng.choice(list(g.object_textures)))
        texture = _texture(rng, kind, [colour, other], 1 / float(rng.integers(3, 9)))
    else:
        texture = _texture(rng, "plain", [colour, colour], 1.0)
    return {
        "kind": str(rng.choice(list(g.materials))),
        "texture": texture,
        "roughness": _uniform(rng, g.roughness),
        "metallic": _uniform(rng, g.metallic),
    }


def scene_description(seed: int, generator: GeneratorSettings = TRAIN_GENERATOR) -> dict:
    """A random scene of ``generator`` (plain data): ground, objects, camera, light."""
    rng = np.random.default_rng(seed)
    g = generator
    objects, placed = [], []
    for _ in range(int(rng.integers(g.object_count[0], g.object_count[1] + 1))):
        size = float(rng.uniform(*g.object_size))
        for _attempt in range(30):
            x, y = rng.uniform(-2.4, 2.4, size=2)
            if all(math.hypot(x - px, y - py) > size + ps + 0.1 for px, py, ps in placed):
                break
        placed.append((x, y, size))
        objects.append(
            {
                "shape": str(rng.choice(list(g.shapes))),
                "position": [round(float(x), 4), round(float(y), 4)],
                "size": round(size, 4),
                "height": round(2 * size * float(rng.uniform(*g.aspect)), 4),
                "rotation": round(float(rng.uniform(0, 90)), 2),
                "material": _material(rng, g),
            }
        )
    ground_colours = [_colour(rng, g.saturation, g.ground_value) for _ in range(2)]
    ground_kind = str(rng.choice(list(g.ground_textures)))
    return {
        "generator": g.name,
        "ground": _texture(rng, ground_kind, ground_colours, float(rng.uniform(*g.texture_period))),
        "objects": objects,
        "camera": {
            "height": _uniform(rng, g.camera_height),
            "distance": _uniform(rng, g.camera_distance),
            "fov": _uniform(rng, g.fov, 2),
            "yaw": _uniform(rng, g.camera_yaw, 2),
        },
        "light": {
            "elevation": _uniform(rng, g.light_elevation, 2),
            "size": _uniform(rng, g.light_size),
        },
        "ambient": _uniform(rng, g.ambient),
        "exposure": _uniform(rng, g.exposure),
    }
