"""``relight-report MULTIRUN_DIR``: gather the jobs of a sweep into the ablation table.

Reads every job folder under the directory (a job has ``.hydra/config.yaml`` and
``eval/metrics.json``, as ``relight-train`` writes them), and writes ``ablation.md``,
``ablation.csv`` and ``ablation.png`` (a bar chart per metric): one row per variant with
PSNR, SSIM, LPIPS and MPS of its best checkpoint on the validation set, plus the
identity baseline. A row is named by its variant, by job number and variant when a variant
comes twice, and by its folder when that collides too (a folder holding several sweeps).
A job folder without ``eval/metrics.json`` (a failed or unfinished job, or one run with
``evaluate=false``) is listed in ``ablation.md`` as such. Works offline from the run
folders alone.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from relight.checkpoints.resume import FINISHED
from relight.evaluation import IDENTITY, format_table
from relight.files import ensure_writable_dir, write_csv_atomic, write_text_atomic
from relight.metrics import METRIC_NAMES
from relight.panels import save_png


@dataclass
class JobResult:
    """One finished job of a sweep."""

    number: int
    folder: Path
    run_name: str
    variant: str
    metrics: dict[str, float]
    identity: dict[str, float]
    convention: str


@dataclass
class UnevaluatedJob:
    """A job folder of a sweep without ``eval/metrics.json``."""

    number: int
    folder: Path
    run_name: str
    variant: str
    status: str


#: Why a job folder has no ``eval/metrics.json``: it finished without an evaluation, or not.
NOT_EVALUATED = "finished, not evaluated (evaluate=false?)"
FAILED = "failed or unfinished: no eval/metrics.json"


def _job_number(folder: Path) -> int:
    match = re.match(r"^(\d+)_", folder.name)
    return int(match[1]) if match else 10**9


def _job_order(job: JobResult | UnevaluatedJob) -> tuple[str, int, str]:
    """By sweep (a folder holding several), then by job number."""
    return str(job.folder.parent), job.number, str(job.folder)


def _job_folders(root: Path) -> list[Path]:
    """Every job folder under ``root`` (one with ``.hydra/config.yaml``)."""
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {root}")
    return sorted(config.parents[1] for config in root.glob("**/.hydra/config.yaml"))


def _name_and_variant(folder: Path) -> tuple[str, str]:
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")
    return str(cfg.get("run_name")), str(cfg.get("variant", "full"))


def collect(sweep_dir: str | os.PathLike[str]) -> list[JobResult]:
    """Every job under ``sweep_dir`` with a config and evaluation metrics, by job number."""
    root = Path(sweep_dir)
    jobs = []
    for folder in _job_folders(root):
        metrics_file = folder / "eval" / "metrics.json"
        if not metrics_file.is_file():
            continue
        run_name, variant = _name_and_variant(folder)
        summary = json.loads(metrics_file.read_text())
        results = summary["results"]
        jobs.append(
            JobResult(
                number=_job_number(folder),
                folder=folder,
                run_name=run_name,
                variant=variant,
                metrics=results.get("S3Net", {}),
                identity=results.get(IDENTITY, {}),
                convention=summary.get("convention", ""),
            )
        )
    if not jobs:
        others = len(unevaluated(root))
        raise FileNotFoundError(
            f"{root}: no finished jobs (folders with .hydra/config.yaml and eval/metrics.json)"
            + (f"; {others} job folder(s) without eval/metrics.json" if others else "")
        )
    return sorted(jobs, key=_job_order)


def unevaluated(sweep_dir: str | os.PathLike[str]) -> list[UnevaluatedJob]:
    """Every job under ``sweep_dir`` without ``eval/metrics.json``, by job number: failed or
    unfinished, or finished without an evaluation (``FINISHED`` in its folder)."""
    jobs = [
        UnevaluatedJob(
            _job_number(folder),
            folder,
            *_name_and_variant(folder),
            status=NOT_EVALUATED if (folder / FINISHED).exists() else FAILED,
        )
        for folder in _job_folders(Path(sweep_dir))
        if not (folder / "eval" / "metrics.json").is_file()
    ]
    return sorted(jobs, key=_job_order)


def row_names(jobs: list[JobResult]) -> list[str]:
    """Each job's row name: its variant; job number and variant when a variant comes
    twice; its folder (below the jobs' common folder) when those collide too (the same job
    number in several sweeps)."""
    for name in (lambda j: j.variant, lambda j: f"{j.number}_{j.variant}"):
        names = [name(job) for job in jobs]
        if len(set(names)) == len(names):
            return names
    common = Path(os.path.commonpath([job.folder.parent for job in jobs]))
    return [job.folder.relative_to(common).as_posix() for job in jobs]


def table_rows(jobs: list[JobResult]) -> dict[str, dict[str, float]]:
    """Row name (:func:`row_names`) -> metrics, then the identity baseline (from the first
    job that has it)."""
    rows = dict(zip(row_names(jobs), (job.metrics for job in jobs), strict=True))
    identity = next((job.identity for job in jobs if job.identity), None)
    if identity:
        rows[IDENTITY] = identity
    return rows


def bar_chart(
    rows: dict[str, dict[str, float]], width: int = 360, height: int = 220
) -> Image.Image:
    """One panel per metric with values, one bar per row, labelled; PIL only."""
    metrics = [m for m in METRIC_NAMES if any(_finite(v.get(m)) for v in rows.values())]
    names = list(rows)
    palette = [
        (66, 133, 244),
        (219, 68, 55),
        (244, 180, 0),
        (15, 157, 88),
        (171, 71, 188),
        (0, 172, 193),
        (255, 112, 67),
        (158, 157, 36),
        (92, 107, 192),
        (120, 120, 120),
    ]
    legend_h = 16 * len(names) + 10
    image = Image.new("RGB", (width * len(metrics), height + legend_h), "white")
    draw = ImageDraw.Draw(image)
    for p, metric in enumerate(metrics):
        values = [rows[n].get(metric) for n in names]
        finite = [v for v in values if _finite(v)]
        top = max(finite) * 1.1 if finite else 1.0
        x0, base, usable = p * width + 40, height - 30, height - 60
        draw.text(
            (x0, 6),
            metric.upper() + (" (lower is better)" if metric == "lpips" else ""),
            fill="black",
        )
        draw.line([(x0, base), (x0 + width - 60, base)], fill="black")
        bar_w = (width - 70) // max(len(names), 1)
        for i, value in enumerate(values):
            left = x0 + 5 + i * bar_w
            if not _finite(value):
                draw.text((left, base - 14), "n/a", fill="grey")
                continue
            h = int(usable * value / top) if top else 0
            draw.rectangle([left, base - h, left + bar_w - 6, base], fill=palette[i % len(palette)])
            label = f"{value:.2f}" if metric == "psnr" else f"{value:.3f}"
            draw.text((left, base - h - 12), label, fill="black")
    for i, name in enumerate(names):
        y = height + 4 + 16 * i
        draw.rectangle([10, y, 22, y + 10], fill=palette[i % len(palette)])
        draw.text((28, y - 1), name, fill="black")
    return image


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def write_report(
    sweep_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> dict:
    """Write ``ablation.md``, ``ablation.csv`` and ``ablation.png``; returns the rows."""
    jobs = collect(sweep_dir)
    others = unevaluated(sweep_dir)
    out = ensure_writable_dir(output or sweep_dir)
    rows = table_rows(jobs)
    convention = jobs[0].convention
    names = ", ".join(dict.fromkeys(j.run_name for j in jobs))
    count = f"{len(jobs) + len(others)} jobs"
    if others:
        count += f": {len(jobs)} evaluated, {len(others)} without eval/metrics.json"
    lines = [f"# Ablation: {names} ({count})", "", format_table(rows, convention), ""]
    if others:
        lines += [
            f"Not in the table: {len(others)} job(s) without eval/metrics.json (see status below).",
            "",
        ]
    root = Path(sweep_dir)
    listed = [(j, "evaluated") for j in jobs] + [(j, j.status) for j in others]
    lines += ["| job | variant | folder | status |", "|---|---|---|---|"]
    lines += [
        f"| {j.number} | {j.variant} | {j.folder.relative_to(root)} | {status} |"
        for j, status in sorted(listed, key=lambda pair: _job_order(pair[0]))
    ]
    write_text_atomic(out / "ablation.md", "\n".join(lines) + "\n")
    write_csv_atomic(
        out / "ablation.csv",
        ["variant", *METRIC_NAMES],
        ([name, *[values.get(m, "n/a") for m in METRIC_NAMES]] for name, values in rows.items()),
    )
    save_png(bar_chart(rows), out / "ablation.png")
    return rows
