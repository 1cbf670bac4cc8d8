"""What validating a compiled S3Net through its compiled graph costs in compile time.

A network compiled with ``Module.compile`` gets one graph per mode: training (forward and
backward) and, when validation calls it too, eval (forward only, batch norm frozen). This
times the first eval-mode call of the paper's S3Net (Res2Net-101, random weights) compiled
in place, against the same call eager, with Inductor's caches off (a cold compile, as on a
fresh machine). Run from the project root:

    TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 .venv/bin/python \
        experiments/2026-11-28_eager_validation_cpu/eval_compile.py [SIZE] [BATCH]
"""

from __future__ import annotations

import sys
import time

import torch

from relight.models import S3Net


def first_and_next(net: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Seconds of the first and of the second eval-mode call."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with torch.no_grad():
            net(x)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.manual_seed(0)
    net = S3Net(encoder_weights="none", allow_random_init=True).eval()
    x = torch.rand(batch, 8, size, size)
    eager = first_and_next(net, x)
    net.compile()
    compiled = first_and_next(net, x)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {size}², batch {batch}")
    print(f"eager eval call: first {eager[0]:.2f} s, next {eager[1]:.3f} s")
    print(f"compiled eval call: first {compiled[0]:.1f} s (compiling), next {compiled[1]:.3f} s")


if __name__ == "__main__":
    main()
