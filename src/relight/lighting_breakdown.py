"""Metrics broken down by the kind of lighting change (same direction / another / opposite).

The groups come from :mod:`relight.data.lighting_change`; each group's numbers are the
per-image means of its rows, accumulated as the overall means
(:func:`relight.evaluation.row_means`, the ``summarize`` of :func:`relight.evaluation.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from relight.data.lighting_change import (
    LIGHTING_CHANGE_LABELS,
    LIGHTING_CHANGES,
    dataset_lighting_changes,
)

Rows = list[dict[str, Any]]
Results = dict[str, dict[str, float]]


def breakdown_by_lighting_change(
    rows: Rows, kinds: dict[str, str], summarize: Callable[[Rows], Results]
) -> dict[str, dict[str, Any]]:
    """``{kind: {"images": n, "results": summarize(rows of that kind)}}`` in the order of
    :data:`LIGHTING_CHANGES`, kinds without rows left out; ``kinds`` maps row names."""
    unknown = sorted({r["name"] for r in rows} - set(kinds))
    if unknown:
        raise KeyError(f"no lighting change for rows {unknown[:5]}")
    groups: dict[str, Rows] = {}
    for row in rows:
        groups.setdefault(kinds[row["name"]], []).append(row)
    return {
        kind: {"images": len(groups[kind]), "results": summarize(groups[kind])}
        for kind in LIGHTING_CHANGES
        if kind in groups
    }


Formatter = Callable[[str, float | None], str]


def lighting_breakdown(
    dataset: Dataset, rows: Rows, summarize: Callable[[Rows], Results]
) -> dict[str, dict[str, Any]] | None:
    """The breakdown of evaluation ``rows`` of ``dataset`` when it knows every row's kind of
    lighting change (each row then gets a ``lighting_change`` column), else ``None``."""
    kinds = dataset_lighting_changes(dataset, [r["name"] for r in rows])
    if kinds is None:
        return None
    for row in rows:
        row["lighting_change"] = kinds[row["name"]]
    return breakdown_by_lighting_change(rows, kinds, summarize)


def _cell(name: str, model: float | None, identity: float | None, fmt: Formatter) -> str:
    if identity is None:
        return fmt(name, model)
    delta = fmt(name, None if model is None else model - identity)
    sign = "" if delta.startswith("-") or delta == "n/a" else "+"
    return f"{fmt(name, model)} / {fmt(name, identity)} ({sign}{delta})"


def format_breakdown(
    breakdown: dict[str, dict[str, Any]],
    metric_names: tuple[str, ...],
    fmt: Formatter,
    model: str = "S3Net",
) -> str:
    """A markdown table: one row per kind of change, ``model / identity (difference)`` per
    metric (the identity only when the results have it); ``fmt(metric, value)`` formats a
    number as the overall table does."""
    first = next(iter(breakdown.values()))["results"]
    identity = next((k for k in first if k != model), None)
    shown = [m for m in metric_names if m in first[model]]
    header = [f"{m.upper()} ({model}" + (" / identity)" if identity else ")") for m in shown]
    lines = [
        "| lighting change | images | " + " | ".join(header) + " |",
        "|---|---|" + "---|" * len(shown),
    ]
    for kind, group in breakdown.items():
        results = group["results"]
        cells = [
            _cell(m, results[model].get(m), results[identity].get(m) if identity else None, fmt)
            for m in shown
        ]
        lines.append(
            f"| {LIGHTING_CHANGE_LABELS[kind]} | {group['images']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
