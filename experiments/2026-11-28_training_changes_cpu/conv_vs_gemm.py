"""Nominal GFLOP/s of single fp32 3x3 convolutions (batch 3, VGG19's channel counts)
against torch's 2048² fp32 matmul, on this CPU's threads: whether the bench's
"of GEMM" ratio can exceed 100% without a timing error.

    python experiments/2026-11-28_training_changes_cpu/conv_vs_gemm.py
"""

import time

import torch


def rate(fn, flop: float, calls: int = 5) -> float:
    """GFLOP/s of ``fn`` after three warm-up calls."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return flop * calls / (time.perf_counter() - start) / 1e9


torch.set_num_threads(2)
with torch.no_grad():
    for channels, side in [(64, 256), (256, 64), (512, 32)]:
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        x = torch.rand(3, channels, side, side)
        flop = 2 * 3 * side * side * channels * channels * 9
        speed = rate(lambda conv=conv, x=x: conv(x), flop)
        print(f"conv 3x3, {channels} channels, {side}²: {speed:.0f} GFLOP/s")
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    print(f"matmul 2048²: {rate(lambda: a @ b, 2 * 2048**3):.0f} GFLOP/s")
