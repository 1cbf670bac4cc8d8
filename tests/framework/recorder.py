"""A test callback: one JSON line per training step (what was trained on, the loss)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L


class SimulatedCrash(RuntimeError):
    """Raised by :class:`StepRecorder` to stop a run the way a crash would."""


class StepRecorder(L.Callback):
    """Appends ``{"step", "epoch", "batch", "names", "loss", "rank", "world_size"}`` to
    ``path`` after each step (every DDP rank appends its own lines).

    ``crash_at_step`` raises :class:`SimulatedCrash` before that global step; ``sleep``
    slows each step down so that a test can kill the process at a chosen moment.
    """

    def __init__(self, path: str, crash_at_step: int | None = None, sleep: float = 0.0) -> None:
        self.path = Path(path)
        self.crash_at_step, self.sleep = crash_at_step, sleep

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self.crash_at_step is not None and trainer.global_step == self.crash_at_step:
            raise SimulatedCrash(f"simulated crash before step {trainer.global_step}")

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        record = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "batch": batch_idx,
            "names": list(batch["name"]),
            "loss": None if loss is None else float(loss),
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        time.sleep(self.sleep)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a :class:`StepRecorder` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class WeightSnapshot(L.Callback):
    """Saves the network's state dict to ``path`` when training starts (test helper)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        import torch

        torch.save({k: v.detach().clone() for k, v in module.net.state_dict().items()}, self.path)


class BarRecorder(L.Callback):
    """Appends the progress bar's metrics after each training batch to ``path``, one JSON
    line each (``{"batch": ..., "bar": {...}}``)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        bar = {k: v for k, v in trainer.progress_bar_metrics.items()}
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"batch": trainer.global_step, "bar": bar}) + "\n")


class ScriptedScores(L.Callback):
    """Makes each epoch's validation report ``ssim`` (and ``mps``) = ``scores[epoch]``,
    e.g. an epoch that does not improve; the sanity check keeps its real scores."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = list(scores)

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        import torch

        metrics, real = module.val_metrics, type(module.val_metrics).compute
        score = None if trainer.sanity_checking else self.scores[trainer.current_epoch]

        def compute() -> dict[str, Any]:
            values = real(metrics)
            if score is not None:
                values = {**values, "ssim": torch.tensor(score), "mps": torch.tensor(score)}
            return values

        metrics.compute = compute
