"""The kind of lighting change of an example, from VIDIT file names.

An example relights scene A from lighting L1 (its input) to lighting L2 (its guide's).
Its kind:

- ``same_direction``: same light direction, another colour temperature;
- ``other_direction``: a direction 45, 90 or 135 degrees away (any temperature);
- ``opposite_direction``: the opposite direction (180 degrees; any temperature);
- ``same_lighting``: L2 = L1 (only with ``allow_same_lighting``).

Where the lightings come from:

- training and generated validation items are named ``ImageXXX_TTTT_D-to-ImageYYY_TTTT_D``
  (:class:`relight.data.sampling.Triplet`): the name says it;
- a pairs folder (``PairNNN``) knows it when it holds ``pairs.json`` (:data:`PAIR_SOURCES`),
  which the mini-VIDIT renderer writes: for each pair, the VIDIT names of the images it was
  made from, ``{"Pair000": {"input": "Image040_4500_E", "guide": "Image043_2500_N",
  "target": "Image040_2500_N"}, ...}``. VIDIT's own validation folder has no such file:
  its kinds are unknown and no breakdown is made.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from torch.utils.data import Dataset

from relight.data.formats import DataFormatError
from relight.data.vidit import DIRECTIONS, Lighting

LIGHTING_CHANGES = ("same_direction", "other_direction", "opposite_direction", "same_lighting")
#: How tables name each kind.
LIGHTING_CHANGE_LABELS = {
    "same_direction": "same direction, other temperature",
    "other_direction": "another direction (45-135°)",
    "opposite_direction": "opposite direction (180°)",
    "same_lighting": "same lighting",
}
#: The file in a pairs folder that names each pair's source images.
PAIR_SOURCES = "pairs.json"
NAME_PATTERN = re.compile(r"^Image(\d+)_(\d{4})_(N|NE|E|SE|S|SW|W|NW)(?:\.png)?$")


def direction_steps(a: str, b: str) -> int:
    """How many 45-degree steps apart two compass directions are (0..4)."""
    steps = abs(DIRECTIONS.index(a) - DIRECTIONS.index(b)) % len(DIRECTIONS)
    return min(steps, len(DIRECTIONS) - steps)


def lighting_change(source: Lighting, guide: Lighting) -> str:
    """The kind of change from ``source`` to ``guide`` lighting (see the module docstring)."""
    steps = direction_steps(source.direction, guide.direction)
    if steps == 0:
        return "same_lighting" if source.temperature == guide.temperature else "same_direction"
    return "opposite_direction" if steps == len(DIRECTIONS) // 2 else "other_direction"


def parse_lighting(name: str) -> Lighting:
    """The lighting of a VIDIT image name (``Image014_4500_E`` or ``Image014_4500_E.png``)."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(f"'{name}' is not a VIDIT image name (ImageXXX_TTTT_D)")
    return Lighting(int(match[2]), match[3])


def triplet_lighting_change(name: str) -> str | None:
    """The kind of a ``ImageXXX_TTTT_D-to-ImageYYY_TTTT_D`` item name; ``None`` otherwise."""
    parts = name.split("-to-")
    if len(parts) != 2 or not all(NAME_PATTERN.match(p) for p in parts):
        return None
    return lighting_change(parse_lighting(parts[0]), parse_lighting(parts[1]))


def read_pair_sources(pairs_dir: str | Path) -> dict[str, dict[str, str]] | None:
    """``pairs_dir/pairs.json`` (pair name -> its ``input``/``guide`` image names), or
    ``None`` when the folder has none. A malformed file is a :class:`DataFormatError`."""
    path = Path(pairs_dir) / PAIR_SOURCES
    if not path.is_file():
        return None
    try:
        sources = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(sources, dict):
        raise DataFormatError(f"{path}: expected an object of pair name -> sources")
    for pair, entry in sources.items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(role), str) and NAME_PATTERN.match(entry[role])
            for role in ("input", "guide")
        ):
            raise DataFormatError(
                f"{path}: pair '{pair}' needs 'input' and 'guide' VIDIT image names "
                f"(ImageXXX_TTTT_D), got {entry!r}"
            )
    return sources


def pair_lighting_changes(pairs_dir: str | Path, names: list[str]) -> dict[str, str] | None:
    """The kind of each named pair of a pairs folder, or ``None`` without ``pairs.json``;
    a pair missing from the file is a :class:`DataFormatError`."""
    sources = read_pair_sources(pairs_dir)
    if sources is None:
        return None
    missing = [n for n in names if n not in sources]
    if missing:
        raise DataFormatError(
            f"{Path(pairs_dir) / PAIR_SOURCES}: no sources for pair(s) {missing[:5]}"
        )
    return {
        n: lighting_change(parse_lighting(sources[n]["input"]), parse_lighting(sources[n]["guide"]))
        for n in names
    }


def dataset_lighting_changes(dataset: Dataset, names: list[str]) -> dict[str, str] | None:
    """Item name -> kind of lighting change for the named items of ``dataset`` (a pairs
    dataset through ``pairs.json``, others through the item names), or ``None`` when any
    of them is unknown (see the module docstring)."""
    pairs = getattr(dataset, "pairs", None)
    if pairs is not None:  # a PairsDataset: pairs.json of each pair's folder
        folders: dict[Path, list[str]] = {}
        for pair in pairs:
            if pair.name in names:
                folders.setdefault(pair.input.parent.parent, []).append(pair.name)
        kinds: dict[str, str] = {}
        for folder, in_folder in folders.items():
            found = pair_lighting_changes(folder, in_folder)
            if found is None:
                return None
            kinds.update(found)
        return kinds if set(kinds) == set(names) else None
    found = {name: triplet_lighting_change(name) for name in names}
    if not found or any(kind is None for kind in found.values()):
        return None
    return {name: str(kind) for name, kind in found.items()}
