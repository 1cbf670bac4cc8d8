"""``relight-report MULTIRUN_DIR``: gather the jobs of a sweep into the ablation table.

Reads every job folder under the directory (a job has ``.hydra/config.yaml`` and
``eval/metrics.json``, as ``relight-train`` writes them), and writes ``ablation.md``,
``ablation.csv`` and ``ablation.png`` (a bar chart per metric): one row per variant with
PSNR, SSIM, LPIPS and MPS of its best checkpoint on the validation set, plus the
identity baseline. Works offline from the run folders alone.
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


def _job_number(folder: Path) -> int:
    match = re.match(r"^(\d+)_", folder.name)
    return int(match[1]) if match else 10**9


def collect(sweep_dir: str | os.PathLike[str]) -> list[JobResult]:
    """Every job under ``sweep_dir`` with a config and evaluation metrics, by job number."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep folder not found: {root}")
    jobs = []
    for metrics_file in sorted(root.glob("**/eval/metrics.json")):
        folder = metrics_file.parents[1]
        config_file = folder / ".hydra" / "config.yaml"
        if not config_file.is_file():
            continue
        cfg = OmegaConf.load(config_file)
        summary = json.loads(metrics_file.read_text())
        results = summary["results"]
        jobs.append(
            JobResult(
                number=_job_number(folder),
                folder=folder,
                run_name=str(cfg.get("run_name")),
                variant=str(cfg.get("variant", "full")),
                metrics=results.get("S3Net", {}),
                identity=results.get(IDENTITY, {}),
                convention=summary.get("convention", ""),
            )
        )
    if not jobs:
        raise FileNotFoundError(
            f"{root}: no finished jobs (folders with .hydra/config.yaml and eval/metrics.json)"
        )
    return sorted(jobs, key=lambda j: (j.number, str(j.folder)))


def table_rows(jobs: list[JobResult]) -> dict[str, dict[str, float]]:
    """Variant -> metrics, then the identity baseline (from the first job that has it)."""
    rows = {job.variant: job.metrics for job in jobs}
    if len(rows) != len(jobs):  # the same variant twice: keep them apart by job number
        rows = {f"{job.number}_{job.variant}": job.metrics for job in jobs}
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
    out = ensure_writable_dir(output or sweep_dir)
    rows = table_rows(jobs)
    convention = jobs[0].convention
    lines = [
        f"# Ablation: {jobs[0].run_name} ({len(jobs)} jobs)",
        "",
        format_table(rows, convention),
        "",
    ]
    lines += ["| job | variant | folder |", "|---|---|---|"]
    lines += [
        f"| {j.number} | {j.variant} | {j.folder.relative_to(Path(sweep_dir))} |" for j in jobs
    ]
    write_text_atomic(out / "ablation.md", "\n".join(lines) + "\n")
    write_csv_atomic(
        out / "ablation.csv",
        ["variant", *METRIC_NAMES],
        ([name, *[values.get(m, "n/a") for m in METRIC_NAMES]] for name, values in rows.items()),
    )
    save_png(bar_chart(rows), out / "ablation.png")
    return rows
