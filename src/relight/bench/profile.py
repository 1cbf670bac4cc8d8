"""Where a training step's time goes: one step of :mod:`relight.bench.train_step` under
``torch.profiler`` (``relight-bench profile``).

It reports the operators with the most self time on the device that runs the step (CUDA
kernels on a GPU, CPU operators otherwise), the kernel launches per step, and, on a GPU,
how much of the step's wall time no kernel ran (launch overhead and host-device syncs show
there): what to remove first.

On a GPU, ``key_averages()`` holds three kinds of rows with device time: the kernels, the
CPU operators that launched them (their device time is their kernels' time again) and
``record_function`` annotations on the device timeline (``Optimizer.step#AdamW.step``,
``Torch-Compiled Region``: spans over other kernels, idle gaps included). Only the first
is device work: the table, its shares and the busy share count kernels alone, as torch's
own table does (``is_user_annotation``, torch >= 2.5; without it annotations would count).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from relight.bench.measure import sync, warm_up
from relight.bench.train_step import build_train_step


def profile_train_step(spec: dict[str, Any]) -> dict[str, Any]:
    """Profile ``spec['steps']`` training steps after a warm-up; returns the per-step wall
    time, the top ``spec['top']`` operators by self device time and, on CUDA, the kernels'
    busy share of the wall time and the longest idle gaps."""
    parts = build_train_step(spec)
    device = parts.device
    autocast = dict(dtype=parts.dtype or torch.float32, enabled=parts.dtype is not None)

    def step() -> None:
        parts.begin()
        with torch.autocast(device.type, **autocast):
            prediction = parts.net(parts.x)
            total, _ = parts.loss(prediction, parts.target)
        total.backward()
        parts.optimizer.step()
        parts.optimizer.zero_grad(set_to_none=True)

    warmup = warm_up(step, device, spec.get("warmup", 2), max_calls=10)
    steps = spec.get("steps", 3)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        wall = (time.perf_counter() - start) / steps
    events = prof.key_averages()
    if cuda:
        events = [e for e in events if _device_work(e)]
    self_time = _self_device_us if cuda else _self_cpu_us
    total_us = sum(self_time(e) for e in events) or 1.0
    top = sorted(events, key=self_time, reverse=True)[: spec.get("top", 15)]
    record: dict[str, Any] = {
        "bench": "profile",
        "device": str(device),
        "size": spec["size"],
        "batch": spec["batch"],
        "precision": spec["precision"],
        "channels_last": bool(spec.get("channels_last")),
        "fused": bool(spec.get("fused")),
        "compile": spec.get("compile"),
        "cudnn_benchmark": bool(spec.get("cudnn_benchmark")),
        "steps": steps,
        "warmup": warmup,
        "step_s": round(wall, 4),
        "total_self_ms_per_step": round(total_us / 1000 / steps, 3),  # the shares' whole
        "ops": [
            {
                "name": e.key,
                "calls_per_step": round(e.count / steps, 1),
                "self_ms_per_step": round(self_time(e) / 1000 / steps, 3),
                "share": round(self_time(e) / total_us, 4),
            }
            for e in top
        ],
    }
    if cuda:
        record.update(_kernel_timeline(prof.events(), wall * steps * 1e6, steps))
    return record


def _self_device_us(event: Any) -> float:
    """Self time on the GPU (the attribute was renamed in torch 2.4)."""
    value = getattr(event, "self_device_time_total", None)
    return float(value if value is not None else event.self_cuda_time_total)


def _self_cpu_us(event: Any) -> float:
    """Self time on the CPU (CPU operators' self times add up to their time, once)."""
    return float(event.self_cpu_time_total)


def _device_work(event: Any) -> bool:
    """Whether a profiler event is work on the GPU (a kernel, a copy or a memset), not the
    CPU operator that launched it nor a user annotation spanning other kernels."""
    return getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA and not (
        getattr(event, "is_user_annotation", False)
    )


def _kernel_timeline(events: Any, wall_us: float, steps: int) -> dict[str, Any]:
    """Kernel launches per step, the share of the wall time some kernel ran, the longest
    gaps between kernels (µs)."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in events if _device_work(e))
    busy, gaps, end = 0.0, [], None
    for start, stop in spans:
        if end is not None and start > end:
            gaps.append(start - end)
        if end is None or start > end:
            busy += stop - start
        elif stop > end:
            busy += stop - end
        end = stop if end is None else max(end, stop)
    return {
        "kernels_per_step": round(len(spans) / steps, 1),
        "device_busy_share": round(min(busy / wall_us, 1.0), 4) if wall_us else None,
        "longest_gaps_us": [round(g, 1) for g in sorted(gaps, reverse=True)[:5]],
    }


def format_profile(record: dict[str, Any]) -> str:
    """The markdown table of a profile record."""
    where = "GPU kernels" if record["device"].startswith("cuda") else "CPU operators"
    lines = [
        f"## One training step, {record['size']}² batch {record['batch']}, "
        f"{record['precision']}{' channels_last' if record['channels_last'] else ''}"
        f"{' fused AdamW' if record.get('fused') else ''}"
        f"{' compile=' + record['compile'] if record.get('compile') else ''}"
        f"{' cuDNN autotuner' if record.get('cudnn_benchmark') else ''} on "
        f"{record['device']}: {record['step_s']:.3f} s (mean of {record['steps']} steps after "
        f"{record['warmup']} warm-up)",
        "",
    ]
    if "kernels_per_step" in record:
        lines += [
            f"{record['kernels_per_step']:.0f} kernels per step"
            + (
                f" ({record['total_self_ms_per_step']:.1f} ms of kernel time)"
                if "total_self_ms_per_step" in record
                else ""
            )
            + "; a kernel runs during "
            f"{record['device_busy_share']:.0%} of the wall time; longest gaps (µs): "
            f"{', '.join(str(g) for g in record['longest_gaps_us'])}",
            "",
        ]
    lines += [
        f"| {where} (most self time) | calls per step | ms per step | share |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{op['name'][:70]}` | {op['calls_per_step']} | {op['self_ms_per_step']:.2f} | "
        f"{op['share']:.1%} |"
        for op in record["ops"]
    ]
    return "\n".join(lines)
