"""Training speed as users feel it: items per second of wall time, data loading and
validation included (the ``train/items_per_s`` the GPU targets are measured by)."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


class TrainingThroughput(L.Callback):
    """Logs ``train/items_per_s`` (items trained per second since training started, every
    epoch: loading, validation and compilation included) and ``train/items_per_s_warm``
    (the same from the end of the first epoch: compilation and warm-up excluded), and
    prints both when training ends. Counting reads batch shapes only: no device sync."""

    def __init__(self) -> None:
        self.items = 0
        self.start: float | None = None
        self.warm: tuple[float, int] | None = None  # (time, items) at the first epoch's end

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.items, self.start, self.warm = 0, time.perf_counter(), None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.items += len(batch["target"]) * trainer.world_size

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rates = self.rates()
        if self.warm is None:
            self.warm = (time.perf_counter(), self.items)
        for name, value in rates.items():
            pl_module.log(f"train/{name}", value, batch_size=1)

    def rates(self) -> dict[str, float]:
        """``items_per_s`` and, after the first epoch, ``items_per_s_warm``."""
        if self.start is None:
            return {}
        now = time.perf_counter()
        rates = {"items_per_s": self.items / max(now - self.start, 1e-9)}
        if self.warm is not None and self.items > self.warm[1]:
            rates["items_per_s_warm"] = (self.items - self.warm[1]) / max(now - self.warm[0], 1e-9)
        return rates

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is None or not self.items:
            return
        seconds = time.perf_counter() - self.start
        rates = self.rates()
        warm = rates.get("items_per_s_warm")
        log.info(
            f"Trained {self.items} items in {seconds:.1f} s: {rates['items_per_s']:.1f} items/s "
            "(data loading, validation and compilation included)"
            + (f"; {warm:.1f} items/s after the first epoch" if warm else "")
        )
