"""Resuming: which checkpoint a run continues from, and the markers of finished runs.

A run can resume from its ``last.ckpt`` (written after each validation) and its step
checkpoints (``step_NNNNNNN.ckpt``). A checkpoint cut short by a crash is detected from
its zip index, reported, and the previous one is used.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig

from relight.models.weight_files import torch_file_problem

log = logging.getLogger(__name__)

#: What a run can resume from: the copy of its newest state written after validation and
#: the step checkpoints written every ``callbacks.step_checkpoint.every_n_train_steps``.
RESUMABLE = ("last.ckpt", "step_*.ckpt")


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path``: ``null``, a file, or ``last``: the newest complete checkpoint of the
    same run name and variant, from single runs or sweep jobs. ``auto_resume`` resumes the
    newest run of that name and variant that neither finished nor was resumed already (a
    crashed or killed run), and starts fresh when there is none. A checkpoint truncated by
    a crash is skipped (with a warning) for the previous one."""
    root = Path(cfg.paths.log_dir) / cfg.task_name
    folders = [
        f"{cfg.run_name}/{cfg.variant}_*/checkpoints",
        f"multiruns/*/*_{cfg.run_name}_{cfg.variant}/checkpoints",
    ]
    patterns = [f"{folder}/{name}" for folder in folders for name in RESUMABLE]
    if cfg.ckpt_path == "last" or (cfg.ckpt_path is None and cfg.auto_resume):
        found = newest_complete_checkpoint(
            root, patterns, exclude=Path(cfg.paths.output_dir), skip_closed=cfg.ckpt_path is None
        )
        if found is None and cfg.ckpt_path == "last":
            raise FileNotFoundError(
                f"ckpt_path=last: no complete checkpoint of run '{cfg.run_name}' variant "
                f"'{cfg.variant}' under {root} ({' or '.join(patterns)})"
            )
        if found is not None:
            log.info("resuming from %s", found)
        return str(found) if found else None
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path: checkpoint not found: {cfg.ckpt_path}")
    return cfg.ckpt_path


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint file cannot be used (``None`` when it looks complete), read from
    its zip index alone: a file cut short by a crash is caught without loading it."""
    return torch_file_problem(path)


def newest_complete_checkpoint(
    root: Path, patterns: list[str], exclude: Path | None = None, skip_closed: bool = False
) -> Path | None:
    """The most recent complete checkpoint matching any glob pattern under ``root``.

    Files inside ``exclude`` (the current run's folder) are ignored, and with
    ``skip_closed`` so are runs that finished or were already resumed (see
    :func:`close_run`). A truncated file is reported with a warning and the next older
    checkpoint is taken instead.
    """
    found = {p.resolve() for pattern in patterns for p in root.glob(pattern)}  # latest/ links
    candidates = [
        p
        for p in found
        if (exclude is None or exclude.resolve() not in p.parents)
        and not (skip_closed and run_closed(p.parents[1]))
    ]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        warnings.warn(
            f"skipping checkpoint {path}: {problem}; falling back to the previous one",
            stacklevel=2,
        )
    return None


#: Marker files of a run folder that must not be resumed again.
FINISHED, RESUMED = "FINISHED", "RESUMED"


#: What a :data:`RESUMED` marker says, before the folder of the run that resumed it.
RESUMED_BY = "resumed by "


def close_run(run_dir: Path, marker: str, text: str = "") -> None:
    """Mark a run folder as finished, or as resumed by another run (``text`` says which)."""
    (Path(run_dir) / marker).write_text(text)


def run_closed(run_dir: Path) -> bool:
    """Whether a run folder finished, or was resumed by a later run that has written a
    checkpoint of its own. Until it has, the run stays resumable: the other ranks of a
    DDP run resolve the same checkpoint as the first, and a resumed run killed again before
    its first checkpoint is resumed from the same place again."""
    if (run_dir / FINISHED).exists():
        return True
    marker = run_dir / RESUMED
    if not marker.exists():
        return False
    text = marker.read_text().strip()
    if not text.startswith(RESUMED_BY):
        return True  # a marker of another form: closed, as markers always were
    resumer = Path(text.removeprefix(RESUMED_BY)) / "checkpoints"
    return newest_complete_checkpoint(resumer, list(RESUMABLE)) is not None
