"""Indexing VIDIT's track-2 train layout and splitting it by scene.

The train folder is flat: ``ImageXXX_TTTT_D.png`` (scene XXX, colour temperature TTTT in
kelvin, light direction D) and one depth file per scene, ``ImageXXX.npy``. TTTT and D are
one of VIDIT's 40 lightings (:data:`TEMPERATURES` x :data:`DIRECTIONS`; the mini-VIDIT
renders a subset of them): a name of this form with another lighting (a typo such as
``Image001_4550_N.png``) is an error, not a 41st lighting.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relight.data.formats import DataFormatError, depth_shape, image_size

TEMPERATURES = (2500, 3500, 4500, 5500, 6500)
DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
#: A train image's name, whatever its lighting (checked against :data:`LIGHTINGS`).
IMAGE_PATTERN = re.compile(r"^Image(\d+)_(\d+)_([A-Za-z]+)\.png$")
DEPTH_PATTERN = re.compile(r"^Image(\d+)\.npy$")
EXPECTED = "ImageXXX_TTTT_D.png (e.g. Image014_4500_E.png) with one ImageXXX.npy depth per scene"


@dataclass(frozen=True, order=True)
class Lighting:
    """One of VIDIT's illuminations: colour temperature (K) and light direction."""

    temperature: int
    direction: str

    def __str__(self) -> str:
        return f"{self.temperature}_{self.direction}"


#: VIDIT's 40 lightings: its 5 temperatures x 8 directions.
LIGHTINGS = frozenset(Lighting(t, d) for t in TEMPERATURES for d in DIRECTIONS)
VALID_LIGHTINGS = (
    f"temperatures {', '.join(map(str, TEMPERATURES))} K; directions {', '.join(DIRECTIONS)}"
)


def unknown_lighting_message(path: Path, count: int = 1) -> str:
    """Why ``path``, named like a train image, is not one: its lighting is not VIDIT's."""
    match = IMAGE_PATTERN.match(path.name)
    light = f"{match[2]}_{match[3]}" if match else path.stem
    more = f" ({count - 1} more file(s) like it)" if count > 1 else ""
    return (
        f"{path}: lighting '{light}' is not one of VIDIT's 40 ({VALID_LIGHTINGS}); a typo? "
        f"Rename or remove it{more}"
    )


@dataclass
class Scene:
    """One scene: its depth file and the image of each available lighting."""

    scene_id: int
    depth: Path
    images: dict[Lighting, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"Image{self.scene_id:03d}"


@dataclass
class TrainListing:
    """A train folder's files by name: each scene's images per lighting and its depth files
    (a list each: two names can mean the same item, e.g. ``Image1_...`` and
    ``Image001_...``), the images named with a lighting that is not VIDIT's, and every
    other entry of the folder."""

    images: dict[int, dict[Lighting, list[Path]]]
    depths: dict[int, list[Path]]
    others: list[Path]
    unknown_lightings: list[Path] = field(default_factory=list)


def list_train_folder(root: str | Path) -> TrainListing:
    """Sort the entries of a track-2 train folder by name (no file is opened)."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: VIDIT train folder not found", root, "missing")
    listing = TrainListing({}, {}, [])
    for path in sorted(root.iterdir()):
        if (match := IMAGE_PATTERN.match(path.name)) and path.is_file():
            light = Lighting(int(match[2]), match[3])
            if light not in LIGHTINGS:
                listing.unknown_lightings.append(path)
                continue
            lights = listing.images.setdefault(int(match[1]), {})
            lights.setdefault(light, []).append(path)
        elif (match := DEPTH_PATTERN.match(path.name)) and path.is_file():
            listing.depths.setdefault(int(match[1]), []).append(path)
        else:
            listing.others.append(path)
    return listing


def index_vidit(
    root: str | Path,
    check_sizes: bool = True,
    allow_pickle: bool = True,
    tolerate_unreadable: bool = False,
    one_size: bool = False,
) -> dict[int, Scene]:
    """Index a track-2 train folder: scene id -> :class:`Scene`.

    Raises :class:`DataFormatError` (naming the file or pattern) for a missing folder, a
    folder without matching files, an image named with a lighting that is not one of
    VIDIT's 40, a scene without depth and, with ``check_sizes``, an
    image whose size differs from its scene's depth, or, with ``one_size`` too (training at
    the native size: a batch stacks scenes), a scene whose size differs from the folder's
    most common one. Scenes with fewer than 40 lightings
    are fine; a depth file without images is ignored with a warning. With
    ``tolerate_unreadable``, a file whose header cannot be read stays in the index
    unchecked (reading it later fails, and the ``skip`` policy replaces its items).
    """
    root = Path(root)
    listing = list_train_folder(root)
    if listing.unknown_lightings:
        path = listing.unknown_lightings[0]
        raise DataFormatError(
            unknown_lighting_message(path, len(listing.unknown_lightings)), path, "invalid"
        )
    scenes_images = {
        sid: {light: paths[-1] for light, paths in lights.items()}
        for sid, lights in listing.images.items()
    }
    depths = {sid: paths[-1] for sid, paths in listing.depths.items()}
    if not scenes_images:
        found = sorted(p.name for p in root.iterdir())[:5]
        raise DataFormatError(
            f"{root}: no VIDIT images found; expected {EXPECTED}. "
            f"Found {found or 'an empty folder'}"
        )
    missing = sorted(set(scenes_images) - set(depths))
    if missing:
        names = ", ".join(f"Image{i:03d}.npy" for i in missing[:10])
        raise DataFormatError(
            f"{root}: depth missing for {len(missing)} scene(s): {names}",
            root / f"Image{missing[0]:03d}.npy",
            "missing",
        )
    orphans = sorted(set(depths) - set(scenes_images))
    if orphans:
        warnings.warn(f"{root}: depth files without images ignored: {orphans[:10]}", stacklevel=2)
    scenes = {
        sid: Scene(sid, depths[sid], dict(sorted(images.items())))
        for sid, images in sorted(scenes_images.items())
    }
    if check_sizes:
        sizes = {
            sid: _check_scene_sizes(scene, allow_pickle, tolerate_unreadable)
            for sid, scene in scenes.items()
        }
        if one_size:
            _check_one_size(scenes, sizes)
    return scenes


def _check_scene_sizes(
    scene: Scene, allow_pickle: bool, tolerate_unreadable: bool
) -> tuple[int, int] | None:
    """The scene's (H, W), checked against its depth (``None`` when nothing is readable)."""

    def size(read, path: Path) -> tuple[int, int] | None:
        try:
            return read(path)
        except DataFormatError:
            if tolerate_unreadable:
                return None
            raise

    expected = size(lambda p: depth_shape(p, allow_pickle), scene.depth)
    readable = []
    for path in scene.images.values():
        found = size(image_size, path)
        if expected is not None and found is not None and found != expected:
            raise DataFormatError(
                f"{path}: image is {found} but its depth {scene.depth.name} is {expected} (H, W)",
                path,
            )
        readable += [found] if found is not None else []
    return expected if expected is not None else next(iter(readable), None)


def _check_one_size(scenes: dict[int, Scene], sizes: dict[int, tuple[int, int] | None]) -> None:
    known = {scenes[sid].name: size for sid, size in sizes.items() if size is not None}
    files = {scenes[sid].name: next(iter(scenes[sid].images.values())) for sid in sizes}
    check_one_size(known, files, "scene")


def check_one_size(sizes: dict[str, tuple[int, int]], files: dict[str, Path], kind: str) -> None:
    """At the native size (``data.image_size=null``) a batch stacks items of one size:
    ``sizes`` (by scene or pair name) must agree, else a :class:`DataFormatError` names
    ``files[name]`` of an item whose size is not the most common one."""
    counts = Counter(sizes.values())
    if len(counts) < 2:
        return
    common, count = counts.most_common(1)[0]
    odd = [name for name, size in sizes.items() if size != common]
    path = files[odd[0]]
    raise DataFormatError(
        f"{path}: {kind} {odd[0]} is {sizes[odd[0]]} but {count} other {kind}s are {common} "
        f"(H, W; {len(odd)} {kind}(s) differ). At the native size (data.image_size=null) a "
        f"batch stacks {kind}s of one size: set data.image_size to resize them, or remove the "
        f"odd {kind}s",
        path,
    )


def split_scenes(
    scene_ids: Sequence[int],
    val_scenes: Sequence[int] | None = None,
    val_ratio: float = 0.1,
    seed: int = 0,
) -> tuple[list[int], list[int]]:
    """Split scene ids into (train, val): an explicit list, or a seeded random ``val_ratio``.

    A scene is never in both. An explicit id that does not exist is an error.
    """
    ids = sorted(scene_ids)
    if val_scenes is not None:
        unknown = sorted(set(val_scenes) - set(ids))
        if unknown:
            raise ValueError(f"data.val_scenes lists scenes that are not in the data: {unknown}")
        val = sorted(set(val_scenes))
    else:
        if not 0 <= val_ratio < 1:
            raise ValueError(f"data.val_ratio must be in [0, 1), got {val_ratio}")
        count = round(len(ids) * val_ratio)
        rng = np.random.default_rng(seed)
        val = sorted(int(i) for i in rng.choice(ids, size=count, replace=False)) if count else []
    train = [i for i in ids if i not in set(val)]
    if not train:
        raise ValueError("the split leaves no training scene")
    return train, val
