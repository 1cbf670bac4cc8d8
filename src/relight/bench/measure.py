"""Measurement helpers shared by the benchmarks: timing, peak memory, GEMM speed, FLOPs,
and running one measurement in a fresh process (so that its peak memory is its own)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

RECORD_PREFIX = "RECORD "


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU), so wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    times = []
    for i in range(warmup + repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


#: Warm-up goes on until the last ``STEADY_WINDOW`` calls agree within ``STEADY_SPREAD``
#: (``(max - min) / min``): oneDNN's bf16 channels-last kernels, cuDNN's autotuner and
#: CUDA's allocator take several calls to settle, and one warm-up call is not enough.
STEADY_WINDOW = 3
STEADY_SPREAD = 0.10
#: The shortest time taken at face value (a tiny GEMM can read 0 s).
CLOCK_RESOLUTION_S = 1e-7
#: A row whose median is this much above its minimum ran on a noisy machine: flagged.
NOISY_SPREAD = 0.25


def warm_up(
    fn: Callable[[], Any],
    device: torch.device,
    min_calls: int,
    max_calls: int = 20,
    max_seconds: float = 60.0,
) -> int:
    """Call ``fn`` until its times settle (see :data:`STEADY_SPREAD`): at least
    ``min_calls``, at most ``max_calls`` calls or ``max_seconds``. Returns the calls made."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_calls:
        times += timed(fn, device, repeats=1, warmup=0)
        recent = times[-STEADY_WINDOW:]
        settled = len(recent) == STEADY_WINDOW and spread(recent) <= STEADY_SPREAD
        if len(times) >= min_calls and (settled or time.perf_counter() - start > max_seconds):
            break
    return len(times)


def spread(times: list[float]) -> float:
    """``(max - min) / min`` of a few times: 0 when they agree."""
    return (max(times) - min(times)) / max(min(times), CLOCK_RESOLUTION_S)


def peak_memory_mb(device: torch.device) -> float:
    """Peak resident memory of this process (CPU) or peak allocated CUDA memory, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_memory_mb(device: torch.device) -> float:
    """Resident memory now (CPU) or allocated CUDA memory now, in MiB."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def summary(times: list[float], warmup: int) -> dict[str, Any]:
    """Median and minimum seconds, the calls it took to settle, and whether the median is
    more than :data:`NOISY_SPREAD` above the minimum (a noisy machine: ``noisy``)."""
    median, best = statistics.median(times), max(min(times), CLOCK_RESOLUTION_S)
    return {
        "median_s": round(median, 4),
        "min_s": round(best, 4),
        "repeats": len(times),
        "warmup": warmup,
        "spread": round((median - best) / best, 3),
        "noisy": (median - best) / best > NOISY_SPREAD,
    }


def gemm_gflops(n: int, dtype: torch.dtype, device: torch.device, repeats: int = 5) -> dict:
    """GFLOP/s of an ``n x n`` matmul (2 n³ FLOP), the machine's reference speed, measured
    like every row (warmed up until steady; median, and the minimum as ``peak``)."""
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    warmup = warm_up(lambda: a @ b, device, min_calls=2)
    times = [max(t, CLOCK_RESOLUTION_S) for t in timed(lambda: a @ b, device, repeats, 0)]
    record = summary(times, warmup)
    return {
        "gflops": round(2 * n**3 / statistics.median(times) / 1e9, 1),
        "peak_gflops": round(2 * n**3 / min(times) / 1e9, 1),
        **{k: record[k] for k in ("warmup", "spread", "noisy")},
    }


def count_flops(fn: Callable[[], Any]) -> float:
    """FLOPs of one call of ``fn`` (2 per multiply-add), counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def run_isolated(spec: dict[str, Any], timeout: float = 1200) -> dict[str, Any]:
    """Run one measurement (``relight.bench.worker``) in a fresh Python process."""
    result = subprocess.run(
        [sys.executable, "-m", "relight.bench.worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in result.stdout.splitlines():
        if line.startswith(RECORD_PREFIX):
            return json.loads(line[len(RECORD_PREFIX) :])
    raise RuntimeError(
        f"benchmark {spec} failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
    )
