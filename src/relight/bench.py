"""Benchmarks (not tests), one JSON record per measurement, saved with ``--output``.

- ``relight-bench forward``: S3Net's forward latency (random weights: speed does not
  depend on their values), median seconds and peak memory per size.
- ``relight-bench data``: data-loader items/s of the VIDIT DataModule at each resolution,
  with and without the decoded-data cache, for each worker count.
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


def write_bench_vidit(root: Path, size: int, scenes: int, lightings: int) -> float:
    """A VIDIT-layout folder of noise-textured RGBA PNGs; returns the mean PNG size in MB.

    Decoding cost depends on how well a PNG compresses; grain of sigma 3/255 on smooth
    shading and a checker texture gives files of about the size of VIDIT's 1024² renders.
    """
    import numpy as np
    from PIL import Image

    from relight.data.vidit import DIRECTIONS, TEMPERATURES

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    checker = ((xx * 8).astype(int) + (yy * 8).astype(int)) % 2
    combos = [(t, d) for t in TEMPERATURES for d in DIRECTIONS][:lightings]
    sizes = []
    for scene in range(scenes):
        depth = (0.3 + 0.7 * yy).astype(np.float32)
        np.save(root / f"Image{scene:03d}.npy", {"normalized_depth": depth, "ref_center_dis": 3.0})
        for t, d in combos:
            shade = 0.3 + 0.5 * (xx * rng.random() + yy * rng.random()) / 2 + 0.15 * checker
            rgb = shade[..., None] * rng.uniform(0.6, 1.0, size=3) + rng.normal(
                0, 3 / 255, (size, size, 3)
            )
            rgba = np.concatenate([np.clip(rgb, 0, 1), np.ones((size, size, 1))], axis=2)
            path = root / f"Image{scene:03d}_{t}_{d}.png"
            Image.fromarray((rgba * 255).astype(np.uint8), "RGBA").save(path)
            sizes.append(path.stat().st_size)
    return sum(sizes) / len(sizes) / 1e6


def data(args: argparse.Namespace) -> list[dict[str, object]]:
    """Items/s of the training loader for each (source size, image size, cache, workers)."""
    import tempfile

    from relight.data import VIDITDataModule

    torch.set_num_threads(args.threads)
    records = []
    with tempfile.TemporaryDirectory(prefix="relight-bench-data-") as tmp:
        root = Path(tmp) / "train"
        png_mb = write_bench_vidit(root, args.source_size, args.scenes, args.lightings)
        for size in args.sizes:
            for cached in (False, True):
                cache_dir = Path(tmp) / f"cache{size}" if cached else None
                build_s = None
                for workers in args.workers:
                    dm = VIDITDataModule(
                        root, image_size=size, val_scenes=[0, 1], batch_size=1,
                        num_workers=workers, cache_dir=cache_dir,
                    )  # fmt: skip
                    start = time.perf_counter()
                    dm.setup("fit")
                    if cached and build_s is None:
                        build_s = time.perf_counter() - start
                    loader = iter(dm.train_dataloader())
                    next(loader)  # worker start-up and first decode excluded
                    count, start = 0, time.perf_counter()
                    for _ in range(args.items):
                        try:
                            next(loader)
                        except StopIteration:
                            break
                        count += 1
                    seconds = time.perf_counter() - start
                    record = {
                        "bench": "data", "source_size": args.source_size, "size": size,
                        "cache": cached, "workers": workers, "items": count,
                        "items_per_s": round(count / seconds, 2),
                        "items_per_s_per_worker": round(count / seconds / max(workers, 1), 2),
                        "cache_build_s": None if build_s is None else round(build_s, 2),
                        "png_mb": round(png_mb, 2), "peak_mem_mb": round(peak_memory_mb(torch.device("cpu")), 1),
                    }  # fmt: skip
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
    dat = sub.add_parser("data", help="data-loader items/s with and without the cache")
    dat.add_argument("--source-size", type=int, default=1024, help="side of the PNGs on disk")
    dat.add_argument("--sizes", type=int, nargs="+", default=[1024, 256])
    dat.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    dat.add_argument("--scenes", type=int, default=8)
    dat.add_argument("--lightings", type=int, default=6)
    dat.add_argument("--items", type=int, default=30, help="items timed per configuration")
    dat.add_argument("--threads", type=int, default=2)
    dat.add_argument("--output", type=Path, help="also write the records to this JSON file")
    args = parser.parse_args(argv)
    records = forward(args) if args.bench == "forward" else data(args)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "python": sys.version.split()[0],
                "machine": platform.machine(), "processor": platform.processor()}  # fmt: skip
        args.output.write_text(json.dumps({"meta": meta, "records": records}, indent=2))


if __name__ == "__main__":
    main()
