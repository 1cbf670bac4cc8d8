"""Structured-config schemas: every config file is validated against one of these.

Registered in Hydra's ConfigStore by :func:`register_configs`; each YAML option lists its
schema first in its defaults (e.g. ``conf/data/vidit.yaml``: ``- vidit_schema``), so a
misspelt key or a wrong type is an error naming the key, before anything runs.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import MISSING, DictConfig, ListConfig

from relight.data.bad_items import BadItemPolicy
from relight.losses.perceptual import DEFAULT_LAYERS
from relight.models.s3net import S3NetConfig


@dataclass
class VIDITDataConfig:
    """``relight.data.VIDITDataModule``: real VIDIT (or any folder in its layout)."""

    _target_: str = "relight.data.VIDITDataModule"
    root: str = MISSING
    pairs_dir: str | None = None
    test_pairs_dir: str | None = None
    gt_dir: str | None = None
    image_size: int | None = 256
    val_scenes: list[int] | None = None
    val_ratio: float = 0.1
    split_seed: int = 0
    seed: int = 0
    samples_per_scene: int | None = None
    allow_same_lighting: bool = False
    val_pairs_per_scene: int = 2
    batch_size: int = 3
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    cache_dir: str | None = None
    allow_pickle: bool = True
    compact_transport: bool = True
    on_bad_item: BadItemPolicy = BadItemPolicy.error
    max_bad_items: int = 100
    verify: bool = False


@dataclass
class MiniVIDITDataConfig(VIDITDataConfig):
    """``relight.data.MiniVIDITDataModule``: renders the mini-VIDIT first if it is missing."""

    _target_: str = "relight.data.MiniVIDITDataModule"
    root: str = ""
    dataset_dir: str = MISSING
    render_size: int = 128
    train_scenes: int = 32
    val_scenes_rendered: int = 8
    pairs_per_val_scene: int = 2
    spp: int = 16
    render_seed: int = 0
    render_workers: int = 2


@dataclass
class NetConfig(S3NetConfig):
    """``relight.models.S3Net`` (see its docstring for each switch)."""

    _target_: str = "relight.models.S3Net"


@dataclass
class OptimizerConfig:
    """A partial ``torch.optim`` optimiser (paper: AdamW, lr 1e-4, betas (0.5, 0.999))."""

    _target_: str = "torch.optim.AdamW"
    _partial_: bool = True
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.01


@dataclass
class SchedulerConfig:
    """A partial LR scheduler stepped per epoch (paper: lr / 10 after 20 epochs)."""

    _target_: str = "torch.optim.lr_scheduler.StepLR"
    _partial_: bool = True
    step_size: int = 20
    gamma: float = 0.1


@dataclass
class MetricsConfig:
    """``relight.metrics.RelightMetrics``: LPIPS backbone and what to do without it."""

    lpips_net: str = "alex"
    lpips_version: str = "0.1"
    lpips_weights: str = "imagenet"
    require_lpips: bool = False


@dataclass
class ModuleConfig:
    """``relight.module.RelightModule``: the network, optimiser, scheduler, metrics, panels."""

    _target_: str = "relight.module.RelightModule"
    net: NetConfig = field(default_factory=NetConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig | None = field(default_factory=SchedulerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    panel_every_n_epochs: int = 1
    panel_rows: int = 4
    max_nonfinite_steps: int = 5
    channels_last: bool = False
    compile: bool = False


@dataclass
class ExtraLossTermConfig:
    """One of your own loss terms: its weight and a ``_target_`` node building the module."""

    weight: float = MISSING
    term: Any = MISSING


@dataclass
class LossConfig:
    """``relight.losses.CompositeLoss`` (paper weights 1, 1.1, 0.1)."""

    _target_: str = "relight.losses.CompositeLoss"
    charbonnier: float = 1.0
    wssim: float = 1.1
    perceptual: float = 0.1
    eps: float = 1e-3
    wssim_levels: int = 2
    wssim_ratio: float = 0.7
    perceptual_layers: list[str] = field(default_factory=lambda: list(DEFAULT_LAYERS))
    vgg_weights: str = "imagenet"
    allow_random_init: bool = False
    drop_perceptual_if_missing: bool = False
    extra_terms: dict[str, ExtraLossTermConfig] = field(default_factory=dict)


@dataclass
class PathsConfig:
    """Where things are: data, logs, this run's output folder."""

    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING
    work_dir: str = MISSING


@dataclass
class TrainConfig:
    """Top level of ``relight-train`` (``conf/train.yaml``)."""

    task_name: str = "train"
    run_name: str = "s3net"
    variant: str = "full"
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    seed: int | None = 12345
    train: bool = True
    test: bool = True
    evaluate: bool = True
    ckpt_path: str | None = None
    auto_resume: bool = True
    float32_matmul_precision: str | None = None
    optimized_metric: str | None = None
    data: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] | None = field(default_factory=dict)
    logger: dict[str, Any] | None = field(default_factory=dict)
    paths: PathsConfig = field(default_factory=PathsConfig)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    """Top level of ``relight-eval`` (``conf/eval.yaml``)."""

    task_name: str = "eval"
    ckpt_path: str = MISSING
    seed: int = 12345
    pairs_dir: str | None = None
    gt_dir: str | None = None
    split: str = "val"
    image_size: int | None = None
    batch_size: int = 4
    device: str = "auto"
    mode: str = "eager-fp32"
    identity_baseline: bool = True
    save_images: bool = True
    grid_cases: int = 4
    data: Any = MISSING
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    extras: dict[str, Any] = field(default_factory=dict)


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="eval_schema", node=EvalConfig)
    store.store(group="data", name="vidit_schema", node=VIDITDataConfig)
    store.store(group="data", name="minividit_schema", node=MiniVIDITDataConfig)
    store.store(group="model", name="module_schema", node=ModuleConfig)
    store.store(group="loss", name="loss_schema", node=LossConfig)
    store.store(group="paths", name="paths_schema", node=PathsConfig)


class ConfigError(ValueError):
    """A config names an argument its ``_target_`` does not take, or a target that does
    not exist."""


#: Keys of a ``_target_`` node that Hydra reads itself.
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def accepted_arguments(target: Callable[..., Any]) -> set[str] | None:
    """The keyword arguments ``target`` (a class or a function) accepts; ``None`` when it
    takes any (``**kwargs``) or has no inspectable signature."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_targets(cfg: DictConfig | ListConfig, where: str = "") -> None:
    """Raise :class:`ConfigError` listing every ``_target_`` node of ``cfg`` whose target
    cannot be imported or whose keys are not arguments of it.

    Relight's own groups are also typed by the schemas above (checked at composition);
    this covers every target, including a user's own classes (``--config-dir``), before
    anything is built.
    """
    problems = _target_problems(cfg, where)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _suggest(key: str, accepted: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(accepted), n=3)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f" (it takes: {', '.join(sorted(accepted))})"


def _target_problems(node: Any, where: str) -> list[str]:
    if not isinstance(node, DictConfig | ListConfig) or node._is_none() or node._is_missing():
        return []
    if isinstance(node, ListConfig):
        return [
            p
            for i in range(len(node))
            for p in _target_problems(node._get_node(i), f"{where}[{i}]")
        ]
    problems: list[str] = []
    prefix = f"{where}." if where else ""
    target_path = node.get("_target_") if "_target_" in node else None
    if isinstance(target_path, str):
        try:
            target = get_object(target_path)
        except Exception as error:  # ImportError, AttributeError, ... from the import
            problems.append(f"{prefix}_target_: cannot import '{target_path}' ({error})")
        else:
            accepted = accepted_arguments(target)
            if accepted is not None:
                for key in sorted(k for k in node if k not in HYDRA_KEYS and k not in accepted):
                    problems.append(
                        f"{prefix}{key}: not an argument of {target_path}{_suggest(key, accepted)}"
                    )
    for key in node:
        if key not in HYDRA_KEYS:
            problems += _target_problems(node._get_node(key), f"{prefix}{key}")
    return problems
