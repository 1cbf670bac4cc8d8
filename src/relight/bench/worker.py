"""``python -m relight.bench.worker SPEC_JSON``: one measurement in a fresh process; prints
``RECORD {json}`` (peak memory is then this measurement's own)."""

from __future__ import annotations

import json
import sys
import warnings

import torch

from relight.bench.measure import RECORD_PREFIX, count_flops, gemm_gflops


def run(spec: dict) -> dict:
    """Dispatch on ``spec['bench']``."""
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    device = torch.device(spec.get("device", "cpu"))
    bench = spec["bench"]
    if bench == "forward":
        from relight.bench.forward import measure_forward

        return measure_forward(spec)
    if bench == "train":
        from relight.bench.train_step import measure_train_step

        return measure_train_step(spec)
    if bench == "gemm":
        dtype = getattr(torch, spec["dtype"])
        return gemm_gflops(spec["n"], dtype, device)
    if bench == "forward_flops":
        from relight.bench.forward import build_net

        net = build_net(spec).eval()
        x = torch.rand(1, 8, spec["size"], spec["size"])
        with torch.no_grad():
            return {"flops": count_flops(lambda: net(x))}
    if bench == "train_flops":
        from relight.bench.train_step import train_step_flops

        return {"flops": train_step_flops(spec)}
    if bench == "accuracy":
        from relight.bench.accuracy import measure_accuracy

        return measure_accuracy(spec)
    raise ValueError(f"unknown benchmark {bench!r}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random-init warnings: weights do not matter here
        record = run(spec)
    print(RECORD_PREFIX + json.dumps({**spec, **record}), flush=True)


if __name__ == "__main__":
    main()
