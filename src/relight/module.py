"""The LightningModule: S3Net + composite loss, optimiser from config, challenge metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchmetrics import MaxMetric

from relight.checkpoints import rng_states, set_rng_states
from relight.losses import CompositeLoss
from relight.metrics import RelightMetrics
from relight.models import S3Net
from relight.models.execution import begin_compiled_step, check_compile_mode
from relight.models.s3net import batch_input
from relight.panels import panel_rows, save_png

Batch = dict[str, Any]
log = logging.getLogger(__name__)
#: Frozen networks re-resolved by every run (VGG19 of the loss, LPIPS of the metrics): not
#: training state, so checkpoints neither store nor require them.
FROZEN_PREFIXES = ("loss.", "val_metrics.", "test_metrics.")

#: The progress bar's training loss (a host copy of ``train/loss``; not a logged metric).
BAR_LOSS = "loss"


class RelightModule(L.LightningModule):
    """Trains and evaluates S3Net.

    Args:
        net: the network (``relight.models.S3Net``).
        loss: the composite loss (returns the total and named terms).
        optimizer: a partial optimiser taking the parameters (paper: AdamW, lr 1e-4,
            betas (0.5, 0.999)).
        scheduler: a partial LR scheduler taking the optimiser, stepped every epoch
            (paper: StepLR(step_size=20, gamma=0.1)), or ``None``.
        metrics: keyword arguments of :class:`relight.metrics.RelightMetrics` (LPIPS
            backbone, its weights, whether LPIPS is required).
        panel_every_n_epochs: save (and log) an image panel of the first validation
            batch every N epochs; 0 disables panels.
        panel_rows: how many items a panel shows.
        max_nonfinite_steps: a step whose loss is NaN or infinite is skipped (its
            gradients are dropped, no optimiser step) and counted
            (``train/nonfinite_steps``); more than this many in a row stops training with
            ``FloatingPointError``.
        channels_last: keep the network's weights and inputs in channels_last layout.
        compile: ``torch.compile`` the network in place (state-dict keys unchanged).
        compile_mode: ``torch.compile``'s mode: ``default``, ``reduce-overhead`` (CUDA
            graphs: one launch per graph instead of thousands of kernels; a last, smaller
            batch of an epoch is a second graph to capture, so make an epoch a whole
            number of batches), ``max-autotune`` or ``max-autotune-no-cudagraphs``.
        compile_loss: compile the loss too (W-SSIM's many small kernels, the VGG19).
        compile_eval: run validation and test through the compiled network too. Off by
            default: they run it eagerly, which spares a second compilation (of the
            eval-mode graph, plus its CUDA graphs) for a few batches per epoch.

    Logs ``train/loss`` and each term (``train/charbonnier``, ...), with
    ``data.on_bad_item=skip`` ``train/bad_items`` and ``train/skipped_items``, ``val/psnr``,
    ``val/ssim``, ``val/lpips``, ``val/mps``, ``val/mps_best`` (LPIPS and MPS only when
    the LPIPS backbone is available) and the same ``test/`` keys.
    """

    def __init__(
        self,
        net: S3Net,
        loss: CompositeLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        metrics: dict[str, Any] | None = None,
        panel_every_n_epochs: int = 1,
        panel_rows: int = 4,
        max_nonfinite_steps: int = 5,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str = "default",
        compile_loss: bool = False,
        compile_eval: bool = False,
    ) -> None:
        super().__init__()
        check_compile_mode(compile_mode)
        # plain containers (not DictConfig) so that checkpoints load with weights_only=True
        metrics = _plain(metrics) or {}
        # partial optimisers are config, not state: kept out so checkpoints load with weights_only
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        # what rebuilds the network from a checkpoint (relight.checkpoints.net_from_checkpoint)
        self.hparams["net_config"] = net.hparams()
        self.net = net
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            self.net.compile(mode=compile_mode)
        self.loss = loss
        if compile_loss:
            self.loss.compile(mode=compile_mode)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_metrics = RelightMetrics(**metrics)
        self.test_metrics = self.val_metrics.fresh()  # one weight lookup, one warning
        self.val_mps_best = MaxMetric()
        self.val_ssim_best = MaxMetric()
        self._panel_batch: Batch | None = None
        self._restored_best: dict[str, float] = {}
        self.nonfinite_steps = 0  # skipped steps in this run
        # (loss, terms, items, names) of each batch since the last optimiser step
        self._pending: list[tuple[torch.Tensor, dict[str, torch.Tensor], int, list]] = []
        self._nonfinite_in_a_row = 0

    @property
    def lpips_available(self) -> bool:
        """Whether LPIPS (and so MPS) is computed."""
        return self.val_metrics.lpips_network is not None

    @property
    def selection_metric(self) -> str:
        """What checkpoints should monitor: ``val/mps``, or ``val/ssim`` without LPIPS."""
        return "val/mps" if self.lpips_available else "val/ssim"

    def forward(self, batch: Batch) -> torch.Tensor:
        """Relight a batch dict (``input``, ``guide``, depths) -> (B, 3, H, W) in [-1, 1];
        in eval mode, a compiled network runs eagerly unless ``compile_eval``."""
        x = batch_input(batch, self.net.config.depth).contiguous(memory_format=self.memory_format)
        if self.hparams.compile and not (self.training or self.hparams.compile_eval):
            with torch.compiler.set_stance("force_eager"):
                return self.net(x)
        return self.net(x)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        weights = {k: v for k, v in checkpoint["state_dict"].items() if v.is_floating_point()}
        flags = [torch.isfinite(v).all() for v in weights.values()]
        finite = torch.stack(flags).tolist() if flags else []
        bad = [k for k, ok in zip(weights, finite, strict=True) if not ok]  # one host sync
        if bad:
            raise FloatingPointError(
                f"refusing to write a checkpoint with non-finite weights ({len(bad)} tensors, "
                f"e.g. {bad[:3]}); the previous checkpoint is intact"
            )
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(FROZEN_PREFIXES)
        }
        best = {"mps": self.val_mps_best, "ssim": self.val_ssim_best}
        checkpoint["relight_best"] = {
            k: float(m.compute()) for k, m in best.items() if m.update_called
        }
        checkpoint["rng_states"] = rng_states()  # a resumed run draws what this one would

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(FROZEN_PREFIXES)
        }
        state.update({k: v for k, v in self.state_dict().items() if k.startswith(FROZEN_PREFIXES)})
        checkpoint["state_dict"] = state
        self._restored_best = dict(checkpoint.get("relight_best", {}))
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        self._mark_graph_step()
        prediction = self(batch)
        total, parts = self.loss(prediction, batch["target"])
        # checked in optimizer_step, once the backward pass is queued: a check here would make
        # the host wait for the forward pass before it could queue the backward one. Copies:
        # with CUDA graphs the next replay may reuse the outputs' memory.
        values = {name: value.clone() for name, value in parts.items()}
        self._pending.append(
            (total.detach().clone(), values, prediction.shape[0], batch.get("name", []))
        )
        for name in ("bad_items", "skipped_items"):  # data.on_bad_item=skip: run totals
            if name in batch:
                self.log(f"train/{name}", float(batch[name]), batch_size=prediction.shape[0])
        return total

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Any,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Run the step's forward and backward passes (the closure), then take the optimiser
        step only if every loss since the last step is finite (on every rank: DDP ranks skip
        together). This is the step's one host-device sync: made once the backward pass is
        queued, it reads whether the losses are finite and the loss the progress bar shows.
        Nothing else reads the device: ``train/loss`` and the terms go to the loggers as
        device tensors, and the bar gets ``loss`` as a host number (a device tensor in the
        bar would be copied to the host after every batch, whatever its refresh rate)."""
        if optimizer_closure is not None:
            optimizer_closure()
        pending, self._pending = self._pending, []
        totals = torch.stack([total for total, *_ in pending])
        loss = totals.mean()
        all_finite, shown = torch.stack([torch.isfinite(totals).all().to(loss), loss]).tolist()
        finite = self.trainer.strategy.reduce_boolean_decision(bool(all_finite), all=True)
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            self._skip_nonfinite(pending)
            return
        self._nonfinite_in_a_row = 0
        size = sum(items for *_, items, _ in pending)
        self.log("train/loss", loss, batch_size=size)
        # a CPU tensor: Lightning keeps it on the host, so the bar never waits for the GPU
        self.log(BAR_LOSS, torch.tensor(shown), prog_bar=True, logger=False, batch_size=size)
        for name in pending[0][1]:
            value = torch.stack([parts[name] for _, parts, *_ in pending]).mean()
            self.log(f"train/{name}", value, batch_size=size)
        # the closure already ran: the precision plugin gets the loss it returned
        optimizer.step(closure=lambda: loss)

    def _skip_nonfinite(self, pending: list[tuple[torch.Tensor, dict, int, list]]) -> None:
        self.nonfinite_steps += 1
        self._nonfinite_in_a_row += 1
        self.log("train/nonfinite_steps", float(self.nonfinite_steps), batch_size=1)
        total, parts, _, names = next((p for p in pending if not torch.isfinite(p[0])), pending[-1])
        terms = ", ".join(f"{k}={v.item():.4g}" for k, v in parts.items())
        message = (
            f"non-finite loss at global step {self.global_step} (total={total.item()}, {terms}; "
            f"items: {list(names)})"
        )
        limit = int(self.hparams.max_nonfinite_steps)
        if self._nonfinite_in_a_row > limit:
            raise FloatingPointError(
                f"{message}: {self._nonfinite_in_a_row} steps in a row (limit "
                f"model.max_nonfinite_steps={limit}). Lower the learning rate, check the data "
                "named above, or resume from the last checkpoint (it holds no NaN)."
            )
        log.warning("%s: step skipped (%d in a row)", message, self._nonfinite_in_a_row)

    def _evaluate(self, batch: Batch, metrics: RelightMetrics) -> torch.Tensor:
        if "target" not in batch:
            raise ValueError(
                "evaluation needs ground truth: the pairs folder has no target/ (give gt_dir)"
            )
        self._mark_graph_step()
        prediction = self(batch).clamp(0, 1)  # a copy: safe from the next graph replay
        metrics.update(prediction, batch["target"])
        return prediction

    def _mark_graph_step(self) -> None:
        compiled = self.hparams.compile or self.hparams.compile_loss
        begin_compiled_step(self.hparams.compile_mode if compiled else None)

    def on_train_start(self) -> None:
        # the sanity check's few batches must not count as a best score; a resumed run
        # starts from the best scores its checkpoint recorded
        self.val_mps_best.reset()
        self.val_ssim_best.reset()
        for name, value in self._restored_best.items():
            getattr(self, f"val_{name}_best").update(torch.tensor(value))

    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        prediction = self._evaluate(batch, self.val_metrics)
        if batch_idx == 0:
            self._panel_batch = {
                **{k: v for k, v in batch.items() if torch.is_tensor(v)},
                "prediction": prediction,
            }

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        for name, value in values.items():
            self.log(f"val/{name}", value, prog_bar=name in {"psnr", "mps"}, sync_dist=True)
        if "mps" in values:
            self.val_mps_best(values["mps"])
            self.log("val/mps_best", self.val_mps_best.compute(), sync_dist=True)
        self.val_ssim_best(values["ssim"])
        self.log("val/ssim_best", self.val_ssim_best.compute(), sync_dist=True)
        self._log_panel()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        for name, value in self.test_metrics.compute().items():
            self.log(f"test/{name}", value, sync_dist=True)

    def _log_panel(self) -> None:
        every = int(self.hparams.panel_every_n_epochs)
        batch, self._panel_batch = self._panel_batch, None
        if not every or batch is None or self.trainer.sanity_checking:
            return
        max_epochs = self.trainer.max_epochs
        last = max_epochs is not None and max_epochs > 0 and self.current_epoch + 1 >= max_epochs
        if ((self.current_epoch + 1) % every and not last) or not self.trainer.is_global_zero:
            return
        grid = panel_rows(
            batch, batch["prediction"], self.hparams.panel_rows, self.net.config.depth
        )
        folder = Path(self.trainer.default_root_dir) / "panels"
        path = save_png(grid, folder / f"epoch_{self.current_epoch:03d}.png")
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/panel", [str(path)], step=self.global_step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/panel", grid, self.global_step)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=self.net.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def _plain(value: Any) -> Any:
    """An OmegaConf container as plain dicts and lists (anything else unchanged)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value
