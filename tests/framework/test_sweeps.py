"""Sweeps through the real command line: multirun + report, DDP, submitit, Optuna."""

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ..metrics_reference import assert_means_of_rows, read_csv
from .conftest import TINY
from .recorder import read_records

pytestmark = pytest.mark.slow

NO_EXTRAS = ["evaluate=false", "test=false"]
REPO = Path(__file__).resolve().parents[2]  # importable test callbacks (tests.framework...)


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: int = 600,
    env: dict[str, str] | None = None,
    succeed: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``relight-train`` like a user does, from ``cwd`` (logs go below it), in ``env``
    (default: the tests' environment); it must exit 0, or fail when not ``succeed``."""
    env = dict(os.environ if env is None else env)
    # the tests' modules importable, before what the caller's PYTHONPATH names
    path = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(RELIGHT_ROOT=str(cwd), HYDRA_FULL_ERROR="1", PYTHONPATH=path)
    command = [sys.executable, "-m", "relight.train", *args]
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert (result.returncode == 0) == succeed, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def data_args(tiny_data) -> list[str]:
    return [
        "data=vidit",
        f"data.root={tiny_data['train']}",
        f"data.pairs_dir={tiny_data['pairs']}",
        "data.val_ratio=0.0",
    ]


def newest_multirun(root: Path) -> Path:
    """The newest sweep folder; ``multiruns/latest`` points at it, and ``logs/train/latest``
    is left to single runs."""
    multiruns = root / "logs" / "train" / "multiruns"
    runs = sorted(p for p in multiruns.iterdir() if not p.is_symlink())
    assert runs, "no multirun folder"
    assert (multiruns / "latest").resolve() == runs[-1].resolve()
    assert not (root / "logs" / "train" / "latest").exists()
    return runs[-1]


def test_multirun_ablation_then_report(tiny_data, tmp_path):
    run_cli(
        [
            "-m",
            "experiment=minividit_ablation",
            "ablation=full,no_attention",
            *data_args(tiny_data),
            *TINY,
        ],
        tmp_path,
    )
    sweep = newest_multirun(tmp_path)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_minividit_ablation_full", "1_minividit_ablation_no_attention"]
    report = subprocess.run(
        [sys.executable, "-m", "relight.cli.report", str(sweep)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| no_attention |" in report.stdout
    with open(sweep / "ablation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["variant"] for r in rows] == ["full", "no_attention", "identity (output = input)"]
    # each row is its job's evaluation (the per-image means of its metrics.csv)
    for row, job in zip(rows, jobs, strict=False):
        summary = json.loads((sweep / job / "eval" / "metrics.json").read_text())
        assert_means_of_rows(summary["results"], read_csv(sweep / job / "eval" / "metrics.csv"))
        for metric, value in summary["results"]["S3Net"].items():
            assert float(row[metric]) == pytest.approx(value, abs=1e-6), (job, metric)
    identity = json.loads((sweep / jobs[0] / "eval" / "metrics.json").read_text())["results"]
    for metric, value in identity["identity (output = input)"].items():
        assert float(rows[-1][metric]) == pytest.approx(value, abs=1e-6), metric
    assert (sweep / "ablation.png").stat().st_size > 1000
    assert "| 1 | no_attention |" in (sweep / "ablation.md").read_text()


def test_a_failed_job_does_not_stop_the_sweep(tiny_data, tmp_path):
    """Job 0 fails with an expected error (a checkpoint that does not exist), job 1 still
    trains, and the sweep reports the failure at its end. (Expected errors ended the
    process with SystemExit, which Hydra's launcher does not catch: job 1 never ran.)"""
    result = run_cli(
        [
            "-m",
            "run_name=partly",
            "ckpt_path=/nonexistent/last.ckpt,null",
            *data_args(tiny_data),
            *TINY,
            *NO_EXTRAS,
        ],
        tmp_path,
        succeed=False,
    )
    assert "checkpoint not found: /nonexistent/last.ckpt" in result.stderr
    jobs = sorted(newest_multirun(tmp_path).glob("*_partly_*"))
    assert [job.name.split("_")[0] for job in jobs] == ["0", "1"]
    assert not list(jobs[0].glob("checkpoints/*.ckpt"))
    assert (jobs[1] / "checkpoints" / "last.ckpt").is_file()


def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    """trainer=ddp_cpu (last, so TINY's trainer=cpu does not win): two gloo ranks train on
    different items, and the 4 items of an epoch make one step per rank (one process with
    batch 2 would take two)."""
    log = tmp_path / "steps.jsonl"
    recorder = [
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={log}",
    ]
    overrides = [*data_args(tiny_data), *TINY, *NO_EXTRAS, *recorder, "trainer=ddp_cpu"]
    run_cli(["run_name=ddp", *overrides], tmp_path)
    records = read_records(log)
    assert {r["world_size"] for r in records} == {2}
    assert sorted(r["rank"] for r in records) == [0, 1]  # one step on each rank
    names = [set(r["names"]) for r in records]
    assert not names[0] & names[1] and len(names[0] | names[1]) == 4
    runs = list((tmp_path / "logs" / "train" / "ddp").glob("*/checkpoints/last.ckpt"))
    assert len(runs) == 1
    import torch

    checkpoint = torch.load(runs[0], map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 1 and checkpoint["epoch"] == 0


def test_a_run_resumed_on_two_ranks_trains_each_item_once(tiny_data, tmp_path):
    """One process, 16 items an epoch in batches of 2, killed before step 7 (newest
    checkpoint: step 6, 12 items done); the same command with trainer=ddp_cpu resumes on
    two gloo ranks: the 12 items are 3 of the new global batches of 4, so the ranks train
    the 4 items left, then the next epoch: the items of a run that never stopped. (The
    second rank once found the run marked resumed and started from scratch, and the DDP
    run hung; the position counted one process's batches.)"""
    epoch = [
        "data.samples_per_scene=4",
        "data.image_size=48",
        "trainer.limit_train_batches=1.0",
        "trainer.max_epochs=2",
        "callbacks.step_checkpoint.every_n_train_steps=3",
    ]

    def recorded(label: str, run_name: str, *extra: str, succeed: bool = True) -> list[dict]:
        log = tmp_path / f"{label}.jsonl"
        recorder = [
            "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
            f"+callbacks.recorder.path={log}",
        ]
        command = [f"run_name={run_name}", *data_args(tiny_data), *TINY, *NO_EXTRAS, *epoch]
        run_cli([*command, *recorder, *extra], tmp_path, succeed=succeed)
        return read_records(log)

    def names(records: list[dict], epoch: int) -> Counter:
        return Counter(name for r in records if r["epoch"] == epoch for name in r["names"])

    reference = recorded("reference", "never_stopped")
    before = recorded("crashed", "grow", "+callbacks.recorder.crash_at_step=7", succeed=False)
    assert [r["step"] for r in before] == list(range(1, 8))
    after = recorded("resumed", "grow", "trainer=ddp_cpu")
    assert {r["world_size"] for r in after} == {2}
    assert [r["step"] for r in after if r["epoch"] == 0] == [7, 7]  # one step on each rank
    assert names(before[:6], 0) + names(after, 0) == names(reference, 0)
    assert names(after, 1) == names(reference, 1)


def test_submitit_local_sweep(tiny_data, tmp_path):
    run_cli(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "hydra.launcher.cpus_per_task=1",
            "experiment=minividit_ablation",
            "ablation=full,no_depth",
            *data_args(tiny_data),
            *TINY,
            *NO_EXTRAS,
        ],
        tmp_path,
    )
    sweep = newest_multirun(tmp_path)
    for job in ("0_minividit_ablation_full", "1_minividit_ablation_no_depth"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file(), job
    assert (sweep / ".submitit").is_dir()


def test_optuna_search_runs_two_trials(tiny_data, tmp_path):
    run_cli(
        [
            "experiment=minividit_cpu",
            "hparams_search=minividit_optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            *data_args(tiny_data),
            *TINY,
            *NO_EXTRAS,
        ],
        tmp_path,
    )
    sweep = newest_multirun(tmp_path)
    assert len([p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()]) == 2
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"loss.charbonnier", "loss.wssim", "model.optimizer.lr"}
    assert 0 < results["best_value"] <= 1  # val/ssim_best
