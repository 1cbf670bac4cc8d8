"""The benchmark's measurement rules (fast, no timing): warm-up until the times settle,
median and minimum, rows on a noisy machine flagged."""

from __future__ import annotations

import json

import pytest
import torch

from relight.bench import measure
from relight.bench.suite import _spread

CPU = torch.device("cpu")


def fake_times(monkeypatch, seconds: list[float]) -> list[int]:
    """``measure.timed`` returns these times, one call after another; returns the call log."""
    calls: list[int] = []
    it = iter(seconds)

    def timed(fn, device, repeats, warmup):  # noqa: ANN001, ANN202
        calls.append(repeats)
        return [next(it) for _ in range(repeats)]

    monkeypatch.setattr(measure, "timed", timed)
    return calls


def test_warm_up_runs_until_the_times_settle(monkeypatch):
    # oneDNN bf16-cl on a CPU: slow first calls, then steady
    fake_times(monkeypatch, [3.2, 2.9, 1.5, 0.90, 0.88, 0.87, 0.87, 0.87])
    assert measure.warm_up(lambda: None, CPU, min_calls=1) == 6  # 0.90, 0.88, 0.87 agree
    fake_times(monkeypatch, [1.0, 1.0, 1.0, 1.0, 1.0])
    assert measure.warm_up(lambda: None, CPU, min_calls=4) == 4  # at least min_calls
    fake_times(monkeypatch, [1.0, 2.0] * 20)
    assert measure.warm_up(lambda: None, CPU, min_calls=1, max_calls=7) == 7  # never settles


def test_warm_up_stops_after_its_time_budget(monkeypatch):
    fake_times(monkeypatch, [1.0, 2.0] * 20)
    clock = iter(range(100))
    monkeypatch.setattr(measure.time, "perf_counter", lambda: float(next(clock)))
    assert measure.warm_up(lambda: None, CPU, min_calls=1, max_seconds=2.5) == 3


def test_summary_flags_a_noisy_row():
    noisy = measure.summary([3.22, 0.87, 3.40], warmup=1)  # the bf16-cl 256² row
    assert noisy["median_s"] == 3.22 and noisy["min_s"] == 0.87 and noisy["noisy"]
    assert noisy["spread"] == pytest.approx((3.22 - 0.87) / 0.87, abs=1e-3)
    assert "NOISY" in _spread(noisy)
    steady = measure.summary([1.00, 1.02, 1.05], warmup=4)
    assert steady["spread"] == 0.02 and not steady["noisy"] and steady["warmup"] == 4
    assert _spread(steady) == "spread 2%"


def test_gemm_is_measured_like_every_row(monkeypatch):
    n = 1000
    fake_times(monkeypatch, [1.0, 0.5, 0.5, 0.5, 0.5, 0.4, 0.6, 0.5, 0.5])
    record = measure.gemm_gflops(n, torch.float32, CPU)
    assert record["warmup"] == 4  # 1.0, then three agreeing calls
    assert record["gflops"] == 4.0  # 2 n³ FLOP in the median of 5 repeats, 0.5 s
    assert record["peak_gflops"] == 5.0  # in the fastest, 0.4 s
    assert not record["noisy"]


def test_profile_of_a_training_step_on_cpu():
    """relight-bench profile: the operators with the most self time, sorted, with their
    share of the step."""
    from relight.bench.profile import format_profile, profile_train_step

    spec = dict(device="cpu", size=64, batch=1, precision="32-true", encoder="resnet18")
    record = profile_train_step({**spec, "steps": 1, "top": 5, "warmup": 1})
    ops = record["ops"]
    assert len(ops) == 5 and record["step_s"] > 0 and record["warmup"] >= 1
    assert [op["self_ms_per_step"] for op in ops] == sorted(
        (op["self_ms_per_step"] for op in ops), reverse=True
    )
    assert any("conv" in op["name"] for op in ops[:2])  # S3Net is convolutions
    assert 0 < sum(op["share"] for op in ops) <= 1
    table = format_profile(record)
    assert "| CPU operators (most self time) |" in table and ops[0]["name"] in table


def test_kernel_timeline_counts_busy_time_and_gaps():
    """Overlapping kernels count once; the gaps between them are the idle time."""
    from types import SimpleNamespace

    from relight.bench.profile import _kernel_timeline

    def kernel(start: float, end: float) -> SimpleNamespace:
        span = SimpleNamespace(start=start, end=end)
        return SimpleNamespace(device_type=torch.autograd.DeviceType.CUDA, time_range=span)

    host = SimpleNamespace(device_type=torch.autograd.DeviceType.CPU, time_range=None)
    events = [kernel(0, 10), kernel(5, 20), kernel(50, 60), host, kernel(100, 130)]
    timeline = _kernel_timeline(events, wall_us=200.0, steps=2)
    assert timeline == {
        "kernels_per_step": 2.0,
        "device_busy_share": (20 + 10 + 30) / 200,
        "longest_gaps_us": [40.0, 30.0],
    }


def test_profile_counts_device_time_once(monkeypatch):
    """One ATen op launching one 100 µs kernel, under a 1000 µs annotation on the device
    timeline (a record_function such as ``Optimizer.step#AdamW.step``, 900 µs of it idle):
    the summary counted the op, its kernel and the annotation (shares 0.083, 0.083, 0.833)
    and the annotation as a kernel (busy share 1.0). It is one kernel, the whole of the
    device time, busy 10% of the wall time."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import EventList, FunctionEvent

    from relight.bench import profile as profile_module

    def event(id_: int, name: str, end: float, device: DeviceType, note: bool = False):
        return FunctionEvent(
            id=id_,
            name=name,
            thread=1,
            start_us=0,
            end_us=end,
            use_device="cuda",
            device_type=device,
            device_index=0,
            is_user_annotation=note,
            stack=[],
            input_shapes=[],
        )

    op = event(1, "aten::conv", 10, DeviceType.CPU)
    op.append_kernel("kernelA", 0, 100.0)
    kernel = event(2, "kernelA", 100, DeviceType.CUDA)
    note = event(3, "Optimizer.step#AdamW.step", 1000, DeviceType.CUDA, note=True)
    events = EventList([op, kernel, note], use_device="cuda")
    events._build_tree()

    class FakeProfile:
        def __init__(self, **_: object) -> None:
            pass

        def __enter__(self) -> FakeProfile:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def key_averages(self) -> EventList:
            return events.key_averages()

        def events(self) -> EventList:
            return events

    parts = SimpleNamespace(
        device=torch.device("cuda"),
        dtype=None,
        begin=lambda: None,
        net=lambda x: x,
        x=torch.zeros(1, requires_grad=True),
        target=torch.zeros(1),
        loss=lambda prediction, target: ((prediction - target).sum(), {}),
        optimizer=SimpleNamespace(step=lambda: None, zero_grad=lambda set_to_none: None),
    )
    monkeypatch.setattr(profile_module, "build_train_step", lambda spec: parts)
    monkeypatch.setattr(profile_module, "profile", FakeProfile)
    monkeypatch.setattr(profile_module, "warm_up", lambda step, device, n, max_calls: n)
    monkeypatch.setattr(profile_module, "sync", lambda device: None)
    clock = iter([0.0, 0.001])  # one step of 1000 µs
    monkeypatch.setattr(profile_module.time, "perf_counter", lambda: next(clock))
    spec = dict(size=64, batch=1, precision="32-true", steps=1)
    record = profile_module.profile_train_step(spec)

    assert record["ops"] == [
        {"name": "kernelA", "calls_per_step": 1.0, "self_ms_per_step": 0.1, "share": 1.0}
    ]
    assert record["total_self_ms_per_step"] == 0.1
    assert record["kernels_per_step"] == 1.0 and record["device_busy_share"] == 0.1
    assert "1 kernels per step (0.1 ms of kernel time); a kernel runs during 10%" in (
        profile_module.format_profile(record)
    )


def test_profile_command_turns_cudnn_autotuner_on_when_asked(monkeypatch, tmp_path, capsys):
    """relight-bench profile --cudnn-benchmark profiles what trainer.benchmark=true trains."""
    from relight.cli.bench import main

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # restored afterwards
    out = tmp_path / "profile.json"
    args = ["profile", "--size", "64", "--batch", "1", "--encoder", "resnet18", "--steps", "1"]
    main([*args, "--top", "3", "--cudnn-benchmark", "--output", str(out)])
    record = json.loads(out.read_text())
    assert record["cudnn_benchmark"] is True and torch.backends.cudnn.benchmark
    assert "32-true cuDNN autotuner on cpu" in capsys.readouterr().out
