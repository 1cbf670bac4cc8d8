"""Inference latency of S3Net in one execution mode (see :mod:`relight.models.execution`)."""

from __future__ import annotations

from typing import Any

import torch

from relight.bench.measure import current_memory_mb, peak_memory_mb, summary, timed, warm_up
from relight.models import S3Net
from relight.models.execution import prepare


def build_net(spec: dict[str, Any], **overrides: Any) -> S3Net:
    """The benchmarked S3Net: the paper's model (or ``spec['encoder']``), random weights
    (speed does not depend on their values)."""
    torch.manual_seed(0)
    return S3Net(encoder=spec.get("encoder", "res2net101d"), encoder_weights="none", **overrides)


def measure_forward(spec: dict[str, Any]) -> dict[str, Any]:
    """Median batch-``spec['batch']`` forward latency at ``spec['size']``² in ``spec['mode']``."""
    device = torch.device(spec["device"])
    run = prepare(build_net(spec), spec["mode"], device)
    size, batch = spec["size"], spec.get("batch", 1)
    x = torch.rand(batch, 8, size, size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = current_memory_mb(device)
    first = timed(lambda: run(x), device, repeats=1, warmup=0)[0]  # includes compilation
    warmup = 1 + warm_up(lambda: run(x), device, max(spec["warmup"] - 1, 0))
    times = timed(lambda: run(x), device, spec["repeats"], warmup=0)
    return {
        **summary(times, warmup),
        "first_call_s": round(first, 2),
        "model_mem_mb": round(before, 1),
        "peak_mem_mb": round(peak_memory_mb(device), 1),
    }
