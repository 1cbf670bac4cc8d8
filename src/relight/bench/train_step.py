"""One S3Net training step (model + the paper's full composite loss, forward + backward +
AdamW), timed phase by phase so the loss's share of a step is visible."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from relight.bench.forward import build_net
from relight.bench.measure import current_memory_mb, peak_memory_mb, summary, sync, warm_up
from relight.losses import CompositeLoss
from relight.models.execution import begin_compiled_step

#: Training precisions: Lightning's names (``trainer.precision``).
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16}
#: Training modes of the bench: each names the switches ``relight-train`` turns the same
#: way (trainer.precision, model.channels_last, model.optimizer.fused, model.compile with
#: model.compile_mode and model.compile_loss, model.net.activation_checkpointing, and
#: trainer.benchmark: cuDNN's autotuner, ``cudnn_benchmark``, the ``-tuned`` modes).
TRAIN_MODES: dict[str, dict[str, Any]] = {
    "32-true": dict(precision="32-true"),
    "bf16-mixed": dict(precision="bf16-mixed"),
    "bf16-mixed-cl": dict(precision="bf16-mixed", channels_last=True),
    "bf16-mixed-fused": dict(precision="bf16-mixed", fused=True),
    "bf16-mixed-compile": dict(precision="bf16-mixed", fused=True, compile="default"),
    "bf16-mixed-graphs": dict(precision="bf16-mixed", fused=True, compile="reduce-overhead"),
    "bf16-mixed-fused-tuned": dict(precision="bf16-mixed", fused=True, cudnn_benchmark=True),
    "bf16-mixed-graphs-tuned": dict(
        precision="bf16-mixed", fused=True, compile="reduce-overhead", cudnn_benchmark=True
    ),
    "32-true-ckpt": dict(precision="32-true", checkpointing=True),
    "bf16-mixed-cl-ckpt": dict(precision="bf16-mixed", channels_last=True, checkpointing=True),
}
PHASES = ("forward", "loss", "backward", "optimizer")
#: What a training mode changes in training: every row records the composite loss of each
#: of its steps (``losses``), all on one fixed batch from the same initial weights, and the
#: table compares step 1 (before any update: the forward and loss numerics) and this step
#: (after ``LOSS_STEP - 1`` AdamW updates: backward and the optimiser too) with ``32-true``.
#: A row runs at least 1 + 2 warm-up + 1 timed steps.
LOSS_STEP = 4


@dataclass
class TrainStep:
    """What one benchmarked training step works on (see :func:`build_train_step`)."""

    device: torch.device
    net: torch.nn.Module
    loss: CompositeLoss
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    target: torch.Tensor
    dtype: torch.dtype | None  # the autocast dtype, None for float32
    compile_mode: str | None  # torch.compile's mode of the network and the loss

    def begin(self) -> None:
        """Call before each step (a new CUDA-graph iteration with ``reduce-overhead``)."""
        begin_compiled_step(self.compile_mode)


def build_train_step(spec: dict[str, Any]) -> TrainStep:
    """The paper's model (random weights), its full composite loss (a random VGG19 costs
    what the ImageNet one costs) and AdamW, on random batches of ``spec['batch']`` inputs
    of ``spec['size']``², at ``spec['precision']`` (Lightning's name), channels_last,
    fused AdamW, ``torch.compile`` of the network and the loss (``spec['compile']``: a mode,
    or absent), activation checkpointing and cuDNN's autotuner (``spec['cudnn_benchmark']``,
    set for the whole process: it times each convolution's algorithms at its first call
    with a new shape) as ``spec`` says."""
    device = torch.device(spec["device"])
    torch.backends.cudnn.benchmark = bool(spec.get("cudnn_benchmark"))
    net = build_net(spec, activation_checkpointing=spec.get("checkpointing", False))
    layout = torch.channels_last if spec.get("channels_last") else torch.contiguous_format
    net = net.to(device).train().to(memory_format=layout)
    loss = CompositeLoss(vgg_weights="none", allow_random_init=True).to(device)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=spec.get("fused") or None
    )
    if spec.get("compile"):
        net.compile(mode=spec["compile"])
        loss.compile(mode=spec["compile"])
    size, batch = spec["size"], spec["batch"]
    data = torch.Generator().manual_seed(1)  # the same batch in every mode, on every device
    x = torch.rand(batch, 8, size, size, generator=data).to(device)
    x = x.contiguous(memory_format=layout)
    target = torch.rand(batch, 3, size, size, generator=data).to(device)
    dtype = PRECISIONS[spec["precision"]]
    return TrainStep(device, net, loss, optimizer, x, target, dtype, spec.get("compile"))


def measure_train_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Median step time and its split at ``spec['size']``², batch ``spec['batch']``, and the
    loss of every step (``losses``, see :data:`LOSS_STEP`)."""
    parts = build_train_step(spec)
    device, net, loss, optimizer = parts.device, parts.net, parts.loss, parts.optimizer
    x, target, dtype = parts.x, parts.target, parts.dtype
    losses: list[torch.Tensor] = []

    def step() -> list[float]:
        parts.begin()
        marks = [time.perf_counter()]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            prediction = net(x)
            sync(device)
            marks.append(time.perf_counter())
            total, _ = loss(prediction, target)  # as RelightModule.training_step
            sync(device)
            marks.append(time.perf_counter())
        total.backward()
        sync(device)
        marks.append(time.perf_counter())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        marks.append(time.perf_counter())
        losses.append(total.detach().clone())  # untimed; a copy: safe from the next replay
        return [b - a for a, b in zip(marks, marks[1:], strict=False)]

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = current_memory_mb(device)
    first = time.perf_counter()
    step()  # compilation, cuDNN's autotuner, AdamW's state
    first = time.perf_counter() - first
    warmup = 1 + warm_up(step, device, spec["warmup"], max_calls=10)
    splits = [step() for _ in range(spec["repeats"])]
    record = summary([sum(s) for s in splits], warmup)
    for i, phase in enumerate(PHASES):
        record[f"{phase}_s"] = round(statistics.median(s[i] for s in splits), 4)
    record["loss_share"] = round(record["loss_s"] / record["median_s"], 3)
    record.update(
        first_step_s=round(first, 2),
        model_mem_mb=round(before, 1),
        peak_mem_mb=round(peak_memory_mb(device), 1),
        losses=torch.stack(losses).double().tolist(),
    )
    return record


def train_step_flops(spec: dict[str, Any]) -> float:
    """FLOPs of one float32 training step (model and loss, forward and backward)."""
    from relight.bench.measure import count_flops

    net = build_net(spec).train()
    loss = CompositeLoss(vgg_weights="none", allow_random_init=True)
    x = torch.rand(spec["batch"], 8, spec["size"], spec["size"])
    target = torch.rand(spec["batch"], 3, spec["size"], spec["size"])

    def step() -> None:
        total, _ = loss(net(x), target)
        total.backward()

    return count_flops(step)
