"""``relight-eval ckpt_path=...``: metrics of a checkpoint on a split or a pairs folder.

Writes ``metrics.json`` and ``metrics.csv`` next to the relit images (``images/``) and a
grid of the worst and best cases (``cases.png``) into the run folder, and prints the table
with the identity baseline (output = input), then the table by kind of lighting change when
the items' lightings are known (:mod:`relight.lighting_breakdown`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from relight.checkpoints import describe_checkpoint, net_from_checkpoint
from relight.cli.errors import console_script
from relight.cli.validation import run_hydra_app
from relight.config import check_targets, register_configs
from relight.data import PairsDataset, index_pairs
from relight.data.cache import FileReader
from relight.data.transforms import check_image_size
from relight.devices import pick_device
from relight.evaluation import evaluate
from relight.metrics import RelightMetrics
from relight.paths import config_dir

log = logging.getLogger("relight.eval")
DESCRIPTION = (
    "relight-eval ckpt_path=CKPT [pairs_dir=DIR | split=val|test|shifted] [key=value ...]: "
    "metrics of a checkpoint against the identity baseline (conf/eval.yaml; docs/training.md)."
)
#: relight-eval's ``split`` -> the data module's set.
SPLITS = {"val": "val_set", "test": "test_set", "shifted": "shifted_val_set"}
register_configs()


def eval_dataset(cfg: DictConfig) -> Dataset:
    """The pairs folder when given, else the data config's ``split``: val, test (the test
    set, ``data.test_pairs_dir``) or shifted (the shifted validation set,
    ``data.shifted_pairs_dir``); a ``ValueError`` naming the key when the data config has
    no such set."""
    if cfg.image_size is not None:
        size = check_image_size(cfg.image_size, "image_size")
    else:
        size = check_image_size(cfg.data.image_size)
    if cfg.pairs_dir:
        allow_pickle = cfg.data.get("allow_pickle", True)
        pairs = index_pairs(cfg.pairs_dir, cfg.gt_dir, allow_pickle=allow_pickle)
        return PairsDataset(pairs, FileReader(size, allow_pickle))
    if cfg.split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got '{cfg.split}'")
    datamodule = instantiate(cfg.data, image_size=size)
    # a training run tests on the validation set when there is no test set; asked for the
    # test set by name, relight-eval does not swap one for the other
    if cfg.split == "test" and not getattr(datamodule, "has_separate_test_set", True):
        raise ValueError(
            "split=test: the data config has no test set (data.test_pairs_dir); give "
            "data.test_pairs_dir=DIR, or split=val for the validation set"
        )
    datamodule.prepare_data()
    datamodule.setup("test" if cfg.split == "test" else "validate")
    dataset = getattr(datamodule, SPLITS[cfg.split])
    if dataset is None:
        raise ValueError(
            f"split={cfg.split}: the data config has no shifted validation set "
            "(data.shifted_pairs_dir)"
        )
    return dataset


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path``; returns the summary written to ``metrics.json``."""
    check_targets(cfg)
    print(f"checkpoint: {describe_checkpoint(cfg.ckpt_path)}")
    net, _ = net_from_checkpoint(cfg.ckpt_path)
    dataset = eval_dataset(cfg)
    metrics = RelightMetrics(**OmegaConf.to_container(cfg.metrics, resolve=True))
    summary = evaluate(
        net,
        dataset,
        Path(cfg.paths.output_dir),
        metrics,
        device=pick_device(cfg.device, option="device"),
        batch_size=cfg.batch_size,
        identity_baseline=cfg.identity_baseline,
        save_images=cfg.save_images,
        grid_cases=cfg.grid_cases,
        mode=cfg.mode,
    )
    print(f"\n{cfg.ckpt_path} on {summary['images']} images:\n")
    print(summary["table"])
    print(f"\nwritten to {cfg.paths.output_dir} (metrics.json, metrics.csv, images/, cases.png)")
    return summary


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def main(cfg: DictConfig) -> None:
    if cfg.extras.get("print_config"):
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    console_script("relight-eval")(run_eval)(cfg)


def cli() -> None:
    """Console script: checks first (:func:`relight.cli.validation.run_hydra_app`)."""
    run_hydra_app("relight-eval", "eval", DESCRIPTION, main)


if __name__ == "__main__":
    cli()
