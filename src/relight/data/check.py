"""Checking a data folder before training: decode every file, list every problem at once.

A track-2 train folder (``ImageXXX_TTTT_D.png`` + ``ImageXXX.npy``) or an NTIRE pairs
folder (``input/``, ``guide/``, optional ``target/`` or a separate ground-truth folder) is
read completely: every image is decoded (PNG checksums included) and every depth map
loaded, in worker processes, and the folder's layout is compared with what training
needs. Nothing stops at the first fault: the result lists all of them (see :data:`KINDS`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from relight.data.depth_conventions import VIDIT_DEPTH_MAX
from relight.data.formats import DataFormatError, open_image, read_depth
from relight.data.pairs import PAIR_EXPECTED
from relight.data.vidit import EXPECTED, Lighting, list_train_folder, unknown_lighting_message
from relight.files import byte_size

#: Every kind of problem: its severity and what it means.
KINDS: dict[str, tuple[str, str]] = {
    "empty": ("error", "a file of 0 bytes, or a depth array without values"),
    "unreadable": ("error", "not an image, or not a .npy file"),
    "truncated": ("error", "cut short or corrupt (checksum, decoder or .npy error)"),
    "mode": ("error", "an image that is not 8-bit RGB or RGBA colour (greyscale, palette, ...)"),
    "bad_depth": ("error", "depth with NaN/inf values, not 2-D, without normalized_depth, ..."),
    "size_mismatch": ("error", "an image and its depth, or the files of a pair, differ in size"),
    "missing_depth": ("error", "a scene or a pair image without its depth file"),
    "missing_file": ("error", "a pair without its input, guide or ground-truth image"),
    "unknown_lighting": (
        "error",
        "a train image named with a lighting that is not one of VIDIT's 40 (a typo?)",
    ),
    "missing_lightings": ("warning", "a scene lacks lightings that the other scenes have"),
    "mixed_sizes": (
        "warning",
        "a scene or pair of another size than most of its folder: an error at the native "
        "size (data.image_size null), where a batch stacks items of one size",
    ),
    "duplicate": ("warning", "two files for one item, a copy of a file, or identical bytes"),
    "stray": ("warning", "not part of the layout: training ignores it"),
    "format": ("warning", "not PNG data although the name ends in .png"),
    "depth_range": (
        "warning",
        "depth values outside about [0, 1.5], or none above 0: not VIDIT's normalized_depth "
        "(metres, 0..255, disparity?), which training uses as stored",
    ),
}
#: Kinds that stop training at ``setup()`` whatever ``data.on_bad_item`` says.
LAYOUT_KINDS = frozenset({"size_mismatch", "missing_depth", "missing_file", "unknown_lighting"})
#: ``DataFormatError.reason`` -> problem kind.
_REASON_KINDS = {"missing": "missing_file", "invalid": "unreadable"}
COLOUR_MODES = frozenset({"RGB", "RGBA"})
_COPY_SUFFIX = re.compile(r"(?: \(\d+\)| - copy| copy(?: \d+)?|[_-]copy)$", re.IGNORECASE)
_PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp")


@dataclass(frozen=True, order=True)
class Problem:
    """One fault: the file (or missing file) it concerns, its kind and a message."""

    path: str
    kind: str
    message: str

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def as_dict(self) -> dict[str, str]:
        return {**asdict(self), "severity": self.severity}


@dataclass(frozen=True)
class DataFolder:
    """A folder to check: a track-2 ``train`` folder or a ``pairs`` folder (with an
    optional separate ground-truth folder)."""

    root: Path
    layout: str
    gt_dir: Path | None = None


@dataclass
class FileResult:
    """What a worker found in one file: its (H, W), a digest of its bytes, its problems."""

    path: str
    role: str
    shape: tuple[int, int] | None = None
    digest: str | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class CheckReport:
    """Every problem of the checked folders, and how long decoding took."""

    folders: list[DataFolder]
    problems: list[Problem]
    files: int
    bytes: int
    seconds: float
    workers: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, severity: str) -> int:
        return sum(p.severity == severity for p in self.problems)

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for problem in self.problems:
            by_kind[problem.kind] = by_kind.get(problem.kind, 0) + 1
        return {
            "ok": self.ok,
            "folders": [
                {"root": str(f.root), "layout": f.layout, "gt_dir": f.gt_dir and str(f.gt_dir)}
                for f in self.folders
            ],
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "files_per_s": round(self.files_per_second, 2),
            "files_per_s_per_worker": round(self.files_per_second / max(self.workers, 1), 2),
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "by_kind": by_kind,
            "problems": [p.as_dict() for p in self.problems],
        }

    def summary(self) -> str:
        """One line: what was checked, how fast, and how many problems."""
        rate = self.files_per_second
        speed = f"{rate:.1f} files/s, {rate / max(self.workers, 1):.1f} per worker"
        found = (
            "no problems"
            if self.ok
            else f"{len(self.problems)} problems ({self.count('error')} errors, "
            f"{self.count('warning')} warnings)"
        )
        processes = f"{self.workers} worker processes" if self.workers else "in this process"
        return (
            f"{self.files} files ({byte_size(self.bytes)}) in {len(self.folders)} folder(s) "
            f"checked in {self.seconds:.1f} s, {processes} ({speed}): {found}"
        )

    def listing(self, limit: int | None = None) -> str:
        """The problems, one per line (the first ``limit`` of them)."""
        shown = self.problems if limit is None else self.problems[:limit]
        lines = [f"{p.severity:<7} {p.kind:<17} {p.message}" for p in shown]
        if len(shown) < len(self.problems):
            lines.append(f"... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def find_folders(
    path: str | os.PathLike[str], gt_dir: str | os.PathLike[str] | None = None
) -> list[DataFolder]:
    """The data folders at ``path``: a train folder, a pairs folder, or a folder holding
    them (e.g. VIDIT's ``train/``, ``validation/`` and ``validation_gt/``, or the
    mini-VIDIT). Raises :class:`DataFormatError` when there is none."""
    root = Path(path)
    if not root.is_dir():
        raise DataFormatError(f"{root}: folder not found", root, "missing")
    if (layout := _layout(root)) is not None:
        return [DataFolder(root, layout, Path(gt_dir) if gt_dir and layout == "pairs" else None)]
    if gt_dir is not None:
        raise DataFormatError(
            f"{root}: holds data folders, and a ground-truth folder ({gt_dir}) belongs to one "
            "pairs folder: give that pairs folder with it (a pairs folder's <name>_gt beside "
            "it is found without it)",
            root,
        )
    folders = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        layout = _layout(sub)
        if layout == "train":
            folders.append(DataFolder(sub, layout))
        elif layout == "pairs":
            sibling = sub.with_name(f"{sub.name}_gt")  # VIDIT: validation/ + validation_gt/
            gt = sibling if not (sub / "target").is_dir() and sibling.is_dir() else None
            folders.append(DataFolder(sub, layout, gt))
    if not folders:
        raise DataFormatError(
            f"{root}: neither a track-2 train folder ({EXPECTED}) nor a pairs folder "
            f"({PAIR_EXPECTED}), nor a folder holding them",
            root,
        )
    return folders


def _layout(folder: Path) -> str | None:
    if (folder / "input").is_dir() or (folder / "guide").is_dir():
        return "pairs"
    listing = list_train_folder(folder)
    return "train" if listing.images or listing.depths or listing.unknown_lightings else None


def check_folders(
    folders: Sequence[DataFolder],
    workers: int | None = None,
    allow_pickle: bool = True,
    progress: bool = True,
) -> CheckReport:
    """Decode every file of ``folders`` in ``workers`` processes (``None``: one per CPU;
    0: in this process) and list every problem (sorted by folder, then file)."""
    workers = available_cpus() if workers is None else max(0, int(workers))
    plans = [_plan(folder) for folder in folders]
    tasks = [(str(path), role, allow_pickle) for plan in plans for path, role in plan.files]
    start = time.perf_counter()
    results = {r.path: r for r in _run(tasks, workers, progress)}
    seconds = time.perf_counter() - start
    problems: list[Problem] = []
    for plan in plans:
        found = [*plan.problems, *plan.analyse(results)]
        for path, _ in plan.files:
            found += results[str(path)].problems
        problems += sorted(set(found))
    size = sum(Path(path).stat().st_size for path, _, _ in tasks if Path(path).is_file())
    return CheckReport(list(folders), problems, len(tasks), size, seconds, workers)


def _run(tasks: list[tuple[str, str, bool]], workers: int, progress: bool) -> Iterable[FileResult]:
    bar = tqdm(total=len(tasks), unit="file", desc="checking", disable=not progress)
    with bar:
        if workers == 0 or len(tasks) < 2:
            for task in tasks:
                yield inspect_file(task)
                bar.update()
            return
        methods = multiprocessing.get_all_start_methods()
        # fork: workers start at once, without importing relight again (as DataLoader workers)
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        chunksize = max(1, min(16, len(tasks) // (workers * 8)))
        with context.Pool(workers) as pool:
            for result in pool.imap_unordered(inspect_file, tasks, chunksize=chunksize):
                yield result
                bar.update()


def inspect_file(task: tuple[str, str, bool]) -> FileResult:
    """Read one file completely (``role``: ``image`` or ``depth``); runs in a worker."""
    name, role, allow_pickle = task
    path = Path(name)
    result = FileResult(name, role)
    try:
        data = path.read_bytes()
        result.digest = hashlib.blake2b(data, digest_size=16).hexdigest() if data else None
        if role == "image":
            with open_image(path, verify=True) as image:
                result.shape = (image.height, image.width)
                result.problems += _image_problems(path, image)
        else:
            depth = read_depth(path, allow_pickle)
            result.shape = (int(depth.shape[0]), int(depth.shape[1]))
            result.problems += _depth_problems(path, depth)
    except DataFormatError as error:
        kind = _REASON_KINDS.get(error.reason, error.reason)
        result.problems.append(Problem(name, kind, str(error)))
    except OSError as error:
        result.problems.append(Problem(name, "unreadable", f"{path}: cannot be read ({error})"))
    return result


def _depth_problems(path: Path, depth: torch.Tensor) -> list[Problem]:
    """A ``depth_range`` warning when ``depth`` cannot be VIDIT's ``normalized_depth``."""
    lo, hi = (float(v) for v in torch.aminmax(depth))
    if lo >= 0 and 0 < hi <= VIDIT_DEPTH_MAX:
        return []
    return [
        Problem(
            str(path),
            "depth_range",
            f"{path}: depth values in [{lo:g}, {hi:g}], not VIDIT's normalized_depth (above "
            f"0 to about 1; up to {VIDIT_DEPTH_MAX:g} passes), and training uses depth as "
            "stored: convert metres, an 8-bit 0..255 map or a disparity first",
        )
    ]


def _image_problems(path: Path, image: Image.Image) -> list[Problem]:
    problems = []
    if path.suffix.lower() == ".png" and image.format != "PNG":
        problems.append(
            Problem(str(path), "format", f"{path}: {image.format} data in a .png file (lossy?)")
        )
    if image.mode not in COLOUR_MODES:
        problems.append(
            Problem(
                str(path),
                "mode",
                f"{path}: image mode '{image.mode}'; relight expects 8-bit RGB or RGBA colour "
                "images (VIDIT: RGBA)",
            )
        )
    return problems


@dataclass
class _Plan:
    """A folder's files to decode, what its listing already shows, and the checks that
    need the decoded results."""

    folder: DataFolder
    files: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    scenes: dict[int, dict[Lighting, Path]] = field(default_factory=dict)
    depths: dict[int, Path] = field(default_factory=dict)
    pairs: dict[str, dict[str, Path]] = field(default_factory=dict)

    def analyse(self, results: dict[str, FileResult]) -> list[Problem]:
        if self.folder.layout == "train":
            return _scene_sizes(self, results) + _same_bytes(self, results)
        return _pair_sizes(self, results)


def _odd_sizes(items: dict[str, list[Path]], results: dict[str, FileResult]) -> list[Problem]:
    """Items (a scene's or a pair's files, by name) whose files agree on a size that is not
    the folder's most common one; an item of mixed sizes is a ``size_mismatch`` already."""
    sizes = {}
    for name, paths in items.items():
        shapes = {results[str(p)].shape for p in paths} - {None}
        if len(shapes) == 1:
            sizes[name] = (paths[0], shapes.pop())
    counts = Counter(size for _, size in sizes.values())
    if len(counts) < 2:
        return []
    common, count = counts.most_common(1)[0]
    return [
        Problem(
            str(path),
            "mixed_sizes",
            f"{path}: {name} is {size} but {count} others of this folder are {common} (H, W): "
            "training at the native size (data.image_size null) stops on it",
        )
        for name, (path, size) in sizes.items()
        if size != common
    ]


def _plan(folder: DataFolder) -> _Plan:
    return _plan_train(folder) if folder.layout == "train" else _plan_pairs(folder)


def _plan_train(folder: DataFolder) -> _Plan:
    plan = _Plan(folder)
    root = folder.root
    listing = list_train_folder(root)
    for sid, lights in listing.images.items():
        for light, paths in lights.items():
            plan.files += [(p, "image") for p in paths]
            plan.scenes.setdefault(sid, {})[light] = paths[-1]  # what index_vidit uses
            plan.problems += _same_item(paths, f"scene Image{sid:03d} under {light}")
    for sid, paths in listing.depths.items():
        plan.files += [(p, "depth") for p in paths]
        plan.depths[sid] = paths[-1]
        plan.problems += _same_item(paths, f"the depth of scene Image{sid:03d}")
    names = {p.name for p, _ in plan.files}
    plan.problems += [
        _stray(p, names, f"not a track-2 train file ({EXPECTED})") for p in listing.others
    ]
    plan.problems += [
        Problem(str(p), "unknown_lighting", unknown_lighting_message(p))
        for p in listing.unknown_lightings
    ]
    for sid in sorted(set(plan.scenes) - set(plan.depths)):
        depth = root / f"Image{sid:03d}.npy"
        plan.problems.append(
            Problem(
                str(depth),
                "missing_depth",
                f"{depth}: missing; the {len(plan.scenes[sid])} images of scene "
                f"Image{sid:03d} need it",
            )
        )
    for sid in sorted(set(plan.depths) - set(plan.scenes)):
        depth = plan.depths[sid]
        plan.problems.append(
            Problem(str(depth), "stray", f"{depth}: a depth without any image of its scene")
        )
    every = sorted({light for lights in plan.scenes.values() for light in lights})
    for sid, lights in sorted(plan.scenes.items()):
        missing = [light for light in every if light not in lights]
        if missing:
            names = ", ".join(f"Image{sid:03d}_{light}.png" for light in missing[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            where = root / f"Image{sid:03d}_*.png"
            plan.problems.append(
                Problem(
                    str(where),
                    "missing_lightings",
                    f"{where}: scene Image{sid:03d} has {len(lights)} of the {len(every)} "
                    f"lightings of this folder; missing {names}{more}",
                )
            )
    return plan


def _same_item(paths: list[Path], what: str) -> list[Problem]:
    return [
        Problem(
            str(p),
            "duplicate",
            f"{p}: another file for {what}, besides {paths[-1].name} (training uses that one)",
        )
        for p in paths[:-1]
    ]


def _stray(path: Path, layout_names: set[str], expected: str) -> Problem:
    """A file or folder outside the layout: a copy, a partial download, or anything else."""
    if path.is_dir():
        return Problem(str(path), "stray", f"{path}: a folder here is not part of the layout")
    name = path.name
    for suffix in _PARTIAL_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return Problem(
                str(path), "stray", f"{path}: a partial download of {name[: -len(suffix)]}?"
            )
    stem, ext = os.path.splitext(name)
    original = _COPY_SUFFIX.sub("", stem) + ext.lower()  # "X (1).png", "X copy.png", "X.PNG"
    if original != name and original in layout_names:
        return Problem(
            str(path), "duplicate", f"{path}: a copy of {original}? (training ignores it)"
        )
    return Problem(str(path), "stray", f"{path}: {expected}; training ignores it")


def _scene_sizes(plan: _Plan, results: dict[str, FileResult]) -> list[Problem]:
    scene_files = {}
    for sid, lights in sorted(plan.scenes.items()):
        depth = [plan.depths[sid]] if sid in plan.depths else []
        scene_files[f"scene Image{sid:03d}"] = [*lights.values(), *depth]
    problems = _odd_sizes(scene_files, results)
    for sid, lights in sorted(plan.scenes.items()):
        depth = plan.depths.get(sid)
        expected = results[str(depth)].shape if depth is not None else None
        if expected is None:
            continue
        shapes = {p: results[str(p)].shape for p in lights.values() if results[str(p)].shape}
        wrong = {p: s for p, s in shapes.items() if s != expected}
        if wrong and len(wrong) == len(shapes) > 1 and len(set(wrong.values())) == 1:
            size = next(iter(wrong.values()))
            problems.append(
                Problem(
                    str(depth),
                    "size_mismatch",
                    f"{depth}: depth is {expected} but all {len(wrong)} images of scene "
                    f"Image{sid:03d} are {size} (H, W)",
                )
            )
            continue
        problems += [
            Problem(
                str(p),
                "size_mismatch",
                f"{p}: image is {s} but its depth {depth.name} is {expected} (H, W)",
            )
            for p, s in wrong.items()
        ]
    return problems


def _same_bytes(plan: _Plan, results: dict[str, FileResult]) -> list[Problem]:
    """Files of different items with identical bytes (a copy under another name)."""
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path, role in plan.files:
        digest = results[str(path)].digest
        if digest is not None:
            groups[role, digest].append(path)
    problems = []
    for paths in groups.values():
        problems += [
            Problem(str(p), "duplicate", f"{p}: the same bytes as {paths[0].name}")
            for p in paths[1:]
        ]
    return problems


_PAIR_ROLES = {  # role -> (folder, extension, problem kind when missing)
    "input": ("input", ".png", "missing_file"),
    "input_depth": ("input", ".npy", "missing_depth"),
    "guide": ("guide", ".png", "missing_file"),
    "guide_depth": ("guide", ".npy", "missing_depth"),
}


def _plan_pairs(folder: DataFolder) -> _Plan:
    plan = _Plan(folder)
    root = folder.root
    dirs = {"input": root / "input", "guide": root / "guide"}
    target_dir = folder.gt_dir or root / "target"
    has_target = target_dir.is_dir()
    for name, path in [*dirs.items(), ("ground truth", target_dir)]:
        if not path.is_dir() and (name != "ground truth" or folder.gt_dir is not None):
            plan.problems.append(
                Problem(
                    str(path),
                    "missing_file",
                    f"{path}: folder not found; a pairs folder holds {PAIR_EXPECTED}",
                )
            )
    entries = {
        key: sorted(d.iterdir()) if d.is_dir() else []
        for key, d in [*dirs.items(), ("target", target_dir)]
    }
    names = sorted(
        {
            p.stem
            for key in dirs
            for p in entries[key]
            if p.is_file() and p.suffix in {".png", ".npy"}
        }
    )
    roles = dict(_PAIR_ROLES)
    if has_target:
        roles["target"] = ("target", ".png", "missing_file")
    expected: set[Path] = set()
    for name in names:
        files = {}
        for role, (key, ext, missing_kind) in roles.items():
            path = (target_dir if key == "target" else dirs[key]) / f"{name}{ext}"
            expected.add(path)
            if path.is_file():
                files[role] = path
                plan.files.append((path, "image" if ext == ".png" else "depth"))
            else:
                plan.problems.append(
                    Problem(
                        str(path),
                        missing_kind,
                        f"{path}: {role.replace('_', ' ')} of pair '{name}' is missing",
                    )
                )
        plan.pairs[name] = files
    layout_names = {p.name for p in expected}
    for paths in entries.values():
        plan.problems += [
            _stray(p, layout_names, f"not a file of any pair ({PAIR_EXPECTED})")
            for p in paths
            if p not in expected
        ]
    return plan


def _pair_sizes(plan: _Plan, results: dict[str, FileResult]) -> list[Problem]:
    pair_files = {f"pair '{name}'": list(files.values()) for name, files in plan.pairs.items()}
    problems = _odd_sizes(pair_files, results)
    for name, files in sorted(plan.pairs.items()):
        shapes = {p: results[str(p)].shape for p in files.values() if results[str(p)].shape}
        if len(set(shapes.values())) > 1:
            reference = next(iter(shapes.values()))
            wrong = next(p for p, s in shapes.items() if s != reference)
            listing = ", ".join(f"{p.parent.name}/{p.name}: {s}" for p, s in shapes.items())
            problems.append(
                Problem(
                    str(wrong),
                    "size_mismatch",
                    f"{wrong}: the files of pair '{name}' differ in size (H, W): {listing}",
                )
            )
    return problems
