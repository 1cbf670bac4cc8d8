"""``relight-train``: the Hydra app over ``conf/train.yaml`` (:func:`relight.train.train`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import hydra
from omegaconf import DictConfig, OmegaConf

from relight.cli.errors import console_script, debugging, fail
from relight.cli.validation import compose_app, jobs, run_hydra_app, split_command_line
from relight.config import register_configs
from relight.paths import config_dir
from relight.train import check_optimized_metric, optimized_value, sweep_dir, train

log = logging.getLogger("relight.train")
Step = TypeVar("Step", bound=Callable[..., Any])
DESCRIPTION = (
    "relight-train [group=option ...] [key=value ...] [-m]: fit S3Net, then evaluate the best "
    "checkpoint against the identity baseline (conf/train.yaml; docs/training.md)."
)
register_configs()


def close_wandb(exit_code: int = 0) -> None:
    """Finish the active W&B run, if any, so multirun jobs never merge into one run; a
    nonzero ``exit_code`` marks it failed (W&B shows it crashed, not finished)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)


def failure_exit_code(error: BaseException) -> int:
    """The exit code a W&B run that ``error`` ended is closed with: never 0 for a failure
    (``SystemExit`` keeps its nonzero status; Ctrl-C is 130, as the shell reports it)."""
    if isinstance(error, SystemExit):
        code = error.code
        if code is None or code == 0:
            return 0
        return code if isinstance(code, int) else 1
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 1


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the metric a sweeper optimises (``optimized_metric``)."""
    if cfg.extras.get("print_config"):
        log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=False))
    try:
        metrics = run_train(cfg)
    except BaseException as error:  # a crash, a one-line error (SystemExit), Ctrl-C
        close_wandb(failure_exit_code(error))
        raise
    close_wandb()
    return as_job(optimized_value)(cfg, metrics)


def run_train(cfg: DictConfig) -> dict[str, float]:
    """:func:`relight.train.train`, after checking ``optimized_metric``
    (:func:`relight.train.check_optimized_metric`)."""

    def checked(cfg: DictConfig) -> dict[str, float]:
        check_optimized_metric(cfg)
        return train(cfg)

    return as_job(checked)(cfg)


def as_job(step: Step) -> Step:
    """``step`` as a run takes it: a single run's expected failure ends in one line
    (:func:`relight.cli.errors.console_script`); a sweep job's is raised as it is, so that
    Hydra's launcher records the job as failed and runs the others (the sweep fails at its
    end), and Optuna counts a failed trial (``hydra.sweeper.max_failure_rate``)."""
    if sweep_dir() is not None:
        return step
    return console_script("relight-train")(step)


def check_jobs_optimized_metric(argv: list[str]) -> None:
    """:func:`relight.train.check_optimized_metric` for every job of the command line, before
    Hydra starts any: a misspelt metric ends a sweep (an Optuna study) before its first
    trial trains, not after it."""
    overrides, search_dir, name = split_command_line(argv)
    for job in jobs(overrides):
        check_optimized_metric(compose_app(name or "train", job, search_dir))


def checked_main() -> None:
    """:func:`main`, once every job's ``optimized_metric`` is checked (one line, exit status
    2, as the other config errors of :func:`relight.cli.validation.run_hydra_app`)."""
    argv = sys.argv[1:]
    if not set(argv) & {"--hydra-help", "--info", "--shell-completion", "--version"}:
        try:
            check_jobs_optimized_metric(argv)
        except ValueError as error:
            if debugging():
                raise
            fail("relight-train", error, 2)
    main()


def cli() -> None:
    """Console script: checks first (:func:`relight.cli.validation.run_hydra_app`)."""
    run_hydra_app("relight-train", "train", DESCRIPTION, checked_main)


if __name__ == "__main__":
    cli()
