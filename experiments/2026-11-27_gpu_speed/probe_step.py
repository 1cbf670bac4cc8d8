"""First GPU probe: where the paper's training step (1024², batch 3, bf16-mixed, full
composite loss, AdamW) and the mini-VIDIT step (128²) spend their time, and what each
candidate speed-up buys. One JSON line per variant (median of timed steps after warm-up).

    python3 experiments/2026-11-27_gpu_speed/probe_step.py [--only NAME ...] > probe.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

from relight.bench.forward import build_net
from relight.losses import CompositeLoss


def _time(fn: Callable[[], object], warmup: int = 3, repeats: int = 10) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1000)
    return {"median_s": round(statistics.median(times), 5), "min_s": round(min(times), 5)}


def _setup(
    size: int,
    batch: int,
    channels_last: bool,
    fused: bool,
    compile_mode: str | None,
    encoder: str = "res2net101d",
    vgg_cl: bool = False,
):
    torch.manual_seed(0)
    net = build_net({"encoder": encoder}).cuda().train()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=layout)
    loss = CompositeLoss(vgg_weights="none", allow_random_init=True).cuda()
    if vgg_cl and "perceptual" in loss.terms:
        loss.terms["perceptual"].to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(
        net.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=fused, foreach=None if fused else True
    )
    x = torch.rand(batch, 8, size, size, device="cuda").contiguous(memory_format=layout)
    target = torch.rand(batch, 3, size, size, device="cuda")

    def forward_loss(x, target):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            prediction = net(x)
            total, _ = loss(prediction.float(), target)
        return total

    fl = torch.compile(forward_loss, mode=compile_mode) if compile_mode else forward_loss

    def step():
        total = fl(x, target)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, net, loss, x, target


def variant(name: str, size: int, batch: int, **kw) -> dict:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    step, *_ = _setup(size, batch, **kw)
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    result = _time(step, warmup=3 if not kw.get("compile_mode") else 5)
    return {
        "name": name,
        "size": size,
        "batch": batch,
        **{k: v for k, v in kw.items()},
        **result,
        "items_per_s": round(batch / result["median_s"], 1),
        "first_s": round(first, 1),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def loss_terms(size: int, batch: int) -> list[dict]:
    """Forward + backward of each loss term alone on a prediction that needs a gradient."""
    out = []
    loss = CompositeLoss(vgg_weights="none", allow_random_init=True).cuda()
    pred = torch.rand(batch, 3, size, size, device="cuda", requires_grad=True)
    target = torch.rand(batch, 3, size, size, device="cuda")
    for name, term in loss.terms.items():
        for cl in (False, True):
            if cl and name != "perceptual":
                continue
            if cl:
                term.to(memory_format=torch.channels_last)

            def run(term=term, name=name):
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=name == "perceptual"):
                    value = (
                        term(pred, target) if name == "perceptual" else term(pred.float(), target)
                    )
                value.backward()

            out.append(
                {
                    "name": f"loss-{name}{'-cl' if cl else ''}",
                    "size": size,
                    "batch": batch,
                    **_time(run),
                }
            )
    return out


def net_only(size: int, batch: int, channels_last: bool, encoder: str = "res2net101d") -> dict:
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = build_net({"encoder": encoder}).cuda().train().to(memory_format=layout)
    x = torch.rand(batch, 8, size, size, device="cuda").contiguous(memory_format=layout)

    def run():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = net(x)
        y.float().mean().backward()

    return {
        "name": f"net-fwd-bwd-{encoder}{'-cl' if channels_last else ''}",
        "size": size,
        "batch": batch,
        **_time(run),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    # (name, size, batch, channels_last, fused, compile mode, vgg_cl) of each step variant
    steps = [
        ("paper-base", 1024, 3, False, False, None, False),
        ("paper-fused", 1024, 3, False, True, None, False),
        ("paper-fused-cl", 1024, 3, True, True, None, False),
        ("paper-fused-cl-vggcl", 1024, 3, True, True, None, True),
        ("mini-b8", 128, 8, False, True, None, False),
        ("mini-b32", 128, 32, False, True, None, False),
        ("mini-b32-cl", 128, 32, True, True, None, False),
        ("mini-b32-graphs", 128, 32, False, True, "reduce-overhead", False),
        ("paper-compile", 1024, 3, True, True, "default", True),
    ]
    jobs: dict[str, Callable[[], object]] = {
        name: partial(
            variant,
            name,
            size,
            batch,
            channels_last=cl,
            fused=fused,
            compile_mode=mode,
            **({"vgg_cl": True} if vgg_cl else {}),  # recorded only where set, as it ran
        )
        for name, size, batch, cl, fused, mode, vgg_cl in steps
    }
    jobs["loss-terms"] = partial(loss_terms, 1024, 3)
    jobs["net-only"] = lambda: [net_only(1024, 3, False), net_only(1024, 3, True)]
    order = [*[s[0] for s in steps[:4]], "loss-terms", "net-only", *[s[0] for s in steps[4:]]]
    for name in order:
        job = jobs[name]
        if args.only and name not in args.only:
            continue
        try:
            result = job()
        except Exception as error:  # noqa: BLE001 - a probe records what failed and goes on
            result = {"name": name, "error": f"{type(error).__name__}: {str(error)[:300]}"}
        for record in result if isinstance(result, list) else [result]:
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
