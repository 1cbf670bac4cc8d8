import math
from pathlib import Path

import pytest
import torch

from relight.checkpoints import read_checkpoint
from relight.losses.composite import CompositeLoss
from relight.train import train


def nan_on_calls(monkeypatch, calls: set[int] | None) -> None:
    """Make CompositeLoss return NaN on the given call numbers (all calls when None)."""
    original = CompositeLoss.forward
    counter = {"n": 0}

    def forward(self, pred, target):
        total, parts = original(self, pred, target)
        counter["n"] += 1
        if calls is None or counter["n"] in calls:
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(CompositeLoss, "forward", forward)


def test_nonfinite_steps_are_skipped_and_counted(train_cfg, monkeypatch):
    nan_on_calls(monkeypatch, {1, 2})
    cfg = train_cfg("trainer.max_epochs=2", "evaluate=false", "test=false")
    metrics = train(cfg)
    assert metrics["train/nonfinite_steps"] == 2
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )
    assert math.isfinite(metrics["train/loss"])


def test_skipped_steps_do_not_update_the_weights(train_cfg, monkeypatch):
    nan_on_calls(monkeypatch, None)  # every step non-finite, below the limit
    cfg = train_cfg("model.max_nonfinite_steps=10", "evaluate=false", "test=false")
    metrics = train(cfg)
    assert metrics["train/nonfinite_steps"] == 2
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["optimizer_states"][0]["state"] == {}  # AdamW never updated a parameter


def test_too_many_nonfinite_steps_in_a_row_stop_with_a_clear_error(train_cfg, monkeypatch):
    nan_on_calls(monkeypatch, None)
    cfg = train_cfg("model.max_nonfinite_steps=1", "evaluate=false", "test=false")
    with pytest.raises(
        FloatingPointError, match=r"2 steps in a row \(limit model.max_nonfinite_steps=1\)"
    ) as info:
        train(cfg)
    assert "Image0" in str(info.value)  # names the items of the bad batch
    assert not list(Path(cfg.paths.output_dir).glob("checkpoints/*.ckpt"))


def test_the_limit_counts_nonfinite_steps_in_a_row_not_in_all(train_cfg, monkeypatch):
    """NaN, finite, NaN, finite under a limit of 1: never 2 in a row, so training ends."""
    nan_on_calls(monkeypatch, {1, 3})
    cfg = train_cfg(
        "trainer.max_epochs=2", "model.max_nonfinite_steps=1", "evaluate=false", "test=false"
    )
    metrics = train(cfg)
    assert metrics["train/nonfinite_steps"] == 2


def test_checkpoint_with_nonfinite_weights_is_refused(train_cfg):
    from hydra.utils import instantiate

    cfg = train_cfg()
    module = instantiate(cfg.model)  # the whole module, its loss included
    with pytest.raises(FloatingPointError, match="non-finite weights"):
        module.on_save_checkpoint({"state_dict": {"net.tail.weight": torch.tensor([float("nan")])}})
