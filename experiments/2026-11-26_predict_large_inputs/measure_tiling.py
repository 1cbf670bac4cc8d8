"""Quality lost by tiling and by the reduced-size pass, against full-size inference.

The mini-VIDIT validation pairs are upscaled (images bicubic, depth bilinear) by ``--scale``
and relit three ways: in one full-size pass (the reference), in tiles (``--tile``, each
``--overlaps``) and in one reduced-size pass with the detail added back, both under a
budget of ``tile²`` pixels. Prints one JSON record per (model, method) with the mean
PSNR/SSIM of each against the full-size output and against the (upscaled) ground truth.

    python experiments/2026-11-26_predict_large_inputs/measure_tiling.py \\
        --pairs data/minividit/validation --checkpoint CKPT --scale 4 --tile 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from relight.any_size import SizePolicy, relight_any_size
from relight.checkpoints import net_from_any_checkpoint
from relight.data.pairs import index_pairs
from relight.data.photo_pairs import DepthOptions, read_pair
from relight.data.transforms import resize_depth, resize_image
from relight.metrics import psnr, ssim
from relight.models import S3Net
from relight.models.s3net import batch_input


def upscaled_items(pairs_dir: Path, scale: int) -> list[dict]:
    items = []
    for pair in index_pairs(pairs_dir):
        item = read_pair(pair, DepthOptions())
        size = (item["input"].shape[-2] * scale, item["input"].shape[-1] * scale)
        for key in ("input", "guide", "target"):
            item[key] = resize_image(item[key], size)
        for key in ("input_depth", "guide_depth"):
            item[key] = resize_depth(item[key][0], size)[None]
        items.append(item)
    return items


def scores(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    return float(psnr(a, b)), float(ssim(a.double(), b.double()))


def measure(net: S3Net, items: list[dict], tile: int, overlaps: list[int]) -> dict[str, dict]:
    methods = {f"tile {tile}, overlap {o}": SizePolicy(tile * tile, tile, o) for o in overlaps}
    methods[f"downscale to {tile}²"] = SizePolicy(tile * tile, tile, 0, "downscale")
    rows: dict[str, list] = {name: [] for name in ["full", *methods]}
    for item in items:
        batch = {k: v[None] for k, v in item.items() if torch.is_tensor(v)}
        x = batch_input(batch, net.config.depth)
        start = time.perf_counter()
        full = relight_any_size(net, x, SizePolicy(max_pixels=10**9), net.min_size)
        rows["full"].append(
            (100.0, 1.0, *scores(full, batch["target"]), time.perf_counter() - start)
        )
        for name, policy in methods.items():
            start = time.perf_counter()
            out = relight_any_size(net, x, policy, net.min_size)
            seconds = time.perf_counter() - start
            rows[name].append((*scores(out, full), *scores(out, batch["target"]), seconds))
    keys = ("psnr_vs_full", "ssim_vs_full", "psnr_vs_gt", "ssim_vs_gt", "seconds")
    return {
        name: {k: round(statistics.fmean(r[i] for r in values), 4) for i, k in enumerate(keys)}
        for name, values in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, action="append", default=[])
    parser.add_argument("--random-paper-model", action="store_true")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--limit", type=int, help="only the first N pairs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = upscaled_items(args.pairs, args.scale)[: args.limit]
    nets = {str(c): net_from_any_checkpoint(c)[0] for c in args.checkpoint}
    if args.random_paper_model:
        torch.manual_seed(0)
        nets["paper S3Net, random init"] = S3Net(encoder_weights="none")
    for name, net in nets.items():
        results = measure(net.eval(), items, args.tile, args.overlaps)
        size = tuple(items[0]["input"].shape[-2:])
        for method, values in results.items():
            record = {"model": name, "size": size, "pairs": len(items), "method": method}
            print(json.dumps(record | values), flush=True)


if __name__ == "__main__":
    main()
