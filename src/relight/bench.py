"""Benchmarks (not tests): ``relight-bench forward`` times S3Net's forward pass on the CPU/GPU.

Prints one JSON record per measurement (size, mode, median seconds, peak memory) and,
with ``--output``, saves them. Random weights: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from relight.models import S3Net


def time_forward(
    model: torch.nn.Module, size: int, device: torch.device, repeats: int, warmup: int
) -> list[float]:
    """Wall-clock seconds of ``repeats`` batch-1 forward passes at ``size``², after ``warmup``."""
    x = torch.rand(1, model.in_channels, size, size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def peak_memory_mb(device: torch.device) -> float:
    """Peak resident memory of this process (CPU) or peak allocated CUDA memory, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward(args: argparse.Namespace) -> list[dict[str, object]]:
    """Median forward latency of the default S3Net at each size."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = S3Net(encoder_weights="none").eval().to(device)
    records = []
    for size in args.sizes:
        times = time_forward(model, size, device, args.repeats, args.warmup)
        record = {
            "bench": "forward",
            "size": size,
            "mode": "eager-fp32",
            "batch": 1,
            "device": str(device),
            "threads": args.threads,
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
            "repeats": len(times),
            "peak_mem_mb": round(peak_memory_mb(device), 1),
        }
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-bench``."""
    parser = argparse.ArgumentParser(prog="relight-bench", description=__doc__)
    sub = parser.add_subparsers(dest="bench", required=True)
    fwd = sub.add_parser("forward", help="forward latency of the default S3Net")
    fwd.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    fwd.add_argument("--repeats", type=int, default=5)
    fwd.add_argument("--warmup", type=int, default=1)
    fwd.add_argument("--threads", type=int, default=2)
    fwd.add_argument("--device", default="cpu")
    fwd.add_argument("--output", type=Path, help="also write the records to this JSON file")
    args = parser.parse_args(argv)
    records = forward(args)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "python": sys.version.split()[0],
                "machine": platform.machine(), "processor": platform.processor()}  # fmt: skip
        args.output.write_text(json.dumps({"meta": meta, "records": records}, indent=2))


if __name__ == "__main__":
    main()
