"""Cold compile time of the parts of the training step (the paper's S3Net and full loss,
bf16 autocast, fused AdamW, 64², batch 1, 2 threads): run it with an empty cache,

    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python \\
        experiments/2026-11-28_compile_cache_cpu/compile_parts.py WHAT

WHAT: ``net`` (torch.compile of the whole network), ``loss`` (of the composite loss),
``both`` (what model.compile=true model.compile_loss=true does), ``blocks`` (each of the
encoder's 33 Bottle2neck blocks compiled on its own, with static shapes, and the loss;
the stem and the decoder stay eager).
"""

import sys
import time

import torch

from relight.bench.forward import build_net
from relight.losses import CompositeLoss

torch.set_num_threads(2)
what = sys.argv[1]
net = build_net({"encoder": "res2net101d"}).train()
loss = CompositeLoss(vgg_weights="none", allow_random_init=True)
if what in ("net", "both"):
    net.compile()
if what in ("loss", "both", "blocks"):
    loss.compile()
if what == "blocks":
    for module in net.modules():
        if type(module).__name__ == "Bottle2neck":
            module.compile(dynamic=False)  # dynamic shapes fail in Inductor here
optimizer = torch.optim.AdamW(net.parameters(), fused=True)
x, target = torch.rand(1, 8, 64, 64), torch.rand(1, 3, 64, 64)


def step() -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = loss(net(x).float(), target)
    total.backward()
    optimizer.step()
    optimizer.zero_grad()


start = time.perf_counter()
step()
first = time.perf_counter() - start
start = time.perf_counter()
step()
step()
print(f"{what}: first step {first:.1f} s, then {(time.perf_counter() - start) / 2:.3f} s a step")
