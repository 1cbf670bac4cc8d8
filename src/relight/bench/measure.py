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


def summary(times: list[float]) -> dict[str, float]:
    """Median and minimum seconds."""
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "repeats": len(times),
    }


def gemm_gflops(n: int, dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """GFLOP/s of an ``n x n`` matmul (2 n³ FLOP): the machine's reference speed."""
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    times = timed(lambda: a @ b, device, repeats, warmup=2)
    return 2 * n**3 / statistics.median(times) / 1e9


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
