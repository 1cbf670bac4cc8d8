"""Compose the real Hydra configs, shrunk to CI size, on tiny VIDIT-layout data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from relight.config import register_configs
from relight.paths import config_dir

from ..data.vidit_factory import write_pairs, write_vidit

LIGHTS = [(2500, "N"), (3500, "E"), (6500, "SW"), (4500, "W")]

#: Random weights everywhere, tiny sizes, one CPU: CI-sized runs of the real configs. The
#: ResNet-18 encoder keeps checkpoints at ~50 MB instead of ~600 MB (S3Net + AdamW state);
#: every code path is the same as with Res2Net-101.
TINY = [
    "model.net.encoder=resnet18",
    "model.net.encoder_weights=none",
    "model.metrics.lpips_weights=none",
    "loss.perceptual=0.0",
    "data.image_size=64",
    "data.batch_size=2",
    "data.samples_per_scene=1",
    "data.num_workers=0",
    "data.pin_memory=false",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "extras.print_config=false",
]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vidit")
    train = write_vidit(root / "train", scenes=range(4), lightings=LIGHTS, size=64)
    pairs = write_pairs(root / "validation", count=3, size=64)
    return {"train": train, "pairs": pairs}


def compose_cfg(config_name: str, overrides: list[str], output: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, outputs under ``output``."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output)
        cfg.paths.log_dir = str(output / "logs")
        cfg.paths.output_dir = str(output / "run")
        cfg.hydra.runtime.output_dir = str(output / "run")
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def train_cfg(tiny_data, tmp_path):
    """A factory: ``train_cfg(*overrides, run="run")`` -> a composed, shrunk train config."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        data = [
            "data=vidit",
            f"data.root={tiny_data['train']}",
            f"data.pairs_dir={tiny_data['pairs']}",
            "data.val_ratio=0.0",
        ]
        cfg = compose_cfg("train", [*data, *TINY, *overrides], tmp_path)
        with open_dict(cfg):  # as Hydra lays runs out: logs/<task>/<run_name>/<variant>_<run>
            folder = tmp_path / "logs" / cfg.task_name / cfg.run_name / f"{cfg.variant}_{run}"
            cfg.paths.output_dir = str(folder)
        return cfg

    return make


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """best.ckpt of one tiny training run (shared by the eval and notebook tests)."""
    from relight.train import train

    out = tmp_path_factory.mktemp("trained")
    data = [f"data.root={tiny_data['train']}", f"data.pairs_dir={tiny_data['pairs']}"]
    cfg = compose_cfg(
        "train",
        ["data=vidit", *data, "data.val_ratio=0.0", *TINY, "evaluate=false", "test=false"],
        out,
    )
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
