"""The NTIRE 2021 track-2 pairs layout used for validation and test.

``DIR/input/PairNNN.png`` + ``DIR/input/PairNNN.npy`` and ``DIR/guide/PairNNN.png`` +
``DIR/guide/PairNNN.npy``, optionally with ground truth ``PairNNN.png`` in ``DIR/target/``
(or any folder given as ``gt_dir``; VIDIT ships it as a separate zip). Files are matched
by their name inside those folders, never by editing the path. With
``require_depth=False`` a missing ``.npy`` is allowed (``None``: ``relight-predict``
estimates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relight.data.formats import DataFormatError, depth_shape, image_size

PAIR_EXPECTED = "input/<name>.png + input/<name>.npy and guide/<name>.png + guide/<name>.npy"


@dataclass(frozen=True)
class PairFiles:
    """The files of one pair; ``target`` is ``None`` without ground truth, a depth is
    ``None`` when it is not given (only with ``index_pairs(require_depth=False)``)."""

    name: str
    input: Path
    input_depth: Path | None
    guide: Path
    guide_depth: Path | None
    target: Path | None


def index_pairs(
    pairs_dir: str | Path,
    gt_dir: str | Path | None = None,
    check_sizes: bool = True,
    allow_pickle: bool = True,
    require_depth: bool = True,
) -> list[PairFiles]:
    """List the pairs of a pairs folder, checking every file exists (and sizes agree);
    ``require_depth=False`` lets depth files be missing (``None`` in the pair). A pair is
    named by any of its ``input/`` or ``guide/`` files (``.png``, and ``.npy`` unless
    ``require_depth=False``), as ``relight-data check`` names them: one file missing is a
    :class:`DataFormatError` naming it, never a pair left out."""
    root = Path(pairs_dir)
    input_dir, guide_dir = root / "input", root / "guide"
    for folder in (root, input_dir, guide_dir):
        if not folder.is_dir():
            raise DataFormatError(
                f"{folder}: folder not found; a pairs folder holds {PAIR_EXPECTED}"
            )
    target_dir = Path(gt_dir) if gt_dir is not None else root / "target"
    if gt_dir is not None and not target_dir.is_dir():
        raise DataFormatError(f"{target_dir}: ground-truth folder not found")
    has_target = target_dir.is_dir()
    # a pair is named by any of its files, so one whose input is lost is an error, not gone
    suffixes = (".png", ".npy") if require_depth else (".png",)
    names = sorted(
        {
            p.stem
            for folder in (input_dir, guide_dir)
            for s in suffixes
            for p in folder.glob(f"*{s}")
        }
    )
    if not names:
        raise DataFormatError(f"{input_dir}: no .png inputs; a pairs folder holds {PAIR_EXPECTED}")
    pairs = []
    for name in names:
        files = {
            "input": input_dir / f"{name}.png",
            "input_depth": input_dir / f"{name}.npy",
            "guide": guide_dir / f"{name}.png",
            "guide_depth": guide_dir / f"{name}.npy",
        }
        if has_target:
            files["target"] = target_dir / f"{name}.png"
        for role, path in list(files.items()):
            if not require_depth and role.endswith("_depth") and not path.exists():
                files[role] = None
            elif not path.is_file():
                raise DataFormatError(
                    f"{path}: {role.replace('_', ' ')} of pair '{name}' is missing",
                    path,
                    "missing",
                )
        pair = PairFiles(name=name, target=files.pop("target", None), **files)
        if check_sizes:
            _check_pair_sizes(pair, allow_pickle)
        pairs.append(pair)
    return pairs


def _check_pair_sizes(pair: PairFiles, allow_pickle: bool) -> None:
    sizes = {}
    for image, depth in ((pair.input, pair.input_depth), (pair.guide, pair.guide_depth)):
        sizes[image] = image_size(image)
        if depth is not None:
            sizes[depth] = depth_shape(depth, allow_pickle)
    if pair.target is not None:
        sizes[pair.target] = image_size(pair.target)
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{p.parent.name}/{p.name}: {s}" for p, s in sizes.items())
        raise DataFormatError(f"pair '{pair.name}': files differ in size (H, W): {listing}")
