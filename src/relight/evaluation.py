"""Evaluate a network on a dataset: per-image metrics vs the identity baseline, images, grid."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from relight.data.transport import decode_batch
from relight.files import ensure_writable_dir, write_csv_atomic, write_text_atomic
from relight.lighting_breakdown import format_breakdown, lighting_breakdown
from relight.metrics import METRIC_NAMES, RelightMetrics
from relight.models import S3Net
from relight.models.execution import prepare
from relight.models.s3net import batch_input
from relight.panels import panel_rows, save_png


def relight_batch(
    net: S3Net, batch: dict[str, Any], run: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """The network's output for a batch dict, clamped to [0, 1]; ``run`` applies an
    execution mode (:func:`relight.models.execution.prepare`), default plain ``net``."""
    return (run or net)(batch_input(batch, net.config.depth)).clamp(0, 1)


def score_rows(
    names: list[str],
    prediction: torch.Tensor,
    batch: dict[str, Any],
    metrics: RelightMetrics,
    identity: RelightMetrics | None = None,
) -> list[dict[str, Any]]:
    """Score a batch with ``metrics`` (and the input itself with ``identity``, the baseline
    output = input): one row per item, its name, the model's scores and ``identity_<metric>``
    scores. The metrics also accumulate the means (:func:`mean_results`)."""
    model = metrics.update(prediction, batch["target"])
    baseline = identity.update(batch["input"], batch["target"]) if identity is not None else {}
    # one device-to-host copy per metric, not one per image and metric
    columns = {k: v.tolist() for k, v in model.items()}
    columns.update({f"identity_{k}": v.tolist() for k, v in baseline.items()})
    return [
        {"name": name, **{k: values[i] for k, values in columns.items()}}
        for i, name in enumerate(names)
    ]


IDENTITY = "identity (output = input)"


def mean_results(
    metrics: RelightMetrics, identity: RelightMetrics | None = None
) -> dict[str, dict[str, float]]:
    """The per-image means of what :func:`score_rows` scored: ``{"S3Net": ..., IDENTITY:
    ...}`` (metrics not computed, such as LPIPS without weights, are left out)."""
    results = {"S3Net": {k: float(v) for k, v in metrics.compute().items()}}
    if identity is not None:
        results[IDENTITY] = {k: float(v) for k, v in identity.compute().items()}
    return results


def row_means(
    rows: list[dict[str, Any]], metrics: RelightMetrics, identity: bool = True
) -> dict[str, dict[str, float]]:
    """:func:`mean_results` of rows of :func:`score_rows` (e.g. a subset of a set's images),
    accumulated as the set's own means, by fresh accumulators of ``metrics``; ``identity``:
    the rows have the baseline's ``identity_<metric>`` scores."""
    model = metrics.fresh().cpu()
    baseline = metrics.fresh().cpu() if identity else None
    for accumulator, prefix in ((model, ""), (baseline, "identity_")):
        if accumulator is not None:
            accumulator.add(
                {
                    name: torch.tensor([r[prefix + name] for r in rows], dtype=torch.float64)
                    for name in metrics.names
                }
            )
    return mean_results(model, baseline)


def format_value(name: str, value: float | None) -> str:
    """PSNR with 2 decimals, the others with 4; ``n/a`` when not computed."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if name == "psnr" else f"{value:.4f}"


def format_table(results: dict[str, dict[str, float]], convention: str) -> str:
    """A markdown table, one row per method; ``n/a`` for metrics not computed."""
    lines = ["| method | PSNR | SSIM | LPIPS | MPS |", "|---|---|---|---|---|"]
    for method, values in results.items():
        cells = [format_value(name, values.get(name)) for name in METRIC_NAMES]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append(f"\n({convention})")
    return "\n".join(lines)


@torch.inference_mode()
def evaluate(
    net: S3Net,
    dataset: Dataset,
    output_dir: str | os.PathLike[str],
    metrics: RelightMetrics,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
    identity_baseline: bool = True,
    save_images: bool = True,
    grid_cases: int = 4,
    progress: bool = True,
    mode: str = "eager-fp32",
) -> dict[str, Any]:
    """Relight every item, score it, write ``metrics.json``, ``metrics.csv``, ``images/``
    and ``cases.png`` (the worst and best items) into ``output_dir``; returns the summary.
    ``mode`` is the execution mode (:mod:`relight.models.execution`, e.g. ``bf16-cl``).

    When the dataset tells each item's kind of lighting change
    (:mod:`relight.data.lighting_change`), the summary's ``by_lighting_change`` has the
    means of each kind, ``metrics.csv`` a ``lighting_change`` column and the table a second
    part; else ``by_lighting_change`` is ``None``.
    """
    output = ensure_writable_dir(output_dir)
    device = torch.device(device)
    run = prepare(net, mode, device)
    metrics = metrics.to(device)
    metrics.reset()
    identity = metrics.fresh() if identity_baseline else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    if len(dataset) == 0:
        raise ValueError("nothing to evaluate: the dataset is empty")
    rows: list[dict[str, Any]] = []
    for batch in tqdm(loader, desc="evaluating", disable=not progress):
        if "target" not in batch:
            raise ValueError("evaluation needs ground truth (a target/ folder or gt_dir)")
        batch = decode_batch(
            {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        )
        prediction = relight_batch(net, batch, run)
        rows += score_rows(batch["name"], prediction, batch, metrics, identity)
        if save_images:
            for i, name in enumerate(batch["name"]):
                save_png(prediction[i], output / "images" / f"{name}.png")
    rank_by = "mps" if "mps" in metrics.names else "ssim"
    ranked = sorted(rows, key=lambda r: r[rank_by])
    results = mean_results(metrics, identity)
    by_change = lighting_breakdown(
        dataset, rows, lambda group: row_means(group, metrics, identity is not None)
    )
    summary = {
        "images": len(rows),
        "convention": metrics.convention,
        "results": results,
        "by_lighting_change": by_change,
        "worst": [r["name"] for r in ranked[:grid_cases]],
        "best": [r["name"] for r in ranked[::-1][:grid_cases]],
        "ranked_by": rank_by,
        "mode": mode,
    }
    write_text_atomic(output / "metrics.json", json.dumps(summary, indent=2))
    columns = list(rows[0])
    write_csv_atomic(output / "metrics.csv", columns, ([r[c] for c in columns] for r in rows))
    if grid_cases:
        # only the shown items are loaded again: nothing else is kept in memory
        index = {r["name"]: i for i, r in enumerate(rows)}
        cases = summary["worst"] + [n for n in summary["best"] if n not in summary["worst"]]
        items = [dataset[index[n]] for n in cases]
        stacked = decode_batch(
            {
                k: torch.stack([item[k] for item in items]).to(device)
                for k, v in items[0].items()
                if torch.is_tensor(v)
            }
        )
        prediction = relight_batch(net, stacked, run)
        grid = panel_rows(stacked, prediction, max_rows=len(cases), depth=net.config.depth)
        save_png(grid, output / "cases.png")
    summary["table"] = format_table(results, metrics.convention)
    if by_change:
        breakdown = format_breakdown(by_change, METRIC_NAMES, format_value)
        summary["table"] += f"\n\nBy kind of lighting change:\n\n{breakdown}"
    return summary
