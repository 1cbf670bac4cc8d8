"""The benchmark suite runs end to end on a CPU (tiny sizes) and writes the documented
record schema; the GPU profile refuses clearly without a GPU."""

import json

import pytest
import torch

from relight.cli.bench import main

from .data.vidit_factory import write_pairs

pytestmark = pytest.mark.slow

FORWARD_KEYS = {
    "bench",
    "size",
    "batch",
    "mode",
    "device",
    "threads",
    "median_s",
    "min_s",
    "repeats",
    "warmup",
    "spread",
    "noisy",
    "peak_mem_mb",
    "gflop",
    "gflops",
    "gemm_ratio",
    "speedup",
}
TRAIN_KEYS = FORWARD_KEYS | {
    "precision",
    "channels_last",
    "checkpointing",
    "forward_s",
    "loss_s",
    "backward_s",
    "optimizer_s",
    "loss_share",
}


def test_suite_on_cpu_writes_the_schema(tmp_path, capsys):
    write_pairs(tmp_path / "minividit" / "validation", count=2, size=64)
    out = tmp_path / "bench.json"
    main(
        [
            "suite",
            "--encoder",
            "resnet18",
            "--sizes",
            "64",
            "--modes",
            "eager-fp32",
            "bf16-cl",
            "--train-sizes",
            "64",
            "--checkpointing-size",
            "64",
            "--train-batch",
            "1",
            "--repeats",
            "1",
            "--train-repeats",
            "1",
            "--gemm-n",
            "128",
            "--data-sizes",
            "--threads",
            "2",
            "--minividit",
            str(tmp_path / "minividit"),
            "--checkpoint",
            "none",
            "--output",
            str(out),
            "--table",
            str(tmp_path / "bench.md"),
        ]
    )
    result = json.loads(out.read_text())
    records = result["records"]
    forward = [r for r in records if r["bench"] == "forward"]
    assert [r["mode"] for r in forward] == ["eager-fp32", "bf16-cl"]
    assert all(FORWARD_KEYS <= set(r) for r in forward)
    assert forward[0]["speedup"] == 1.0 and forward[1]["speedup"] > 0
    train = [r for r in records if r["bench"] == "train"]
    assert [r["mode"] for r in train] == [
        "32-true",
        "bf16-mixed",
        "bf16-mixed-cl",
        "32-true-ckpt",
        "bf16-mixed-cl-ckpt",
    ]
    for r in train:
        assert TRAIN_KEYS <= set(r)
        parts = r["forward_s"] + r["loss_s"] + r["backward_s"] + r["optimizer_s"]
        assert parts == pytest.approx(r["median_s"], rel=0.05)
    accuracy = {r["mode"]: r for r in records if r["bench"] == "accuracy"}
    assert accuracy["eager-fp32"]["max_abs"] == 0 and 0 < accuracy["bf16-cl"]["max_abs"] < 0.1
    assert result["meta"]["gemm_gflops"]["float32"] > 0
    for gemm in result["meta"]["gemm"].values():  # measured like the rows
        assert gemm["warmup"] >= 2 and gemm["peak_gflops"] >= gemm["gflops"] > 0
    assert all(r["warmup"] >= 1 and r["spread"] >= 0 for r in forward + train)
    table = (tmp_path / "bench.md").read_text()
    assert "## Inference" in table and "## Training step" in table and "ΔPSNR" in table
    assert "| min s | spread |" in table and "NOISY above 25%" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_profile_without_gpu_says_so():
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        main(["suite", "--profile", "gpu", "--no-accuracy"])


def test_check_bench_measures_files_per_second_per_worker(tmp_path, capsys):
    out = tmp_path / "check.json"
    main(
        [
            "check",
            "--source-size",
            "64",
            "--scenes",
            "2",
            "--lightings",
            "3",
            "--workers",
            "0",
            "2",
            "--repeats",
            "1",
            "--output",
            str(out),
        ]
    )
    records = json.loads(out.read_text())["records"]
    assert [(r["workers"], r["files"], r["problems"]) for r in records] == [(0, 8, 0), (2, 8, 0)]
    for record in records:
        assert record["files_per_s"] == pytest.approx(record["files"] / record["seconds"], rel=1e-3)
    assert records[1]["files_per_s_per_worker"] == pytest.approx(
        records[1]["files_per_s"] / 2, abs=0.1
    )
