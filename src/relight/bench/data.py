"""Data-loader throughput: items/s of the VIDIT DataModule's training loader at each
resolution, with and without the decoded-data cache, for each worker count."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from relight.bench.measure import peak_memory_mb


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
        depth = ((0.3 + 0.7 * yy) * (1 - 0.01 * scene)).astype(np.float32)  # one per scene
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
                        root,
                        image_size=size,
                        val_scenes=[0, 1],
                        batch_size=1,
                        num_workers=workers,
                        cache_dir=cache_dir,
                    )
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
                        "bench": "data",
                        "source_size": args.source_size,
                        "size": size,
                        "cache": cached,
                        "workers": workers,
                        "items": count,
                        "items_per_s": round(count / seconds, 2),
                        "items_per_s_per_worker": round(count / seconds / max(workers, 1), 2),
                        "cache_build_s": None if build_s is None else round(build_s, 2),
                        "png_mb": round(png_mb, 2),
                        "peak_mem_mb": round(peak_memory_mb(torch.device("cpu")), 1),
                    }
                    print(json.dumps(record), flush=True)
                    records.append(record)
    return records
