"""Resuming: which checkpoint a run continues from, and the markers of finished runs.

A run can resume from its ``last.ckpt`` (written after each validation) and its step
checkpoints (``step_NNNNNNN.ckpt``). A checkpoint cut short by a crash is detected from
its zip index, reported, and the previous one is used.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from relight.files import atomic_write
from relight.models.weight_files import torch_file_problem

log = logging.getLogger(__name__)

#: What a run can resume from: the copy of its newest state written after validation and
#: the step checkpoints written every ``callbacks.step_checkpoint.every_n_train_steps``.
RESUMABLE = ("last.ckpt", "step_*.ckpt")


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path``: ``null``, a file, or ``last``: the newest complete checkpoint of the
    same run name and variant, from single runs or sweep jobs. ``auto_resume`` resumes the
    newest run of that name and variant that neither finished nor was resumed already (a
    crashed or killed run) and trained the same thing (:func:`run_key`: a sweep's jobs
    share name and variant), and starts fresh when there is none. A checkpoint truncated by
    a crash is skipped (with a warning) for the previous one."""
    root = Path(cfg.paths.log_dir) / cfg.task_name
    folders = [
        f"{cfg.run_name}/{cfg.variant}_*/checkpoints",
        f"multiruns/*/*_{cfg.run_name}_{cfg.variant}/checkpoints",
    ]
    patterns = [f"{folder}/{name}" for folder in folders for name in RESUMABLE]
    if cfg.ckpt_path == "last" or (cfg.ckpt_path is None and cfg.auto_resume):
        automatic = cfg.ckpt_path is None
        found = newest_complete_checkpoint(
            root,
            patterns,
            exclude=Path(cfg.paths.output_dir),
            skip_closed=automatic,
            key=run_key(cfg) if automatic else None,
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
    root: Path,
    patterns: list[str],
    exclude: Path | None = None,
    skip_closed: bool = False,
    key: dict[str, Any] | None = None,
) -> Path | None:
    """The most recent complete checkpoint matching any glob pattern under ``root``.

    Files inside ``exclude`` (the current run's folder) are ignored, and with
    ``skip_closed`` so are runs that finished or were already resumed (see
    :func:`close_run`), and with ``key`` runs whose :func:`run_key` differs. A truncated
    file is reported with a warning and the next older checkpoint is taken instead.
    """
    found = {p.resolve() for pattern in patterns for p in root.glob(pattern)}  # latest/ links
    runs: dict[Path, bool] = {}  # each run folder judged once, not once per checkpoint

    def resumable(run_dir: Path) -> bool:
        if run_dir not in runs:
            runs[run_dir] = not (skip_closed and run_closed(run_dir)) and (
                key is None or same_run_key(run_dir, key)
            )
        return runs[run_dir]

    candidates = [
        p
        for p in found
        if (exclude is None or exclude.resolve() not in p.parents) and resumable(p.parents[1])
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
    checkpoint of its own or finished. Until it has, the run stays resumable: the other ranks of a
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
    resumer = Path(text.removeprefix(RESUMED_BY))
    if (resumer / FINISHED).exists():  # e.g. it resumed after the last epoch: nothing to do
        return True
    return newest_complete_checkpoint(resumer / "checkpoints", list(RESUMABLE)) is not None


#: The config sections that say what a run trains. ``auto_resume`` continues a run only when
#: they are the same: the jobs of a sweep (over ``model.optimizer.lr``, ``seed``, a loss
#: weight) share their run name and variant, and one must not continue another.
RUN_KEY_SECTIONS = ("model", "loss", "data", "seed")
#: Settings in those sections that change how a run trains, not what: left out of the key,
#: so that a run resumes with other loader settings or batch size (docs/training.md), a
#: higher data.max_bad_items (what TooManyBadItemsError suggests), compiled or not.
RUN_KEY_IGNORED = (
    *(
        f"data.{k}"
        for k in (
            "batch_size",
            "num_workers",
            "pin_memory",
            "persistent_workers",
            "cache_dir",
            "allow_pickle",
            "compact_transport",
            "on_bad_item",
            "max_bad_items",
            "verify",
            "render_workers",
        )
    ),
    *(
        f"model.{k}"
        for k in (
            "channels_last",
            "compile",
            "compile_mode",
            "compile_loss",
            "compile_eval",
            "panel_every_n_epochs",
            "panel_rows",
            "max_nonfinite_steps",
            "net.activation_checkpointing",
            "net.allow_random_init",
            "optimizer.foreach",
            "optimizer.fused",
            "optimizer.capturable",
        )
    ),
)
#: The file in a run folder that holds its :func:`run_key`.
RUN_KEY_FILE = "run_key.json"


def run_key(cfg: DictConfig) -> dict[str, Any]:
    """What the run trains: :data:`RUN_KEY_SECTIONS` of ``cfg``, resolved and flattened
    (``{"model.optimizer.lr": 0.0001, ...}``), :data:`RUN_KEY_IGNORED` left out."""
    sections = {}
    for section in RUN_KEY_SECTIONS:
        value = cfg.get(section)
        sections[section] = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
    key = {k: v for k, v in flatten(sections).items() if k not in RUN_KEY_IGNORED}
    return json.loads(json.dumps(key, default=str))  # as it reads back from the file


def write_run_key(cfg: DictConfig, run_dir: Path) -> None:
    """Record the run's :func:`run_key` in its folder, for later resumes to compare."""
    text = json.dumps(run_key(cfg), indent=1, sort_keys=True)
    atomic_write(Path(run_dir) / RUN_KEY_FILE, lambda tmp: tmp.write_text(text))


def same_run_key(run_dir: Path, key: dict[str, Any]) -> bool:
    """Whether the run in ``run_dir`` trained what ``key`` says (a run folder from before
    run keys were written counts as the same); a different one is logged with what differs."""
    path = Path(run_dir) / RUN_KEY_FILE
    if not path.is_file():
        return True
    other = json.loads(path.read_text())
    if other == key:
        return True
    differences = sorted(k for k in key.keys() | other.keys() if key.get(k) != other.get(k))
    shown = ", ".join(f"{k}: {other.get(k)!r} there, {key.get(k)!r} here" for k in differences[:3])
    more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
    log.info("not resuming %s: it trained something else (%s%s)", run_dir, shown, more)
    return False


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{name}" if prefix else str(name)))
    return flat
