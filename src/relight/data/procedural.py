"""Procedural textures and meshes of the mini-VIDIT scenes (plain numpy, no Mitsuba).

Textures are RGB reflectance images drawn from a small spec dict (``kind``, two
``colours``, a ``period`` and kind-specific numbers); meshes are surfaces of revolution
(a profile in the (radius, height) plane turned around the vertical axis), smooth or
faceted. Both are deterministic functions of their spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Texture kinds and the spec keys each needs besides ``kind``, ``colours`` and ``period``.
TEXTURE_KEYS = {
    "plain": (),
    "checker": (),
    "stripes": ("angle",),
    "tiles": ("grout", "seed"),
    "noise": ("seed",),
    "dots": ("radius",),
    "marble": ("angle", "seed"),
}


def _value_noise(u: np.ndarray, v: np.ndarray, seed: int, octaves: int = 4) -> np.ndarray:
    """Smooth fractal value noise in [0, 1] at coordinates ``u``, ``v`` (in periods)."""
    rng = np.random.default_rng(seed)
    total, weight, norm = np.zeros_like(u), 1.0, 0.0
    for octave in range(octaves):
        scale = 2.0**octave
        grid = rng.random((64, 64))
        x, y = u * scale, v * scale
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)  # smoothstep

        def at(i: np.ndarray, j: np.ndarray, grid: np.ndarray = grid) -> np.ndarray:
            return grid[i % 64, j % 64]

        top = at(x0, y0) * (1 - sx) + at(x0 + 1, y0) * sx
        bottom = at(x0, y0 + 1) * (1 - sx) + at(x0 + 1, y0 + 1) * sx
        total += weight * (top * (1 - sy) + bottom * sy)
        norm += weight
        weight *= 0.5
    return total / norm


def _mask(spec: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where ``colours[1]`` shows (0..1) at coordinates in periods."""
    kind = spec["kind"]
    if kind == "plain":
        return np.zeros_like(u)
    if kind == "checker":
        return ((np.floor(u) + np.floor(v)) % 2).astype(np.float64)
    if kind == "stripes":
        a = math.radians(spec["angle"])
        return (np.floor(u * math.cos(a) + v * math.sin(a)) % 2).astype(np.float64)
    if kind == "tiles":
        fu, fv = u - np.floor(u), v - np.floor(v)
        half = spec["grout"] / 2
        return ((fu < half) | (fu > 1 - half) | (fv < half) | (fv > 1 - half)).astype(np.float64)
    if kind == "noise":
        return np.clip((_value_noise(u, v, spec["seed"]) - 0.5) * 2.5 + 0.5, 0, 1)
    if kind == "dots":
        fu, fv = u - np.floor(u) - 0.5, v - np.floor(v) - 0.5
        return (np.hypot(fu, fv) < spec["radius"]).astype(np.float64)
    if kind == "marble":
        a = math.radians(spec["angle"])
        turbulence = _value_noise(u, v, spec["seed"])
        return 0.5 + 0.5 * np.sin(
            2 * math.pi * (u * math.cos(a) + v * math.sin(a)) + 6 * turbulence
        )
    raise ValueError(f"unknown texture kind '{kind}'; known: {sorted(TEXTURE_KEYS)}")


def texture_image(spec: dict, pixels: int, extent: float) -> np.ndarray:
    """A (pixels, pixels, 3) float32 linear reflectance image of ``spec`` over a square of
    side ``extent`` (the units of ``spec["period"]``). Tiles vary their colour per tile."""
    coords = (np.arange(pixels) + 0.5) / pixels * extent / spec["period"]
    u, v = np.meshgrid(coords, coords)
    c0, c1 = (np.asarray(c, dtype=np.float64) for c in spec["colours"])
    mask = _mask(spec, u, v)[..., None]
    image = c0 * (1 - mask) + c1 * mask
    if spec["kind"] == "tiles":  # each tile a little brighter or darker
        jitter = np.random.default_rng(spec["seed"]).uniform(0.8, 1.2, (4096,))
        tile = (np.floor(u).astype(int) * 64 + np.floor(v).astype(int)) % 4096
        image = np.where(mask > 0, image, image * jitter[tile][..., None])
    return np.clip(image, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------- meshes


@dataclass(frozen=True)
class MeshArrays:
    """Triangle mesh buffers (float32 positions/normals/uvs, uint32 faces)."""

    positions: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    normals: np.ndarray | None  # (V, 3), None: flat shading from the faces
    texcoords: np.ndarray  # (V, 2)


def revolve(
    curves: list[list[tuple[float, float, float, float]]], segments: int, smooth: bool = True
) -> MeshArrays:
    """Turn profile curves around the z axis.

    Each curve is a list of ``(r, z, nr, nz)`` points joined smoothly (a crease starts a new
    curve); ``(nr, nz)`` is the outward normal in the profile plane. ``segments`` sets how
    many facets go around (4: a pyramid-like solid, 6: a hexagonal one, 48: round).
    """
    positions, normals, uvs, faces = [], [], [], []
    angles = np.linspace(0, 2 * math.pi, segments + 1)
    length = sum(
        math.dist(a[:2], b[:2]) for curve in curves for a, b in zip(curve, curve[1:], strict=False)
    )
    travelled = 0.0
    for curve in curves:
        start = len(positions)
        for k, (r, z, nr, nz) in enumerate(curve):
            if k:
                travelled += math.dist(curve[k - 1][:2], (r, z))
            for j, phi in enumerate(angles):
                c, s = math.cos(phi), math.sin(phi)
                positions.append((r * c, r * s, z))
                normals.append((nr * c, nr * s, nz))
                uvs.append((j / segments, travelled / max(length, 1e-9)))
        ring = segments + 1
        for k in range(len(curve) - 1):
            for j in range(segments):
                a = start + k * ring + j
                b, c, d = a + 1, a + ring, a + ring + 1
                faces += [(a, b, d), (a, d, c)]
    positions_array = np.asarray(positions, dtype=np.float32)
    faces_array = np.asarray(faces, dtype=np.uint32)
    # drop triangles collapsed on the axis (r = 0 rings)
    tri = positions_array[faces_array]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    faces_array = faces_array[area > 1e-10]
    normal_array = np.asarray(normals, dtype=np.float32)
    normal_array /= np.maximum(np.linalg.norm(normal_array, axis=1, keepdims=True), 1e-12)
    return MeshArrays(
        positions_array,
        faces_array,
        normal_array if smooth else None,
        np.asarray(uvs, dtype=np.float32),
    )


def _arc(
    centre: tuple[float, float],
    radii: tuple[float, float],
    start_deg: float,
    end_deg: float,
    steps: int,
) -> list[tuple[float, float, float, float]]:
    """Profile points on an ellipse arc (radii along r and z), normals pointing outward."""
    points = []
    for t in np.linspace(math.radians(start_deg), math.radians(end_deg), steps):
        nr, nz = math.cos(t) / radii[0], math.sin(t) / radii[1]
        norm = math.hypot(nr, nz)
        r, z = centre[0] + radii[0] * math.cos(t), centre[1] + radii[1] * math.sin(t)
        points.append((r, z, nr / norm, nz / norm))
    return points


def _side(r0: float, z0: float, r1: float, z1: float) -> list[tuple[float, float, float, float]]:
    """A straight profile segment with its outward normal."""
    dr, dz = r1 - r0, z1 - z0
    n = math.hypot(dr, dz)
    return [(r0, z0, dz / n, -dr / n), (r1, z1, dz / n, -dr / n)]


#: Shapes built as surfaces of revolution; the others are Mitsuba primitives.
MESH_SHAPES = ("cone", "capsule", "torus", "pyramid", "prism", "dome")


def shape_mesh(shape: str, radius: float, height: float) -> MeshArrays:
    """The mesh of ``shape`` standing on z = 0, ``radius`` wide and ``height`` tall."""
    if shape == "cone":
        return revolve([_side(radius, 0, 1e-4, height)], 48)
    if shape == "capsule":
        cap = min(radius, height / 2)  # a flattened dome on short capsules
        side = _side(radius, 0, radius, height - cap)
        return revolve([side, _arc((0, height - cap), (radius, cap), 0, 90, 12)], 48)
    if shape == "pyramid":
        return revolve([_side(radius, 0, 1e-4, height)], 4, smooth=False)
    if shape == "prism":
        top = [(radius, height, 0, 1), (1e-4, height, 0, 1)]
        return revolve([_side(radius, 0, radius, height), top], 6, smooth=False)
    if shape == "dome":
        return revolve([_arc((0, 0), (radius, height / 2), 0, 90, 16)], 48)
    if shape == "torus":  # a ring lying on the ground; height = tube diameter
        tube = min(height / 2, radius * 0.45)
        return revolve([_arc((radius - tube, tube), (tube, tube), -180, 180, 24)], 48)
    raise ValueError(f"no mesh for shape '{shape}'; meshes: {MESH_SHAPES}")
