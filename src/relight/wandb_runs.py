"""W&B as the comparison tool: what a training run shows there.

A run's ablation switches go to the top level of its W&B config (and into its tags), so
W&B's run table filters and groups by them; its evaluation (the table per method and per
image, the means, the cases grid, the table by kind of lighting change) is logged when it
ends, one set of keys per evaluation set (``eval/``, ``eval_shifted/``). Runs log offline by default;
:mod:`relight.wandb_sync` uploads them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from relight.evaluation import IDENTITY
from relight.metrics import METRIC_NAMES

#: The ablation switches: their name at the top level of the W&B config -> their config key.
#: Every key an ``ablation/`` option sets is one of them (tested).
SWITCHES = {
    "variant": "variant",
    "encoder": "model.net.encoder",
    "encoder_weights": "model.net.encoder_weights",
    "attention": "model.net.attention",
    "enhancement": "model.net.enhancement",
    "depth": "model.net.depth",
    "global_residual": "model.net.global_residual",
    "residual_form": "model.net.residual_form",
    "global_colour": "model.net.global_colour",
    "wssim_levels": "loss.wssim_levels",
    "perceptual": "loss.perceptual",
}
#: W&B refuses longer tags.
MAX_TAG_LENGTH = 64


def ablation_switches(cfg: DictConfig) -> dict[str, Any]:
    """The run's ablation switches by name (``{"attention": False, "wssim_levels": 3, ...}``)."""
    return {name: OmegaConf.select(cfg, key) for name, key in SWITCHES.items()}


def switch_tags(values: dict[str, Any]) -> list[str]:
    """One ``name=value`` tag per switch; a value too long for a W&B tag (a weights file's
    path) is shown by its file name, cut to W&B's 64 characters."""
    tags = []
    for name, value in values.items():
        tag = f"{name}={value}"
        if len(tag) > MAX_TAG_LENGTH:
            tag = f"{name}={Path(str(value)).name}"[:MAX_TAG_LENGTH]
        tags.append(tag)
    return tags


#: Text columns of ``metrics.csv`` (the others are numbers).
TEXT_COLUMNS = {"name", "lighting_change"}


@rank_zero_only
def log_evaluation(loggers: Sequence[Any], eval_dir: Path, step: int) -> None:
    """Log a run's evaluation, as :func:`relight.evaluation.evaluate` wrote it into
    ``eval_dir``, to its W&B loggers under the folder's name (``eval``, ``eval_shifted``):
    ``eval/table`` (a ``wandb.Table``, one row per method: S3Net and the identity baseline,
    ``None`` where a metric was not computed), ``eval/per_image`` (the rows of
    ``metrics.csv``), the means as ``eval/psnr``, ``eval/ssim``, ... (columns of W&B's run
    table), ``eval/cases`` (the cases grid) and, when the kinds of lighting change are
    known, ``eval/by_lighting_change`` (one row per kind and method)."""
    runs = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not runs:
        return
    import wandb

    prefix = eval_dir.name
    summary = json.loads((eval_dir / "metrics.json").read_text())
    results = summary["results"]
    methods = [[name, *(values.get(m) for m in METRIC_NAMES)] for name, values in results.items()]
    with open(eval_dir / "metrics.csv", newline="") as handle:
        columns, *rows = list(csv.reader(handle))
    per_image = [
        [v if c in TEXT_COLUMNS else float(v) for c, v in zip(columns, row, strict=True)]
        for row in rows
    ]
    logged: dict[str, Any] = {
        f"{prefix}/table": wandb.Table(columns=["method", *METRIC_NAMES], data=methods),
        f"{prefix}/per_image": wandb.Table(columns=columns, data=per_image),
        **{f"{prefix}/{name}": value for name, value in results["S3Net"].items()},
    }
    cases = eval_dir / "cases.png"
    if cases.is_file():
        caption = (
            f"worst {len(summary['worst'])} and best {len(summary['best'])} by "
            f"{summary['ranked_by']}: input | guide | prediction | target | depths"
        )
        logged[f"{prefix}/cases"] = wandb.Image(str(cases), caption=caption)
    if IDENTITY in results:
        logged.update({f"{prefix}/identity_{k}": v for k, v in results[IDENTITY].items()})
    if summary.get("by_lighting_change"):
        kinds = [
            [kind, group["images"], method, *(values.get(m) for m in METRIC_NAMES)]
            for kind, group in summary["by_lighting_change"].items()
            for method, values in group["results"].items()
        ]
        logged[f"{prefix}/by_lighting_change"] = wandb.Table(
            columns=["lighting_change", "images", "method", *METRIC_NAMES], data=kinds
        )
    for run in runs:
        run.log_metrics(logged, step=step)
