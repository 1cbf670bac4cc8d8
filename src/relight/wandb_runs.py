"""W&B as the comparison tool: what a training run shows there.

A run's ablation switches go to the top level of its W&B config (and into its tags), so
W&B's run table filters and groups by them; its evaluation (the table per method and per
image, the means, the cases grid) is logged when it ends. Runs log offline by default;
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


@rank_zero_only
def log_evaluation(loggers: Sequence[Any], eval_dir: Path, step: int) -> None:
    """Log a run's evaluation, as :func:`relight.evaluation.evaluate` wrote it into
    ``eval_dir``, to its W&B loggers: ``eval/table`` (a ``wandb.Table``, one row per method:
    S3Net and the identity baseline, ``None`` where a metric was not computed),
    ``eval/per_image`` (the rows of ``metrics.csv``), the means as ``eval/psnr``,
    ``eval/ssim``, ... (columns of W&B's run table) and ``eval/cases`` (the cases grid)."""
    runs = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not runs:
        return
    import wandb

    summary = json.loads((eval_dir / "metrics.json").read_text())
    results = summary["results"]
    methods = [[name, *(values.get(m) for m in METRIC_NAMES)] for name, values in results.items()]
    with open(eval_dir / "metrics.csv", newline="") as handle:
        columns, *rows = list(csv.reader(handle))
    per_image = [[name, *map(float, values)] for name, *values in rows]
    logged: dict[str, Any] = {
        "eval/table": wandb.Table(columns=["method", *METRIC_NAMES], data=methods),
        "eval/per_image": wandb.Table(columns=columns, data=per_image),
        **{f"eval/{name}": value for name, value in results["S3Net"].items()},
    }
    cases = eval_dir / "cases.png"
    if cases.is_file():
        caption = (
            f"worst {len(summary['worst'])} and best {len(summary['best'])} by "
            f"{summary['ranked_by']}: input | guide | prediction | target | depths"
        )
        logged["eval/cases"] = wandb.Image(str(cases), caption=caption)
    if IDENTITY in results:
        logged.update({f"eval/identity_{k}": v for k, v in results[IDENTITY].items()})
    for run in runs:
        run.log_metrics(logged, step=step)
