"""Structured-config schemas: every config file is validated against one of these.

Registered in Hydra's ConfigStore by :func:`register_configs`; each YAML option lists its
schema first in its defaults (e.g. ``conf/data/vidit.yaml``: ``- vidit_schema``), so a
misspelt key or a wrong type is an error naming the key, before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import torch
from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from relight.data import MiniVIDITDataModule, VIDITDataModule
from relight.data.augment import JointAugmentation
from relight.data.transforms import check_image_size
from relight.losses import CompositeLoss
from relight.losses.composite import check_loss_weights
from relight.losses.wssim import check_wssim_size
from relight.metrics import RelightMetrics
from relight.models import S3Net
from relight.models.execution import CUDA_GRAPH_MODES, check_compile_mode
from relight.models.s3net import check_residual_form
from relight.module import RelightModule
from relight.signatures import signature_dataclass


@dataclass
class ExtraLossTermConfig:
    """One of your own loss terms: its weight and a ``_target_`` node building the module."""

    weight: float = MISSING
    term: Any = MISSING


# Each schema is read off its constructor (relight.signatures), so every default is said
# once, in the signature; the YAML files hold the choices of a setting (the paper's, the
# CPU recipe's), not the defaults again.
#: ``data.augment``: its keys are JointAugmentation's (a typo is an error at composition).
AugmentConfig = signature_dataclass("AugmentConfig", JointAugmentation)
_DATA_NODES = {"types_": {"augment": AugmentConfig}, "defaults": {"augment": AugmentConfig()}}
VIDITDataConfig = signature_dataclass(
    "VIDITDataConfig", VIDITDataModule, hydra_target=True, **_DATA_NODES
)
MiniVIDITDataConfig = signature_dataclass(
    "MiniVIDITDataConfig", MiniVIDITDataModule, hydra_target=True, **_DATA_NODES
)
NetConfig = signature_dataclass("NetConfig", S3Net, hydra_target=True)
#: The paper's optimiser; every AdamW argument (``fused``, ``foreach``, ...) is a key.
OptimizerConfig = signature_dataclass(
    "OptimizerConfig",
    torch.optim.AdamW,
    exclude=["params"],
    types_={"lr": float},
    hydra_target=True,
    partial=True,
)
SchedulerConfig = signature_dataclass(
    "SchedulerConfig",
    torch.optim.lr_scheduler.StepLR,
    exclude=["optimizer"],
    hydra_target=True,
    partial=True,
)
MetricsConfig = signature_dataclass("MetricsConfig", RelightMetrics)
LossConfig = signature_dataclass(
    "LossConfig",
    CompositeLoss,
    hydra_target=True,
    types_={"extra_terms": dict[str, ExtraLossTermConfig]},
    defaults={"extra_terms": {}},
)
ModuleConfig = signature_dataclass(
    "ModuleConfig",
    RelightModule,
    hydra_target=True,
    types_={
        "net": NetConfig,
        "optimizer": OptimizerConfig,
        "scheduler": SchedulerConfig | None,
        "metrics": MetricsConfig,
        "loss": Any,
    },
    defaults={
        "net": NetConfig(),
        "optimizer": OptimizerConfig(),
        "scheduler": SchedulerConfig(),
        "metrics": MetricsConfig(),
        "loss": "${loss}",  # the top-level loss group
    },
)


@dataclass
class PathsConfig:
    """Where things are: data, logs, this run's output folder."""

    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    # Hydra's run folder and working directory: unset (None) when a config is only printed
    # (relight-train --cfg job --resolve)
    output_dir: str | None = MISSING
    work_dir: str | None = MISSING


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
    float32_matmul_precision: str | None = "auto"
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
    split: str = "val"  # val, test or shifted
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
        raise ConfigError("invalid config: " + "; ".join(problems))


def suggest(key: str, accepted: set[str]) -> str:
    """`` (did you mean 'x'?)`` with the keys of ``accepted`` close to ``key``, or all of them."""
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
                        f"{prefix}{key}: not an argument of {target_path}{suggest(key, accepted)}"
                    )
    for key in node:
        if key not in HYDRA_KEYS:
            problems += _target_problems(node._get_node(key), f"{prefix}{key}")
    return problems


def _trainer_type_problems(cfg: DictConfig) -> list[str]:
    """``trainer`` values the Trainer's annotations refuse (``trainer.max_epochs=abc``),
    which Lightning would otherwise only trip over inside ``fit``."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig) or not isinstance(trainer.get("_target_"), str):
        return []
    try:
        target = get_object(trainer._target_)
    except Exception:  # noqa: BLE001 - reported by _target_problems
        return []
    annotations = argument_annotations(target)
    problems = []
    for key in trainer:
        if key in HYDRA_KEYS or key not in annotations:
            continue
        try:
            value = trainer[key]
        except OmegaConfBaseException:  # ??? or an interpolation only a running job resolves
            continue
        if _fits(value, annotations[key]) is False:
            problems.append(f"trainer.{key}: expected {_describe(annotations[key])}, got {value!r}")
    return problems


def argument_annotations(target: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of ``target``'s arguments (a class: its ``__init__``'s);
    one that cannot be evaluated (a name imported only for type checkers) is left out."""
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - NameError, TypeError, ...: one by one below
        pass
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    names = getattr(inspect.unwrap(function), "__globals__", {})
    annotations = {}
    for parameter in parameters:
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(names))  # noqa: S307 - as get_type_hints does
            except Exception:  # noqa: BLE001
                continue
        if annotation is not parameter.empty:
            annotations[parameter.name] = annotation
    return annotations


_CONTAINERS = (list, tuple, set, dict)


def _fits(value: Any, annotation: Any) -> bool | None:
    """Whether a config value is of ``annotation``: scalars, ``None``, literals and unions
    of them; containers only as containers; ``None`` (cannot tell) for anything else."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if origin is Literal:
        return any(type(value) is type(c) and value == c for c in typing.get_args(annotation))
    if origin is Union or origin is types.UnionType:
        fits = [_fits(value, member) for member in typing.get_args(annotation)]
        return True if True in fits else None if None in fits else False
    if isinstance(value, DictConfig) and "_target_" in value:
        return None  # Hydra builds it
    if annotation in (bool, str):
        return isinstance(value, annotation)
    if annotation in (int, float):
        kinds = int if annotation is int else int | float
        return isinstance(value, kinds) and not isinstance(value, bool)
    if (origin or annotation) in _CONTAINERS:
        kind = DictConfig if (origin or annotation) is dict else ListConfig
        return isinstance(value, kind)
    return None


def _describe(annotation: Any) -> str:
    """``int or null``, ``one of: 64, 32, 'bf16-mixed', null``: what an annotation takes."""
    parts = _alternatives(annotation)
    return " or ".join(parts) if len(parts) <= 2 else "one of: " + ", ".join(parts)


def _alternatives(annotation: Any) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType or origin is Literal:
        return [part for a in typing.get_args(annotation) for part in _alternatives(a)]
    if annotation is None or annotation is type(None):
        return ["null"]
    if isinstance(annotation, bool | int | float | str):  # a literal's value
        return [repr(annotation)]
    if inspect.isclass(annotation) and origin is None:
        return [annotation.__name__]
    return [str(annotation).replace("typing.", "")]


#: ``float32_matmul_precision`` values: torch's three, or ``auto`` (TF32 on a GPU unless
#: ``trainer.deterministic``; see :func:`relight.train.set_float32_precision`).
FLOAT32_PRECISIONS = ("auto", "highest", "high", "medium")


def check_float32_precision(value: str | None) -> None:
    """A ``ValueError`` unless ``value`` is ``None`` or one of :data:`FLOAT32_PRECISIONS`."""
    if value is not None and value not in FLOAT32_PRECISIONS:
        raise ValueError(
            f"float32_matmul_precision={value!r}: choose one of {list(FLOAT32_PRECISIONS)}"
        )


def validate_config(
    cfg: DictConfig, required: bool = True, filled_later: Collection[str] = ()
) -> None:
    """Everything that can be checked without building anything, all problems at once in
    one :class:`ConfigError`: required values (``???``) left unset, unless ``required`` is
    false (a config only printed) or a sweeper sets them per job (``filled_later``); keys a
    schema does not know (``+data.imag_size=3`` adds one); every ``_target_`` against its
    signature; the trainer's values against the types of its arguments; values out of
    range."""
    problems = _missing_values(cfg, filled_later) if required else []
    problems += _unknown_keys(cfg, "")
    for check in (lambda c: _target_problems(c, ""), _out_of_range, _trainer_type_problems):
        try:
            problems += check(cfg)
        except MissingMandatoryValue:  # a required value: reported above, or set per job
            continue
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


def _missing_values(cfg: DictConfig, filled_later: Collection[str]) -> list[str]:
    """``<key> is required`` for each ``???`` outside ``hydra`` and ``filled_later``."""
    missing = set()
    for key in cfg:
        if key == "hydra":
            continue
        try:
            if OmegaConf.is_missing(cfg, key):
                missing.add(str(key))
            elif isinstance(cfg._get_node(key), DictConfig | ListConfig):
                missing |= OmegaConf.missing_keys(cfg[key])
        except OmegaConfBaseException:  # an interpolation only a running job resolves
            continue
    later = tuple(filled_later)
    return [
        f"{key} is required (set {key}=...)"
        for key in sorted(missing)
        if not any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in later)
    ]


def _unknown_keys(node: Any, where: str) -> list[str]:
    if not isinstance(node, DictConfig) or node._is_none() or node._is_missing():
        return []
    problems = []
    schema = OmegaConf.get_type(node)
    prefix = f"{where}." if where else ""
    if dataclasses.is_dataclass(schema):
        known = {f.name for f in dataclasses.fields(schema)}
        for key in sorted(set(node) - known - {"hydra"}):
            problems.append(f"{prefix}{key}: not a key here{suggest(key, known)}")
    for key in node:
        if key != "hydra":
            problems += _unknown_keys(node._get_node(key), f"{prefix}{key}")
    return problems


def _out_of_range(cfg: DictConfig) -> list[str]:
    """Values the constructors would refuse, checked by the same functions they use."""
    problems = []
    data = cfg.get("data")
    if isinstance(data, DictConfig):
        problems += _refused(check_image_size, data.get("image_size"))
        batch_size = data.get("batch_size")
        if isinstance(batch_size, int) and batch_size < 1:
            problems.append(f"data.batch_size must be >= 1, got {batch_size}")
        augment = data.get("augment")
        # keys JointAugmentation does not take are refused by _unknown_keys
        if isinstance(augment, DictConfig) and set(augment) <= _AUGMENT_KEYS:
            problems += _refused(_check_augment, (augment, data.get("image_size")))
    if cfg.get("image_size") is not None:  # relight-eval's own
        problems += _refused(lambda size: check_image_size(size, "image_size"), cfg.image_size)
    loss = cfg.get("loss")
    if isinstance(loss, DictConfig) and "charbonnier" in loss:
        weights = {k: loss[k] for k in ("charbonnier", "wssim", "perceptual")}
        weights.update({k: v.weight for k, v in (loss.get("extra_terms") or {}).items()})
        problems += _refused(check_loss_weights, weights)
    residual_form = OmegaConf.select(cfg, "model.net.residual_form")
    if isinstance(residual_form, str):
        problems += _refused(check_residual_form, residual_form)
    compile_mode = OmegaConf.select(cfg, "model.compile_mode")
    if isinstance(compile_mode, str):
        problems += _refused(check_compile_mode, compile_mode)
    if "float32_matmul_precision" in cfg:
        problems += _refused(check_float32_precision, cfg.float32_matmul_precision)
    trainer = cfg.get("trainer")
    if (
        isinstance(trainer, DictConfig)
        and trainer.get("benchmark")
        and trainer.get("deterministic")
    ):
        problems.append(
            "trainer.benchmark=true with trainer.deterministic="
            f"{trainer.deterministic}: cuDNN's autotuner picks convolution algorithms by "
            "timing them, so two runs may pick different ones; set one of them false"
        )
    problems += _compile_eval_problems(cfg)
    problems += _wssim_size_problems(cfg)
    lr = OmegaConf.select(cfg, "model.optimizer.lr")
    if isinstance(lr, float | int) and lr <= 0:
        problems.append(f"model.optimizer.lr must be > 0, got {lr}")
    return problems


def _wssim_size_problems(cfg: DictConfig) -> list[str]:
    """``loss.wssim_levels`` against the side of the training items (the crop, else
    ``data.image_size``), which the loss would otherwise refuse at the first step."""
    levels = OmegaConf.select(cfg, "loss.wssim_levels")
    if not OmegaConf.select(cfg, "loss.wssim") or not isinstance(levels, int):
        return []
    if levels < 0:
        return [f"loss.wssim_levels must be >= 0, got {levels}"]
    key = "data.augment.crop_size"
    side = OmegaConf.select(cfg, key)
    if side is None:
        key = "data.image_size"
        side = OmegaConf.select(cfg, key)
    if not isinstance(side, int) or isinstance(side, bool):
        return []  # native size: the data module checks the items
    return [
        f"loss.wssim_levels={levels} with {key}={side}: {problem}"
        for problem in _refused(lambda v: check_wssim_size(*v), (levels, side))
    ]


def _compile_eval_problems(cfg: DictConfig) -> list[str]:
    """``model.compile_eval`` needs ``model.compile``, and with CUDA graphs a validation
    outside ``torch.inference_mode`` (pytorch/pytorch#135892)."""
    model = cfg.get("model")
    if not isinstance(model, DictConfig) or not model.get("compile_eval"):
        return []
    if not model.get("compile"):
        return ["model.compile_eval=true compiles nothing without model.compile=true"]
    if model.get("compile_mode") in CUDA_GRAPH_MODES and OmegaConf.select(
        cfg, "trainer.inference_mode", default=True
    ):
        return [
            f"model.compile_eval=true with model.compile_mode={model.compile_mode} (CUDA "
            "graphs) needs trainer.inference_mode=false: graphs recorded under inference "
            "mode can break the training graphs recorded after them (pytorch/pytorch#135892)"
        ]
    return []


#: ``data.augment``'s keys.
_AUGMENT_KEYS = {f.name for f in dataclasses.fields(AugmentConfig)}


def _check_augment(node_and_size: tuple[DictConfig, Any]) -> None:
    """``data.augment`` as the data module checks it (values, a crop that fits)."""
    node, image_size = node_and_size
    augment = JointAugmentation.from_config(OmegaConf.to_container(node, resolve=True))
    if augment is not None and isinstance(image_size, int):
        augment.check_size(image_size)


def _refused(check: Callable[[Any], Any], value: Any) -> list[str]:
    """``[message]`` when ``check(value)`` raises ``ValueError``, else ``[]``."""
    try:
        check(value)
    except ValueError as error:
        return [str(error)]
    return []
