import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from relight.paths import config_dir
from relight.train import resolved_config

from .conftest import compose_cfg

CONF = config_dir()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_resolves(experiment, tmp_path):
    cfg = compose_cfg(
        "train", [f"experiment={experiment}", "data.root=/data/VIDIT/train"], tmp_path
    )
    resolved = resolved_config(cfg)
    # the paper's ablation wrappers are the paper's run with another variant
    assert resolved["run_name"] == (
        "s3net_paper" if experiment.startswith("s3net_") else experiment
    )
    assert resolved["model"]["_target_"] == "relight.module.RelightModule"
    assert resolved["loss"]["_target_"] == "relight.losses.CompositeLoss"


@pytest.mark.parametrize(
    "group", ["data", "model", "loss", "trainer", "logger", "callbacks", "debug"]
)
def test_every_group_option_composes(group, tmp_path):
    """Every option composes, and every ``_target_`` in it imports and takes its keys."""
    from relight.config import check_targets

    for option in options(group):
        cfg = compose_cfg("train", [f"{group}={option}", "data.root=/x"], tmp_path)
        resolved_config(cfg)
        check_targets(cfg)


@pytest.mark.parametrize(
    "experiment", [[], ["experiment=minividit_ablation"], ["hparams_search=minividit_optuna"]]
)
def test_debug_fdr_has_no_logger_and_no_checkpoints(experiment, tmp_path):
    """``debug=fdr`` empties the logger and callbacks groups, also over an experiment's or
    a search's choice (CSV + W&B in a study's group); a logger named on the command line
    still wins."""
    cfg = compose_cfg("train", ["data.root=/x", *experiment, "debug=fdr"], tmp_path)
    assert cfg.logger == {} and cfg.callbacks == {}
    assert cfg.trainer.fast_dev_run is True
    chosen = compose_cfg("train", ["data.root=/x", "debug=fdr", "logger=csv"], tmp_path)
    assert list(chosen.logger) == ["csv"]


def test_paper_experiment_matches_the_paper(tmp_path):
    cfg = compose_cfg("train", ["experiment=s3net_paper", "data.root=/x"], tmp_path)
    assert cfg.data.image_size is None and cfg.data.batch_size == 3
    assert cfg.trainer.max_epochs == 100
    assert cfg.model.optimizer.lr == 1e-4 and list(cfg.model.optimizer.betas) == [0.5, 0.999]
    assert cfg.model.scheduler.step_size == 20 and cfg.model.scheduler.gamma == 0.1
    assert (cfg.loss.charbonnier, cfg.loss.wssim, cfg.loss.perceptual) == (1.0, 1.1, 0.1)
    assert cfg.model.net.encoder == "res2net101d" and cfg.model.net.encoder_weights == "imagenet"
    # the paper's network and data: no global residual, no augmentation
    assert not cfg.model.net.global_residual and cfg.model.net.residual_form == "inside_tanh"
    assert not cfg.model.net.global_colour
    assert dict(cfg.data.augment) == {"hflip": 0.0, "crop_size": None, "scene_tint": 0.0}
    assert cfg.data.shifted_pairs_dir is None
    # the switches of make bench-gpu's fastest training mode at the paper's step
    from relight.bench.suite import TRAIN_MODE_DEFAULTS
    from relight.bench.train_step import TRAIN_MODES

    fastest = {**TRAIN_MODE_DEFAULTS, **TRAIN_MODES["bf16-mixed-graphs"]}
    model = cfg.model
    assert cfg.trainer.precision == fastest["precision"] and model.compile_loss
    assert (model.channels_last, model.optimizer.fused, model.net.activation_checkpointing) == (
        fastest["channels_last"],
        fastest["fused"],
        fastest["checkpointing"],
    )
    assert model.compile and model.compile_mode == fastest["compile"]
    assert bool(cfg.trainer.benchmark) == bool(fastest.get("cudnn_benchmark"))


def test_main_job_recipe_and_its_paper_model_twin(tmp_path):
    """The CPU recipe's choices (experiments/2026-11-27_minividit_generalization) and the
    comparison run that differs from it only by the paper's output."""
    cfg = compose_cfg("train", ["experiment=minividit_cpu"], tmp_path)
    net = cfg.model.net
    assert (net.encoder, net.global_residual, net.residual_form, net.global_colour) == (
        "resnet18",
        True,
        "gain",
        True,
    )
    assert cfg.data.augment.scene_tint == 0.4 and cfg.data.samples_per_scene == 8
    assert cfg.data.shifted_scenes_rendered == 10  # validation_shifted/, evaluated after fit
    twin = compose_cfg("train", ["experiment=minividit_cpu_paper_model"], tmp_path)
    recipe = OmegaConf.to_container(cfg, resolve=False)
    paper = OmegaConf.to_container(twin, resolve=False)
    for key in ("global_residual", "residual_form", "global_colour"):
        recipe["model"]["net"].pop(key), paper["model"]["net"].pop(key)
    for key in ("run_name", "tags", "hydra"):  # hydra: the overrides it records
        recipe.pop(key), paper.pop(key)
    assert recipe == paper
    assert not twin.model.net.global_residual and not twin.model.net.global_colour


@pytest.mark.parametrize(
    ("experiment", "key", "value"),
    [
        ("s3net_no_attention", "model.net.attention", False),
        ("s3net_no_enhancement", "model.net.enhancement", False),
        ("s3net_no_depth", "model.net.depth", False),
        ("s3net_scratch", "model.net.encoder_weights", "none"),
        ("s3net_ssim", "loss.wssim_levels", 0),
        ("s3net_no_perceptual", "loss.perceptual", 0.0),
    ],
)
def test_ablations_change_one_thing(experiment, key, value, tmp_path):
    cfg = compose_cfg("train", [f"experiment={experiment}", "data.root=/x"], tmp_path)
    paper = compose_cfg("train", ["experiment=s3net_paper", "data.root=/x"], tmp_path)
    assert OmegaConf.select(cfg, key) == value
    assert OmegaConf.select(paper, key) != value
    # as written (interpolations such as the W&B name ${variant} unresolved), Hydra's own
    # node (the command line) aside
    written = [flatten(OmegaConf.to_container(c, resolve=False)) for c in (cfg, paper)]
    changed = {k for k, _ in written[0].items() ^ written[1].items() if not k.startswith("hydra.")}
    assert changed == {key, "variant"}  # the same run name, tags and W&B group


@pytest.mark.parametrize("ablation", ["no_attention", "ssim", "scratch"])
def test_an_ablation_is_the_same_run_whichever_way_it_is_started(ablation, tmp_path):
    """experiment=s3net_<ablation> and experiment=s3net_paper ablation=<ablation>: one
    config, so one run name, variant, W&B group and folder."""
    wrapper = compose_cfg("train", [f"experiment=s3net_{ablation}", "data.root=/x"], tmp_path)
    paper = compose_cfg(
        "train", ["experiment=s3net_paper", f"ablation={ablation}", "data.root=/x"], tmp_path
    )
    assert resolved_config(wrapper) == resolved_config(paper)


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """``{"a.b.c": leaf}`` of nested dicts (lists are leaves, as tuples)."""
    if isinstance(tree, dict):
        return {
            k: v
            for key, child in tree.items()
            for k, v in flatten(child, f"{prefix}{key}.").items()
        }
    return {prefix.rstrip("."): tuple(tree) if isinstance(tree, list) else tree}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.imag_size=64", "data.imag_size"),
        ("model.net.atention=false", "model.net.atention"),
        ("loss.wsim=1.0", "loss.wsim"),
        ("sed=3", "sed"),
        ("data.image_size=big", "data.image_size"),
        ("loss.wssim=heavy", "loss.wssim"),
        ("model.optimizer.lr=fast", "model.optimizer.lr"),
        ("data.augment.vflip=0.5", "data.augment.vflip"),
        ("data.augment.hflip=often", "data.augment.hflip"),
    ],
)
def test_typos_and_wrong_types_are_errors_naming_the_key(override, named, tmp_path):
    with pytest.raises(ConfigCompositionException, match=named.replace(".", r"\.")):
        compose_cfg("train", [override], tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.augment.hflip=1.5", r"data\.augment\.hflip must be a probability in \[0, 1\]"),
        ("data.augment.scene_tint=2", r"data\.augment\.scene_tint must be in \[0, 1\]"),
        ("data.augment.crop_size=40", r"data\.augment\.crop_size must be a positive multiple"),
        ("data.augment.crop_size=256", r"crop_size=256 is larger than data\.image_size=128"),
        (
            "loss.wssim_levels=2 data.image_size=32",
            r"loss\.wssim_levels=2 with data\.image_size=32: W-SSIM with 2 levels needs "
            r"images of at least 44 px",
        ),
        (
            "loss.wssim_levels=3 data.augment.crop_size=64",
            r"loss\.wssim_levels=3 with data\.augment\.crop_size=64: .* at least 88 px",
        ),
        ("loss.wssim_levels=-1", r"loss\.wssim_levels must be >= 0, got -1"),
        (
            "model.net.residual_form=sum",
            r"model\.net\.residual_form must be one of inside_tanh, outside_tanh, gain, got 'sum'",
        ),
    ],
)
def test_values_out_of_range_are_errors_before_anything_runs(override, message, tmp_path):
    from relight.config import ConfigError, validate_config

    cfg = compose_cfg("train", override.split(), tmp_path)
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)
    validate_config(compose_cfg("train", ["data.augment.crop_size=64"], tmp_path))
    # the loss never sees a size it refuses when its weight is 0
    validate_config(compose_cfg("train", ["data.image_size=32", "loss.wssim=0"], tmp_path))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # +key=value gets past composition (Hydra adds it); the schema refuses it
        ("+paths.ouput_dir=x", r"paths\.ouput_dir: not a key here \(did you mean 'output_dir'"),
        ("+data.imag_size=3", r"data\.imag_size: not a key here \(did you mean 'image_size'"),
        ("+optimised_metric=x", r"optimised_metric: not a key here"),
        ("+data.augment.hfilp=0.5", r"data\.augment\.hfilp: not a key here"),
        # trainer values against the annotations of Lightning's Trainer
        ("trainer.max_epochs=abc", r"trainer\.max_epochs: expected int or null, got 'abc'"),
        ("trainer.deterministic=sometimes", r"trainer\.deterministic: expected one of: bool"),
        ("trainer.max_epochs=${run_name}", r"trainer\.max_epochs: .* got 's3net'"),
        ("+trainer.sync_batchnorm=null", r"trainer\.sync_batchnorm: expected bool, got None"),
        ("+trainer.limit_val_batches=[1]", r"trainer\.limit_val_batches: expected one of: int"),
    ],
)
def test_added_keys_and_wrong_trainer_types_are_config_errors(override, message, tmp_path):
    from relight.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(compose_cfg("train", [override], tmp_path))


def test_required_values_are_config_errors_unless_filled_later(tmp_path):
    from relight.config import ConfigError, validate_config

    cfg = compose_cfg("train", ["experiment=s3net_paper"], tmp_path)
    with pytest.raises(ConfigError, match=r"invalid config: data\.root is required"):
        validate_config(cfg)
    validate_config(cfg, required=False)  # printed only
    validate_config(cfg, filled_later={"data.root"})  # a sweeper sets it per job
    validate_config(compose_cfg("train", ["experiment=s3net_paper", "data.root=/x"], tmp_path))


def test_trainer_values_the_trainer_takes_pass(tmp_path):
    """Every form Lightning takes: ``null`` where optional, interpolations, a max_time
    string or dict, devices as an int, a string or a list, precision as an int or a
    string, ints where floats go; annotations too complex to check are not."""
    from relight.config import validate_config

    fine = [
        "trainer.max_epochs=null",
        "trainer.min_epochs=${seed}",
        "trainer.default_root_dir=${paths.log_dir}",
        "+trainer.max_time=00:00:18:00",
        "trainer.devices=[0,1]",
        "trainer.precision=16",
        "trainer.deterministic=warn",
        "+trainer.limit_train_batches=0.5",
        "+trainer.limit_val_batches=2",
        "+trainer.gradient_clip_val=1",
        "+trainer.profiler=simple",
        "+trainer.fast_dev_run=true",
    ]
    validate_config(compose_cfg("train", fine, tmp_path))
    others = ["+trainer.max_time={days:1}", "trainer.devices=auto", "trainer.precision=bf16-mixed"]
    validate_config(compose_cfg("train", others, tmp_path))


def test_argument_annotations_survive_names_only_type_checkers_know():
    """Annotations as strings (``from __future__ import annotations``; Lightning's may be),
    one naming what is imported only under ``TYPE_CHECKING``: the others are read."""
    from relight.config import argument_annotations

    def build(epochs: "int | None" = None, plugin: "NotImportedHere | None" = None) -> None:  # noqa: F821
        del epochs, plugin

    assert argument_annotations(build) == {"epochs": int | None}


def test_eval_config_composes(tmp_path):
    cfg = compose_cfg("eval", ["ckpt_path=/some/best.ckpt"], tmp_path)
    assert cfg.split == "val" and cfg.identity_baseline
    with pytest.raises(ConfigCompositionException, match="pairs_dri"):
        compose_cfg("eval", ["ckpt_path=x", "pairs_dri=y"], tmp_path)


def test_own_config_folder_experiment_builds_its_loss_term(tmp_path, monkeypatch):
    """`relight-train --config-dir my_exps experiment=foo`: the user's files compose over
    relight's (as a Hydra search path), their term class builds, and a misspelt argument of
    it is an error naming the key."""
    from hydra.utils import instantiate

    from relight.config import ConfigError, check_targets

    from ..user_experiment import write_user_experiment

    work = write_user_experiment(tmp_path / "work")
    monkeypatch.syspath_prepend(str(work))
    search = f"hydra.searchpath=[file://{work / 'my_exps'}]"
    cfg = compose_cfg("train", [search, "experiment=foo", "data.root=/x"], tmp_path)
    assert cfg.run_name == "foo" and cfg.model.net.encoder == "resnet18"
    assert cfg.loss.charbonnier == 1.0 and cfg.loss.wssim == 1.1  # the paper's terms kept
    check_targets(cfg)
    loss = instantiate(cfg.loss)
    assert set(loss.terms) == {"charbonnier", "wssim", "brightness"}
    assert loss.weights["brightness"] == 0.1 and loss.terms["brightness"].target_mean == 0.5

    bad = compose_cfg(
        "train",
        [search, "experiment=foo", "data.root=/x", "+loss.extra_terms.brightness.term.mean=1"],
        tmp_path,
    )
    with pytest.raises(
        ConfigError, match=r"loss\.extra_terms\.brightness\.term\.mean: .*target_mean"
    ):
        check_targets(bad)


def test_check_targets_lists_every_problem_at_once(tmp_path):
    from omegaconf import open_dict

    from relight.config import ConfigError, check_targets

    cfg = compose_cfg("train", ["experiment=s3net_paper", "data.root=/x"], tmp_path)
    check_targets(cfg)  # the shipped configs are clean
    with open_dict(cfg):
        cfg.trainer.max_epoch = 3
        cfg.callbacks.model_checkpoint.monitr = "val/ssim"
        cfg.model.net._target_ = "relight.models.S3Nett"
    with pytest.raises(ConfigError) as error:
        check_targets(cfg)
    message = str(error.value)
    assert "trainer.max_epoch: not an argument of lightning.pytorch.trainer.Trainer" in message
    assert "did you mean 'max_epochs'" in message
    assert "callbacks.model_checkpoint.monitr" in message and "'monitor'" in message
    assert "model.net._target_: cannot import 'relight.models.S3Nett'" in message


def test_every_schema_is_its_constructor_s_signature():
    """The config schemas are read off the constructors: same keys, same defaults (where
    a schema deliberately differs, it says so in relight.config), so a default changed in
    a signature changes the config, and no second copy can drift."""
    import dataclasses
    import inspect

    import torch

    from relight import config
    from relight.data import MiniVIDITDataModule, VIDITDataModule
    from relight.data.augment import JointAugmentation
    from relight.losses import CompositeLoss
    from relight.metrics import RelightMetrics
    from relight.models import S3Net
    from relight.module import RelightModule

    def parameters(target, *, follow=False):
        found = {}
        classes = [c for c in target.__mro__ if "__init__" in c.__dict__] if follow else [target]
        for cls in classes:
            params = inspect.signature(cls.__dict__.get("__init__", cls)).parameters.values()
            for p in params:
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                    found.setdefault(p.name, p.default)
            if all(p.kind is not p.VAR_KEYWORD for p in params):
                break
        return found

    # (schema, the constructor's parameters, parameters it leaves out, defaults it sets)
    cases = [
        # data.augment: a node of its own schema (JointAugmentation's keys), all off
        (config.VIDITDataConfig, parameters(VIDITDataModule), set(), {"augment"}),
        (
            config.MiniVIDITDataConfig,
            parameters(MiniVIDITDataModule, follow=True),
            set(),
            {"augment"},
        ),
        (config.AugmentConfig, parameters(JointAugmentation), set(), set()),
        (config.NetConfig, parameters(S3Net), set(), set()),
        (config.LossConfig, parameters(CompositeLoss), set(), {"extra_terms"}),
        (config.MetricsConfig, parameters(RelightMetrics), set(), set()),
        (config.OptimizerConfig, parameters(torch.optim.AdamW), {"params"}, set()),
        (config.SchedulerConfig, parameters(torch.optim.lr_scheduler.StepLR), {"optimizer"}, set()),
        (
            config.ModuleConfig,
            parameters(RelightModule),
            set(),
            {"net", "loss", "optimizer", "scheduler", "metrics"},
        ),
    ]
    for schema, params, left_out, set_here in cases:
        fields = {f.name: f for f in dataclasses.fields(schema) if not f.name.startswith("_")}
        assert set(fields) == set(params) - left_out, schema.__name__
        for name, field in fields.items():
            default = params[name]
            if name in set_here or default is inspect.Parameter.empty:
                continue
            value = field.default_factory() if callable(field.default_factory) else field.default
            expected = list(default) if isinstance(default, tuple) else default
            assert value == expected, (schema.__name__, name)
