"""A training run from its config: fit S3Net, then one evaluation pass of the best checkpoint
over the validation set (and the shifted validation set, when the data has one) against the
identity baseline (and a test pass over a separate test set when there is one).
``train(cfg)`` takes the composed ``conf/train.yaml``; the command is ``relight-train``
(:mod:`relight.cli.train`, also ``python -m relight.train``).
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from relight.checkpoints import (
    FINISHED,
    RESUMED,
    RESUMED_BY,
    AtomicCheckpointIO,
    close_run,
    net_from_checkpoint,
    resolve_ckpt_path,
    write_run_key,
)
from relight.config import ConfigError, check_float32_precision, check_targets, suggest
from relight.devices import pick_device
from relight.evaluation import evaluate
from relight.files import ensure_writable_dir, link
from relight.metrics import METRIC_NAMES
from relight.models.execution import explain_compile_failure
from relight.module import BAR_LOSS
from relight.wandb_runs import ablation_switches, log_evaluation, switch_tags
from relight.wandb_sync import unreachable_wandb_server

log = logging.getLogger("relight.train")
WANDB_ID_FILE = "wandb_run_id.txt"


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's resolved config as plain containers (without Hydra's own node)."""
    keys = [k for k in cfg if k != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True, enum_to_str=True)


def instantiate_callbacks(cfg: DictConfig | None, selection_metric: str) -> list[L.Callback]:
    """Callbacks from config; a checkpoint monitoring ``val/mps`` without LPIPS is switched to
    ``selection_metric`` (``val/ssim``) with a warning."""
    callbacks = []
    for name, node in (cfg or {}).items():
        if node is None or "_target_" not in node:
            continue
        if node.get("monitor") == "val/mps" and selection_metric != "val/mps":
            warnings.warn(
                f"callbacks.{name}: LPIPS is off (no backbone weights), so val/mps does not "
                f"exist; monitoring {selection_metric} instead",
                stacklevel=2,
            )
            with open_dict(node):
                node.monitor = selection_metric
        callbacks.append(instantiate(node))
    return callbacks


def instantiate_loggers(
    cfg: DictConfig | None, resume_from: str | None, switches: dict[str, Any] | None = None
) -> list[Any]:
    """Loggers from config; a W&B run gets the ablation ``switches`` at the top level of its
    config and as tags (W&B's run table filters and groups by them), and a resumed run
    reuses its W&B run id (the same W&B run continues)."""
    loggers = []
    for _name, node in (cfg or {}).items():
        if node is None or "_target_" not in node:
            continue
        if issubclass(get_class(node._target_), WandbLogger):
            check_wandb_reachable(node)
            with open_dict(node):
                node.tags = [*(node.get("tags") or []), *switch_tags(switches or {})]
                id_file = Path(resume_from).parents[1] / WANDB_ID_FILE if resume_from else None
                if id_file is not None and id_file.is_file() and not node.get("id"):
                    node.id = id_file.read_text().strip()
                    node.resume = "allow"
                node.config = dict(switches or {})  # wandb.init(config=...): the run table
        loggers.append(instantiate(node, _convert_="all"))
    return loggers


def check_wandb_reachable(node: DictConfig) -> None:
    """Online W&B logging needs its server: fail within seconds, saying what to do, instead
    of hanging in ``wandb.init`` when it cannot be reached."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if node.get("offline") or mode in {"offline", "disabled", "dryrun"}:
        return
    host = unreachable_wandb_server()
    if host is not None:
        raise ConnectionError(
            f"logger.wandb.offline=false but the W&B server {host} cannot be reached. Log "
            "offline (logger.wandb.offline=true, the default, or WANDB_MODE=offline) and run "
            "`make wandb-sync` (relight-wandb sync) later, or fix the network/"
            "WANDB_BASE_URL."
        )


@rank_zero_only
def _record_wandb_id(loggers: list[Any], output_dir: Path) -> None:
    """Note the W&B run id in the run folder: a resumed run continues the same W&B run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            (output_dir / WANDB_ID_FILE).write_text(str(logger.experiment.id))


@rank_zero_only
def _mark_resumed(ckpt_path: str, output_dir: Path) -> None:
    """The next auto_resume continues from this run, not from the one it resumes."""
    close_run(Path(ckpt_path).parents[1], RESUMED, f"{RESUMED_BY}{output_dir}\n")


@rank_zero_only
def _publish(best: Path | None, output_dir: Path, cfg: DictConfig, finished: bool) -> None:
    """Mark a finished run, point ``best.ckpt`` at its best checkpoint, and
    ``logs/<task>/latest`` at the run; a sweep's jobs leave ``latest`` to single runs and
    point ``logs/<task>/multiruns/latest`` at their sweep folder instead."""
    if finished:
        close_run(output_dir, FINISHED)
    if best is None:
        return
    link(best, best.parent / "best.ckpt")
    sweep = sweep_dir()
    if sweep is None:
        link(output_dir, Path(cfg.paths.log_dir) / cfg.task_name / "latest")
    else:
        link(sweep, Path(cfg.paths.log_dir) / cfg.task_name / "multiruns" / "latest")


def sweep_dir() -> Path | None:
    """The sweep folder when this job is one of a multirun (``-m``), else ``None``."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).resolve()


def set_float32_precision(precision: str | None, trainer: Any) -> str | None:
    """Apply ``float32_matmul_precision``; returns what was set (``None``: torch's default).

    ``auto`` lets float32 matmuls and convolutions use TF32 tensor cores (``high``) when the
    run trains on a GPU and ``trainer.deterministic`` is off; with it on, a GPU run uses
    neither (``highest``: torch's default leaves cuDNN's convolutions in TF32); a CPU run
    is left alone (its numbers do not change).
    """
    check_float32_precision(precision)
    if precision is None:
        return None
    if precision == "auto":
        accelerator = str(trainer.get("accelerator", "auto"))
        on_gpu = accelerator in {"gpu", "cuda"} or (
            accelerator == "auto" and torch.cuda.is_available()
        )
        if not on_gpu:
            return None
        precision = "highest" if trainer.get("deterministic") else "high"
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"
    return precision


def explain_training_compile_failure(model_cfg: DictConfig) -> AbstractContextManager[None]:
    """Inside, a ``torch.compile`` failure of the network or the loss (``model.compile``,
    ``model.compile_loss``) is a :class:`~relight.models.execution.CompileFailedError` that
    names the switches which train without it."""
    switches = [f"model.{key}=true" for key in ("compile", "compile_loss") if model_cfg.get(key)]
    mode = f"model.compile_mode={model_cfg.get('compile_mode')}"
    return explain_compile_failure(
        ", ".join([*switches, mode]) if switches else None,
        "model.compile=false model.compile_loss=false (the same model and loss, eager kernels; "
        "add ckpt_path=last to continue from this run's newest checkpoint, if it wrote one)",
    )


def run_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The run's metrics the trainer holds now (the progress bar's copy of the loss left out)."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k != BAR_LOSS}


#: What the training steps log besides the loss terms (``train/<name>``): the loss, the
#: speed (``relight.throughput``), skipped steps and, with ``data.on_bad_item=skip``, items.
TRAIN_NAMES = ("loss", "items_per_s", "items_per_s_warm", "nonfinite_steps")
BAD_ITEM_NAMES = ("bad_items", "skipped_items")
LOSS_TERMS = ("charbonnier", "wssim", "perceptual")
#: The metric folders of the passes after fitting and the config switch each needs.
AFTER_FIT = {"eval": "evaluate", "eval_shifted": "evaluate", "test": "test"}


def metric_names(cfg: DictConfig) -> set[str]:
    """Every metric name :func:`train` can return (what ``optimized_metric`` may name):
    ``train/loss`` and each loss term (``extra_terms`` included), ``val/<metric>``,
    ``val/mps_best``, ``val/ssim_best``, and ``eval/``, ``eval_shifted/``, ``test/`` with
    each metric. Whether a run logs one also depends on the run (LPIPS weights present, a
    shifted validation set); this is the set a name must be in."""
    extra = (cfg.get("loss") or {}).get("extra_terms") or {}
    train = [*TRAIN_NAMES, *BAD_ITEM_NAMES, *LOSS_TERMS, *map(str, extra)]
    names = {f"train/{name}" for name in train}
    names |= {f"val/{name}" for name in (*METRIC_NAMES, "mps_best", "ssim_best")}
    names |= {f"{folder}/{name}" for folder in AFTER_FIT for name in METRIC_NAMES}
    return names


def check_optimized_metric(cfg: DictConfig) -> None:
    """A :class:`relight.config.ConfigError` naming ``optimized_metric`` when it is in one
    of relight's metric folders (``train/``, ``val/``, ``eval/``, ``eval_shifted/``,
    ``test/``) but not a metric :func:`train` returns there (with the names it may have
    meant), or one this config turns off (``eval/`` with ``evaluate=false``, ``test/`` with
    ``test=false``, ``train/`` and ``val/`` with ``train=false``): before training, not
    after it. A name outside those folders (a metric your own callback logs, Lightning's
    ``lr-AdamW``) is looked up after the run (:func:`optimized_value`)."""
    name = cfg.get("optimized_metric")
    if not name:
        return
    known = metric_names(cfg)
    if name.split("/", 1)[0] not in {k.split("/", 1)[0] for k in known}:
        return
    if name not in known:
        raise ConfigError(
            f"optimized_metric='{name}' names no metric relight-train logs" + suggest(name, known)
        )
    folder = name.split("/", 1)[0]
    switch = AFTER_FIT.get(folder, "train")
    if not cfg.get(switch, True):
        raise ConfigError(
            f"optimized_metric={name}: {switch}=false, so the run logs no {folder}/ metrics"
        )


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value of ``optimized_metric`` in the metrics :func:`train` returned (``None``
    without one); a :class:`relight.config.ConfigError` when the run did not log it."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        folder = name.split("/", 1)[0]
        logged = ", ".join(sorted(k for k in metrics if k.startswith(f"{folder}/"))) or "none"
        raise ConfigError(
            f"optimized_metric={name} was not logged by this run (its {folder}/ metrics: "
            f"{logged}; LPIPS and MPS need the LPIPS weights, eval_shifted/ a shifted "
            "validation set)"
        )
    return metrics[name]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then evaluate the best checkpoint (and test it on a separate test set); returns
    the final metrics (``train/``, ``val/``, ``eval/``, ``eval_shifted/`` with a shifted
    validation set, ``test/``)."""
    check_targets(cfg)  # every _target_ importable, every key one of its arguments
    output_dir = ensure_writable_dir(cfg.paths.output_dir, "run folder (paths.output_dir)")
    set_float32_precision(cfg.float32_matmul_precision, cfg.trainer)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model)  # the network, its loss, optimiser, ...
    ckpt_path = resolve_ckpt_path(cfg)
    write_run_key(cfg, output_dir)  # what a later auto_resume compares
    callbacks = instantiate_callbacks(cfg.get("callbacks"), model.selection_metric)
    loggers = instantiate_loggers(cfg.get("logger"), ckpt_path, ablation_switches(cfg))
    # objects go to the Trainer directly: through instantiate they would become a ListConfig
    make_trainer = instantiate(cfg.trainer, _partial_=True)
    trainer: L.Trainer = make_trainer(
        callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    for logger in loggers:
        logger.log_hyperparams(resolved_config(cfg))
    _record_wandb_id(loggers, output_dir)

    if cfg.train:
        if ckpt_path is not None and cfg.ckpt_path in (None, "last"):  # found, not named
            _mark_resumed(ckpt_path, output_dir)
        with explain_training_compile_failure(cfg.model):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = run_metrics(trainer)
    best = _best_checkpoint(trainer)
    _publish(best, output_dir, cfg, finished=cfg.train and not trainer.interrupted)
    # without a fit (train=false) the given checkpoint is the one tested and evaluated
    tested = best or (Path(ckpt_path) if ckpt_path else None)
    separate_test = getattr(datamodule, "has_separate_test_set", True)
    if cfg.test and (separate_test or not cfg.evaluate):
        with explain_training_compile_failure(cfg.model):
            trainer.test(model=model, datamodule=datamodule, ckpt_path=tested and str(tested))
        metrics.update(run_metrics(trainer))
    if cfg.evaluate and tested is not None:
        # one pass over each evaluation set: the tables, the images, the cases grids
        evaluations = evaluate_best(tested, datamodule, model, output_dir, cfg)
        if evaluations is not None:  # rank zero
            for folder, scores in evaluations.items():
                metrics.update({f"{folder}/{k}": v for k, v in scores.items()})
            if cfg.test and not separate_test:  # the test set is the validation set
                tests = {f"test/{k}": v for k, v in evaluations["eval"].items()}
                metrics.update(tests)
                for logger in loggers:  # finalized by fit: written out again
                    logger.log_metrics(tests, step=trainer.global_step)
                    logger.save()
            for folder in evaluations:
                log_evaluation(loggers, output_dir / folder, trainer.global_step)
    _print_paths(output_dir, best)
    return metrics


def _best_checkpoint(trainer: L.Trainer) -> Path | None:
    """The best checkpoint by the monitored score; without one (no validation ran), the
    newest state the other checkpoint callbacks wrote (``last.ckpt``, a step checkpoint)."""
    for callback in trainer.checkpoint_callbacks:  # the monitored one first (config order)
        path = getattr(callback, "best_model_path", "")
        if path:
            return Path(path)
    return None


#: The title of each evaluation set's tables, by output folder (``evaluation_sets()``).
EVALUATION_TITLES = {"eval": "Validation", "eval_shifted": "Shifted validation (other generator)"}


@rank_zero_only
def evaluate_best(
    best: Path, datamodule: Any, model: Any, output: Path, cfg: DictConfig
) -> dict[str, dict[str, float]]:
    """Evaluate the best checkpoint on each evaluation set of the data module (the
    validation set, and the shifted one when there is one) into ``output/<folder>`` and
    print the tables; returns the means by folder (the run's ``eval/`` and
    ``eval_shifted/`` metrics; ``eval``'s are its ``test/`` metrics when there is no test
    set). The best checkpoint was chosen on the validation set alone."""
    net, _ = net_from_checkpoint(best)
    sets = (
        datamodule.evaluation_sets()
        if hasattr(datamodule, "evaluation_sets")
        else {"eval": datamodule.val_set}
    )
    means = {}
    for folder, dataset in sets.items():
        summary = evaluate(
            net,
            dataset,
            output / folder,
            model.val_metrics,
            device=pick_device("auto"),
            batch_size=cfg.data.batch_size,
            progress=False,
        )
        title = EVALUATION_TITLES.get(folder, folder)
        print(f"\n{title} ({summary['images']} images), best checkpoint {best.name}:\n")
        print(summary["table"])
        means[folder] = summary["results"]["S3Net"]
    return means


@rank_zero_only
def _print_paths(output_dir: Path, best: Path | None) -> None:
    print(f"\nrun folder:  {output_dir}")
    if best is not None:
        print(f"checkpoint:  {best.parent / 'best.ckpt'} -> {best.name}")
    for folder in EVALUATION_TITLES:
        if (output_dir / folder).is_dir():
            print(
                f"metrics:     {output_dir / folder / 'metrics.json'} "
                "(+ metrics.csv, images/, cases.png)"
            )
    if (output_dir / "panels").is_dir():
        print(f"panels:      {output_dir / 'panels'}")


if __name__ == "__main__":  # python -m relight.train: the relight-train command
    from relight.cli.train import cli

    cli()
