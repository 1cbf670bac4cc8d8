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
    assert resolved["run_name"] == experiment
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


def test_paper_experiment_matches_the_paper(tmp_path):
    cfg = compose_cfg("train", ["experiment=s3net_paper", "data.root=/x"], tmp_path)
    assert cfg.data.image_size is None and cfg.data.batch_size == 3
    assert cfg.trainer.max_epochs == 100
    assert cfg.model.optimizer.lr == 1e-4 and list(cfg.model.optimizer.betas) == [0.5, 0.999]
    assert cfg.model.scheduler.step_size == 20 and cfg.model.scheduler.gamma == 0.1
    assert (cfg.loss.charbonnier, cfg.loss.wssim, cfg.loss.perceptual) == (1.0, 1.1, 0.1)
    assert cfg.model.net.encoder == "res2net101d" and cfg.model.net.encoder_weights == "imagenet"


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
    assert changed == {key, "run_name", "variant", "tags"}


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
    ],
)
def test_typos_and_wrong_types_are_errors_naming_the_key(override, named, tmp_path):
    with pytest.raises(ConfigCompositionException, match=named.replace(".", r"\.")):
        compose_cfg("train", [override], tmp_path)


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
