"""The benchmark suite runs end to end on a CPU (tiny sizes) and writes the documented
record schema; the GPU profile refuses clearly without a GPU."""

import dataclasses
import json

import pytest
import torch

from relight.bench.suite import TRAIN_MODE_DEFAULTS
from relight.bench.train_step import TRAIN_MODES
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
    "fused",
    "compile",
    "first_step_s",
    "forward_s",
    "loss_s",
    "backward_s",
    "optimizer_s",
    "loss_share",
    "losses",
    "loss_change_first",
    "loss_change_later",
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
    # what each training mode changes: the same batch and initial weights in every row, so
    # checkpointing (the same arithmetic, recomputed) changes nothing and bf16 a little
    changes = {r["mode"]: (r["loss_change_first"], r["loss_change_later"]) for r in train}
    assert changes["32-true-ckpt"] == pytest.approx((0, 0), abs=1e-6)
    for mode in ("bf16-mixed", "bf16-mixed-cl"):
        assert all(0 < abs(change) < 1e-2 for change in changes[mode]), changes
    assert train[0]["losses"][3] < train[0]["losses"][0]  # it trains
    accuracy = {r["mode"]: r for r in records if r["bench"] == "accuracy"}
    assert accuracy["eager-fp32"]["max_abs"] == 0 and 0 < accuracy["bf16-cl"]["max_abs"] < 0.1
    assert result["meta"]["gemm_gflops"]["float32"] > 0
    for gemm in result["meta"]["gemm"].values():  # measured like the rows
        assert gemm["warmup"] >= 2 and gemm["peak_gflops"] >= gemm["gflops"] > 0
    assert all(r["warmup"] >= 1 and r["spread"] >= 0 for r in forward + train)
    table = (tmp_path / "bench.md").read_text()
    assert "## Inference" in table and "## Training step" in table and "ΔPSNR" in table
    assert "## What each training mode changes" in table
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


@pytest.mark.parametrize(
    "mode",
    [
        "bf16-mixed-fused",
        "bf16-mixed-compile",
        "bf16-mixed-graphs",
        "bf16-mixed-fused-tuned",
        "bf16-mixed-graphs-tuned",
    ],
)
def test_train_modes_turn_the_switches_relight_train_turns(monkeypatch, mode):
    from relight.bench.suite import TRAIN_MODE_DEFAULTS
    from relight.bench.train_step import TRAIN_MODES, build_train_step

    tuned = mode.endswith("-tuned")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", not tuned)  # restored afterwards
    spec = {"device": "cpu", "encoder": "resnet18", "size": 32, "batch": 1}
    parts = build_train_step({**spec, **TRAIN_MODE_DEFAULTS, **TRAIN_MODES[mode]})
    assert parts.optimizer.defaults["fused"] is True
    assert parts.dtype == torch.bfloat16
    compiled = TRAIN_MODES[mode].get("compile")
    assert (parts.net._compiled_call_impl is not None) == bool(compiled)
    assert (parts.loss._compiled_call_impl is not None) == bool(compiled)
    assert torch.backends.cudnn.benchmark is tuned  # trainer.benchmark's switch


@pytest.mark.parametrize("flag", ["--modes", "--train-modes"])
def test_unknown_mode_is_a_usage_error(capsys, flag):
    with pytest.raises(SystemExit) as info:
        main(["suite", flag, "bf16-fast", "--no-accuracy"])
    assert info.value.code == 2
    assert f"{flag}: unknown ['bf16-fast']" in capsys.readouterr().err


def row_mode(spec) -> str | None:
    """The mode a row's spec measures (training specs carry the mode's switches)."""
    if spec["bench"] != "train":
        return spec.get("mode")
    every = {**TRAIN_MODE_DEFAULTS, "cudnn_benchmark": None}  # only -tuned modes name it
    switches = {name: {**every, **s} for name, s in TRAIN_MODES.items()}
    return next(m for m, s in switches.items() if all(spec.get(k) == v for k, v in s.items()))


def fake_measurements(median_s: float = 0.5, failing=("compile",), calls=None, stop_at=None):
    """``run_isolated`` without measuring: rows of ``median_s``; a row whose spec has a
    true key in ``failing``, or whose mode is in it, fails like a crashed benchmark; the row of mode ``stop_at``
    interrupts the suite as a kill would; ``calls`` collects (bench, mode) of each call."""

    def fake_run(spec, timeout=1200):
        if calls is not None:
            calls.append((spec["bench"], row_mode(spec)))
        if spec["bench"] == "gemm":
            return {"gflops": 100.0, "peak_gflops": 110.0, "spread": 0.0, "noisy": False}
        if spec["bench"] in ("forward_flops", "train_flops"):
            return {"flops": 1e9}
        if any(spec.get(key) for key in failing) or row_mode(spec) in failing:
            raise RuntimeError(f"benchmark {spec} failed (exit 1):\nTraceback\nDynamoError: boom")
        if stop_at is not None and row_mode(spec) == stop_at:
            raise KeyboardInterrupt
        timing = {"median_s": median_s, "min_s": median_s, "spread": 0.0, "noisy": False}
        timing["warmup"] = 2
        if spec["bench"] == "train":
            phases = {f"{p}_s": median_s / 4 for p in ("forward", "loss", "backward", "optimizer")}
            return {**spec, **timing, **phases, "loss_share": 0.25, "peak_mem_mb": 1.0}
        return {**spec, **timing, "peak_mem_mb": 1.0}

    return fake_run


def suite_args(**overrides):
    import argparse

    return argparse.Namespace(
        **{
            "device": "cpu",
            "threads": 1,
            "encoder": "resnet18",
            "gemm_n": 64,
            "sizes": [64],
            "modes": ["eager-fp32"],
            "compile_sizes": [],
            "repeats": 1,
            "warmup": 1,
            "train_sizes": [64],
            "train_modes": ["bf16-mixed", "bf16-mixed-compile", "bf16-mixed-fused"],
            "checkpointing_size": 0,
            "train_batch": 1,
            "train_repeats": 1,
            "accuracy": False,
            "data_sizes": [],
            **overrides,
        }
    )


def test_a_failed_row_is_recorded_and_the_suite_goes_on(monkeypatch, tmp_path):
    """make bench-gpu once stopped at its first failing row (torch.compile of ptwt on an
    H200): a failure is now one row of the table, and every other row is still measured."""
    from relight.bench import suite

    monkeypatch.setattr(suite, "run_isolated", fake_measurements())
    result = suite.run_suite(suite_args())
    train = [r for r in result["records"] if r["bench"] == "train"]
    assert [r["mode"] for r in train] == ["bf16-mixed", "bf16-mixed-compile", "bf16-mixed-fused"]
    assert train[1]["error"] == "DynamoError: boom" and "median_s" in train[2]
    table = suite.format_tables(result, 100.0)
    failed = next(line for line in table.splitlines() if "failed" in line)
    assert failed.startswith("| 64² | bf16-mixed-compile | failed: DynamoError: boom |")
    assert failed.count("|") == table.splitlines()[table.splitlines().index(failed) - 2].count("|")


def test_a_killed_suite_resumes_with_the_rows_it_lacks(monkeypatch, tmp_path):
    """A device call ends at 600 s, perhaps before make bench-gpu does: its file keeps every
    row measured, and --resume measures the missing ones only."""
    from relight.bench import suite

    output = tmp_path / "gpu.json"
    modes = ["32-true", "bf16-mixed-compile", "bf16-mixed-fused"]
    monkeypatch.setattr(suite, "run_isolated", fake_measurements(stop_at="bf16-mixed-fused"))
    with pytest.raises(KeyboardInterrupt):
        suite.run_suite(suite_args(output=output, train_modes=modes))
    killed = json.loads(output.read_text())
    assert killed["complete"] is False
    assert [(r["bench"], r["mode"], "error" in r) for r in killed["records"]] == [
        ("forward", "eager-fp32", False),
        ("train", "32-true", False),
        ("train", "bf16-mixed-compile", True),
    ]

    calls = []
    rerun = fake_measurements(median_s=0.25, failing=(), calls=calls)
    monkeypatch.setattr(suite, "run_isolated", rerun)
    result = suite.run_suite(suite_args(output=output, resume=True, train_modes=modes))
    # not the GEMM or the FLOP counts, not the rows it has: a failed row stays failed
    assert calls == [("train", "bf16-mixed-fused")]
    assert json.loads(output.read_text()) == result and result["complete"] is True
    assert result["meta"]["resumed"] and result["meta"]["gemm"] == killed["meta"]["gemm"]
    rows = {(r["bench"], r["mode"]): r for r in result["records"]}
    assert len(rows) == len(result["records"]) == 4
    assert rows["forward", "eager-fp32"] == killed["records"][0]  # kept as it was
    assert rows["train", "bf16-mixed-compile"] == killed["records"][2]
    assert rows["train", "32-true"]["median_s"] == 0.5
    assert rows["train", "bf16-mixed-fused"]["speedup"] == 2.0  # against the kept baseline


def test_a_killed_suite_leaves_its_speed_ups_and_relight_bench_table_renders_it(
    monkeypatch, tmp_path, capsys
):
    """make bench-gpu on an H200 was killed during its last training row: its file had no
    speed-ups for that size (they were set after the size's last row) and there was no
    table. Speed-ups are now set on every save, and ``relight-bench table`` renders the file."""
    from relight.bench import suite

    measured = fake_measurements(stop_at="bf16-mixed-fused")

    def fake_run(spec, timeout=1200):
        record = measured(spec, timeout)
        return {**record, "median_s": 1.0} if spec.get("precision") == "32-true" else record

    output, table = tmp_path / "gpu.json", tmp_path / "gpu.md"
    monkeypatch.setattr(suite, "run_isolated", fake_run)
    with pytest.raises(KeyboardInterrupt):
        suite.run_suite(
            suite_args(output=output, train_modes=["32-true", "bf16-mixed", "bf16-mixed-fused"])
        )
    killed = json.loads(output.read_text())
    train = {r["mode"]: r for r in killed["records"] if r["bench"] == "train"}
    assert killed["complete"] is False and list(train) == ["32-true", "bf16-mixed"]
    assert train["32-true"]["speedup"] == 1.0 and train["bf16-mixed"]["speedup"] == 2.0

    capsys.readouterr()
    main(["table", str(output), "--table", str(table)])
    printed = capsys.readouterr().out
    assert "**Incomplete**: 3 rows; `relight-bench suite --resume`" in printed
    assert "| 64² | bf16-mixed | 0.500 | 0.500 | 0% | 2.00x |" in printed
    assert table.read_text() == printed
    # a file written before speed-ups were saved renders the same
    for record in killed["records"]:
        record.pop("speedup", None)
    output.write_text(json.dumps(killed))
    main(["table", str(output)])
    assert capsys.readouterr().out == printed

    with pytest.raises(SystemExit) as info:
        main(["table", str(table)])
    assert info.value.code == 2
    assert f"{table}: not a relight-bench suite file (JSONDecodeError" in capsys.readouterr().err


def test_a_killed_resume_loses_nothing_and_changed_rows_are_measured(monkeypatch, tmp_path):
    from relight.bench import suite

    output = tmp_path / "gpu.json"
    monkeypatch.setattr(suite, "run_isolated", fake_measurements())
    first = suite.run_suite(suite_args(output=output))
    names = [(r["bench"], r["mode"]) for r in first["records"]]

    # killed while it measures the failed row again: the rows after it are still there
    retry = fake_measurements(median_s=0.25, failing=(), stop_at="bf16-mixed-compile")
    monkeypatch.setattr(suite, "run_isolated", retry)
    with pytest.raises(KeyboardInterrupt):
        suite.run_suite(suite_args(output=output, resume=True, retry_failed=True))
    killed = json.loads(output.read_text())
    assert killed["complete"] is False
    assert sorted((r["bench"], r["mode"]) for r in killed["records"]) == sorted(names)

    calls = []
    monkeypatch.setattr(suite, "run_isolated", fake_measurements(0.25, (), calls))
    done = suite.run_suite(suite_args(output=output, resume=True, retry_failed=True))
    assert calls == [("train", "bf16-mixed-compile")]
    assert [(r["bench"], r["mode"]) for r in done["records"]] == names
    assert not any("error" in r for r in done["records"])

    # another batch size is another measurement: every training row again, no other
    calls.clear()
    batch2 = suite.run_suite(suite_args(output=output, resume=True, train_batch=2))
    assert calls == [("train", m) for m in ("bf16-mixed", "bf16-mixed-compile", "bf16-mixed-fused")]
    assert [r["batch"] for r in batch2["records"] if r["bench"] == "train"] == [2, 2, 2]
    assert len(batch2["records"]) == len(names)


def fake_blocks(monkeypatch, calls, accuracy):
    """The suite's accuracy and data blocks without measuring: the accuracy block's
    ``run_isolated`` returns ``accuracy(spec)`` (or raises what it raises), the data rows
    have 1 item/s; ``calls`` collects ("accuracy" or "data", None) of each."""
    import relight.bench.data
    from relight.bench import suite

    measured = fake_measurements(calls=calls)

    def fake_run(spec, timeout=1200):
        if spec["bench"] != "accuracy":
            return measured(spec, timeout)
        calls.append(("accuracy", None))
        return accuracy(spec)

    def fake_data(args):
        calls.append(("data", None))
        return [
            {"bench": "data", "size": size, "cache": cache, "workers": workers}
            | {"items_per_s": 1, "items_per_s_per_worker": 1}
            for size in args.sizes
            for cache in (False, True)
            for workers in args.workers
        ]

    monkeypatch.setattr(suite, "run_isolated", fake_run)
    monkeypatch.setattr(relight.bench.data, "data", fake_data)


def test_resume_keeps_the_accuracy_and_data_blocks_until_their_inputs_change(monkeypatch, tmp_path):
    """One measurement makes all rows of either block: kept whole, or measured again."""
    from relight.bench import suite

    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    calls = []

    def accuracy(spec):
        scores = {"psnr": 20.0, "ssim": 0.5, "max_abs": 0.0, "d_psnr": 0.0, "d_ssim": 0.0}
        return {"pairs": 2, "weights": "best.ckpt", "modes": {m: scores for m in spec["modes"]}}

    fake_blocks(monkeypatch, calls, accuracy)
    args = dict(
        output=tmp_path / "bench.json",
        train_sizes=[],
        accuracy=True,
        minividit=tmp_path,
        checkpoint=str(checkpoint),
        data_sizes=[64],
        data_workers=[0, 1],
    )
    first = suite.run_suite(suite_args(**args))
    assert [r["bench"] for r in first["records"]] == ["forward", "accuracy"] + ["data"] * 4

    calls.clear()
    again = suite.run_suite(suite_args(**args, resume=True))
    assert calls == [] and again["records"] == first["records"]

    checkpoint.write_bytes(b"other weights")  # rewritten in place: measured again
    calls.clear()
    suite.run_suite(suite_args(**{**args, "data_workers": [0, 2]}, resume=True))
    assert calls == [("accuracy", None), ("data", None)]


def test_a_failed_block_is_recorded_and_resume_keeps_it_failed(monkeypatch, tmp_path):
    """The accuracy block rendered a mini-VIDIT where Mitsuba is missing: its failure
    stopped the whole suite, and every --resume measured it again. It is now an error row
    per mode, the suite goes on, --resume keeps it (--retry-failed measures it again) and
    the table says it failed."""
    from relight.bench import suite

    calls = []

    def accuracy(spec):
        raise RuntimeError("benchmark failed (exit 1):\nTraceback\nRendererMissingError: no")

    fake_blocks(monkeypatch, calls, accuracy)
    args = dict(
        output=tmp_path / "bench.json",
        train_sizes=[],
        modes=["eager-fp32", "bf16-cl"],
        accuracy=True,
        minividit=tmp_path,
        checkpoint="none",
        data_sizes=[64],
        data_workers=[0],
    )
    first = suite.run_suite(suite_args(**args))
    failed = [r for r in first["records"] if r["bench"] == "accuracy"]
    assert [(r["mode"], r["error"]) for r in failed] == [
        ("eager-fp32", "RendererMissingError: no"),
        ("bf16-cl", "RendererMissingError: no"),
    ]
    assert [r["bench"] for r in first["records"]][-2:] == ["data", "data"]
    table = suite.format_tables(first, 100.0)
    assert "## What each mode changes (? mini-VIDIT pairs, weights: ?)" in table
    assert "| bf16-cl | failed: RendererMissingError: no |" in table

    calls.clear()
    again = suite.run_suite(suite_args(**args, resume=True))
    assert calls == [] and again["records"] == first["records"]
    suite.run_suite(suite_args(**args, resume=True, retry_failed=True))
    assert calls == [("accuracy", None)]


@pytest.mark.parametrize(
    "folder, rendered",
    [
        ("a complete render with other settings", None),
        ("a stopped render", "its settings"),
        ("empty folders a render left", "fallback"),
        ("pairs the renderer did not make", None),
    ],
)
def test_accuracy_renders_a_mini_vidit_only_when_the_folder_has_none(
    monkeypatch, tmp_path, folder, rendered
):
    """The accuracy block used any folder with validation/input: the empty one a render
    stopped before its first picture left failed every later run with "no .png inputs";
    and it rendered where that folder was missing although a complete mini-VIDIT of other
    settings would do (data/minividit_gpu40 on a GPU machine without Mitsuba)."""
    import relight.data.synthetic
    from relight.bench.accuracy import FALLBACK_RENDER, minividit_pairs
    from relight.data.synthetic import RenderSettings

    ours = RenderSettings(train_scenes=40, shifted_scenes=0)
    summary = {"content": ours.content(), "settings": dataclasses.asdict(ours)}
    (tmp_path / "validation" / "input").mkdir(parents=True)
    if folder == "a complete render with other settings":
        (tmp_path / "minividit.json").write_text(json.dumps({**summary, "complete": True}))
    elif folder == "a stopped render":
        (tmp_path / "minividit.json").write_text(json.dumps({**summary, "complete": False}))
    elif folder == "pairs the renderer did not make":
        write_pairs(tmp_path / "validation", count=1, size=32)
    renders = []
    monkeypatch.setattr(
        relight.data.synthetic, "render_minividit", lambda *a, **k: renders.append(a)
    )
    assert minividit_pairs(tmp_path) == tmp_path / "validation"
    expected = {
        None: [],
        "its settings": [(tmp_path, ours)],
        "fallback": [(tmp_path, RenderSettings(**FALLBACK_RENDER))],
    }[rendered]
    assert [(root, settings.content()) for root, settings in renders] == [
        (root, settings.content()) for root, settings in expected
    ]


def test_speed_ups_need_their_reference_row(monkeypatch):
    """Without its eager fp32 row, no speed-up: the next mode is not a baseline."""
    from relight.bench import suite

    monkeypatch.setattr(suite, "run_isolated", fake_measurements(failing=("32-true",)))
    result = suite.run_suite(suite_args(train_modes=["32-true", "bf16-mixed"]))
    train = {r["mode"]: r for r in result["records"] if r["bench"] == "train"}
    assert "error" in train["32-true"] and train["bf16-mixed"]["speedup"] is None
    forward = next(r for r in result["records"] if r["bench"] == "forward")
    assert forward["speedup"] == 1.0
    table = suite.format_tables(result, 100.0)
    assert "| 64² | bf16-mixed | 0.500 | 0.500 | 0% | — |" in table


def test_the_table_gives_the_paper_run_in_hours(monkeypatch):
    """The paper's 100 VIDIT epochs (400,000 steps of batch 3 at 1024²) per measured mode,
    under the training table; nothing at other sizes or batches."""
    from relight.bench import suite

    monkeypatch.setattr(suite, "run_isolated", fake_measurements(0.09, failing=("32-true",)))
    modes = dict(train_modes=["32-true", "bf16-mixed"], train_sizes=[1024])
    paper = suite.format_tables(suite.run_suite(suite_args(**modes, train_batch=3)), 100.0)
    line = "400,000 steps of batch 3 at 1024²), training steps alone: bf16-mixed 10.0 h."
    assert line in paper and paper.index(line) > paper.index("| 1024² | bf16-mixed |")
    other = suite.format_tables(suite.run_suite(suite_args(**modes, train_batch=2)), 100.0)
    assert "The paper's run" not in other


def test_the_table_says_what_each_training_mode_changes_in_the_loss(monkeypatch):
    """Each training row's losses against 32-true's at step 1 and step LOSS_STEP; ``—``
    without a reference that has them (failed, or from before ``losses``: a file with no
    losses at all has no section)."""
    from relight.bench import suite
    from relight.bench.train_step import LOSS_STEP

    measured = fake_measurements()
    start = {"32-true": 2.0, "bf16-mixed": 2.002, "bf16-mixed-fused": 2.002}
    drift = {"32-true": 0.0, "bf16-mixed": 0.01, "bf16-mixed-fused": 0.02}

    def fake_run(spec, timeout=1200):
        record = measured(spec, timeout)
        if spec["bench"] == "train":
            mode = row_mode(spec)
            record["losses"] = [start[mode] + drift[mode] * step for step in range(5)]
        return record

    monkeypatch.setattr(suite, "run_isolated", fake_run)
    modes = ["32-true", "bf16-mixed", "bf16-mixed-fused"]
    result = suite.run_suite(suite_args(train_modes=modes))
    rows = {r["mode"]: r for r in result["records"] if r["bench"] == "train"}
    assert LOSS_STEP == 4 and rows["32-true"]["loss_change_later"] == 0.0
    assert rows["bf16-mixed"]["loss_change_first"] == pytest.approx(0.001)
    assert rows["bf16-mixed-fused"]["loss_change_later"] == pytest.approx(0.062 / 2.0)
    table = suite.format_tables(result, 100.0)
    title = "## What each training mode changes (the composite loss on one fixed batch"
    assert title in table and table.index(title) > table.index("| 64² | bf16-mixed-fused | 0.500")
    assert "| 64² | bf16-mixed-fused | 2.00200 | +1.0e-03 | 2.06200 | +3.1e-02 |" in table

    for record in result["records"]:  # the reference from before losses were recorded
        if record.get("mode") == "32-true":
            record.pop("losses")
    table = suite.format_tables(result, 100.0)
    assert "| 64² | bf16-mixed | 2.00200 | — | 2.03200 | — |" in table
    for record in result["records"]:
        record.pop("losses", None)
    assert "What each training mode changes" not in suite.format_tables(result, 100.0)

    def failing_reference(spec, timeout=1200):
        if spec["bench"] == "train" and row_mode(spec) == "32-true":
            raise RuntimeError("benchmark failed (exit 1):\nOutOfMemoryError: CUDA out of memory")
        return fake_run(spec, timeout)

    # a failed reference: no changes, and no row for it in the section
    monkeypatch.setattr(suite, "run_isolated", failing_reference)
    table = suite.format_tables(suite.run_suite(suite_args(train_modes=modes)), 100.0)
    section = table[table.index(title) :]
    assert "| 64² | bf16-mixed | 2.00200 | — | 2.03200 | — |" in section
    assert "| 64² | 32-true |" not in section


def test_resume_refuses_a_file_of_another_machine(tmp_path, capsys):
    output = tmp_path / "gpu.json"
    meta = {"torch": "2.0.0", "machine": "x86_64", "device": "cpu", "threads": 1}
    output.write_text(json.dumps({"meta": meta, "records": [], "complete": False}))
    for extra in (["--resume", "--output", str(output)], ["--resume"], ["--retry-failed"]):
        with pytest.raises(SystemExit) as info:
            main(["suite", "--no-accuracy", "--threads", "1", *extra])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--resume: {output} was measured elsewhere (torch '2.0.0' there, " in err
    assert "--resume continues the file of --output: give --output" in err
    assert "--retry-failed goes with --resume" in err
