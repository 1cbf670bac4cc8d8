"""W&B as the comparison tool: a sweep's jobs are W&B runs of one group, named by their
variant, with the ablation switches at the top level of their config and the evaluation
as tables and images; ``relight-wandb sync`` / ``make wandb-sync`` upload offline runs."""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from relight import wandb_sync
from relight.paths import config_dir
from relight.train import resolved_config
from relight.wandb_runs import SWITCHES, ablation_switches, switch_tags
from relight.wandb_sync import offline_runs, sync_command

from .conftest import TINY, compose_cfg
from .test_sweeps import data_args, newest_multirun, run_cli
from .wandb_records import datastore, history, logged_table, records, run_settings

ROOT = Path(__file__).resolve().parents[2]
#: A host name that never resolves (RFC 2606).
BLACKHOLE = "relight-test.invalid"


def user_environment(tmp_path: Path) -> dict[str, str]:
    """A user's environment: ``WANDB_MODE`` unset (the configs decide), W&B's own folders
    and server kept away from the user's and from the network."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update(
        WANDB_SILENT="true",
        WANDB_BASE_URL=f"https://api.{BLACKHOLE}",
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
        WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"),
        WANDB_DATA_DIR=str(tmp_path / "wandb-data"),
    )
    return env


@pytest.mark.slow
def test_offline_sweep_is_one_wandb_group_of_runs_named_by_variant(tiny_data, tmp_path):
    """``make sweep-ablation``'s command, 2 jobs, with nothing about W&B on the command line
    or in the environment: two offline runs, one group, their switches and evaluation."""
    run_cli(
        [
            "-m",
            "experiment=minividit_ablation",
            "ablation=full,no_attention",
            *data_args(tiny_data),
            *TINY,
        ],
        tmp_path,
        env=user_environment(tmp_path),
    )
    sweep = newest_multirun(tmp_path)
    jobs = [sweep / "0_minividit_ablation_full", sweep / "1_minividit_ablation_no_attention"]
    runs = offline_runs(sweep)
    assert [run.parents[1] for run in runs] == jobs  # one offline W&B run per job
    settings = [run_settings(datastore(run)) for run in runs]
    assert len({s.run_id for s in settings}) == 2
    assert [s.group for s in settings] == ["ablation_minividit"] * 2
    assert [s.name for s in settings] == ["full", "no_attention"]
    assert [s.job_type for s in settings] == ["train"] * 2
    # the switches at the top level (TINY: ResNet-18, random weights, no perceptual term)
    switches = {
        "encoder": "resnet18",
        "encoder_weights": "none",
        "enhancement": True,
        "depth": True,
        "global_residual": True,
        "residual_form": "gain",  # the main job's recipe
        "global_colour": True,
        "wssim_levels": 2,  # the default: 2 Haar levels
        "perceptual": 0.0,
    }
    for each, variant, attention in zip(
        settings, ["full", "no_attention"], [True, False], strict=True
    ):
        expected = {**switches, "variant": variant, "attention": attention}
        assert {k: each.config[k] for k in expected} == expected
        assert f"attention={attention}" in each.tags and "ablation" in each.tags
        # the full resolved config is there too
        assert each.config["model"]["net"]["attention"] is attention
        assert each.config["run_name"] == "minividit_ablation"
        assert each.config["group"] == "ablation_minividit"

    for run, job in zip(runs, jobs, strict=True):
        summary = json.loads((job / "eval" / "metrics.json").read_text())
        methods = logged_table(run, "eval/table")
        assert methods["columns"] == ["method", "psnr", "ssim", "lpips", "mps"]
        assert methods["data"] == [
            [method, *(values.get(m) for m in ("psnr", "ssim", "lpips", "mps"))]  # None: n/a
            for method, values in summary["results"].items()
        ]
        assert [row[0] for row in methods["data"]] == ["S3Net", "identity (output = input)"]
        with open(job / "eval" / "metrics.csv", newline="") as handle:
            header, *rows = list(csv.reader(handle))
        per_image = logged_table(run, "eval/per_image")
        assert per_image["columns"] == header
        assert per_image["data"] == [[name, *map(float, values)] for name, *values in rows]
        assert len(per_image["data"]) == 3  # the 3 validation pairs
        logged = {k: v for row in history(datastore(run)) for k, v in row.items()}
        results = summary["results"]["S3Net"]
        assert {m: logged[f"eval/{m}"] for m in results} == results
        for image in ("eval/cases", "val/panel"):  # the cases grid, the validation panel
            files = {k: v for k, v in logged.items() if k.startswith(image + "/")}
            assert files, f"{image} not logged"
            path = files.get(f"{image}/path") or files[f"{image}/filenames"][0]
            assert (run / "files" / path).stat().st_size > 1000, image


def test_switches_cover_every_ablation():
    """Each key an ablation sets is a switch: it shows at the top level of the W&B config."""
    switched = set()
    for option in sorted((config_dir() / "ablation").glob("*.yaml")):
        leaves = flatten(OmegaConf.to_container(OmegaConf.load(option)))
        switched |= set(leaves)
    assert switched <= set(SWITCHES.values()), switched - set(SWITCHES.values())
    assert "model.net.attention" in switched and "loss.wssim_levels" in switched


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {k: v for key, c in tree.items() for k, v in flatten(c, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


@pytest.mark.parametrize("ablation", ["no_attention", "ssim", "no_depth"])
def test_an_ablation_has_one_wandb_group_and_name_whichever_way_it_is_started(ablation, tmp_path):
    wrapper = compose_cfg("train", [f"experiment=s3net_{ablation}", "data.root=/x"], tmp_path)
    paper = compose_cfg(
        "train", ["experiment=s3net_paper", f"ablation={ablation}", "data.root=/x"], tmp_path
    )
    for cfg in (wrapper, paper):
        run = resolved_config(cfg)["logger"]["wandb"]
        assert (run["group"], run["name"], run["job_type"]) == ("s3net_paper", ablation, "train")
        assert run["offline"] is True and "csv" in cfg.logger  # CSV beside W&B
    assert ablation_switches(wrapper) == ablation_switches(paper)
    assert ablation_switches(wrapper)["variant"] == ablation


def test_switch_tags_fit_wandb():
    """W&B refuses tags over 64 characters: a weights file is tagged by its name."""
    path = "/very/long/folder/of/pretrained/weights/on/a/cluster/res2net101d.safetensors"
    tags = switch_tags({"attention": False, "wssim_levels": 0, "encoder_weights": path})
    assert tags == ["attention=False", "wssim_levels=0", "encoder_weights=res2net101d.safetensors"]
    assert all(len(tag) <= 64 for tag in switch_tags({"encoder_weights": "x" * 100}))


# --- relight-wandb sync ------------------------------------------------------------------


def offline_run(folder: Path, run_id: str, synced: bool = False) -> Path:
    """An offline-run folder as wandb leaves it (its datastore; a marker once uploaded)."""
    run = folder / "wandb" / f"offline-run-20260101_000000-{run_id}"
    run.mkdir(parents=True)
    (run / f"run-{run_id}.wandb").write_bytes(b"")
    if synced:
        (run / f"run-{run_id}.wandb.synced").write_bytes(b"")
    return run


def sync(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "relight.cli.wandb", "sync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_offline_runs_of_a_sweep(tmp_path):
    sweep = tmp_path / "logs" / "train" / "multiruns" / "2026-01-01_00-00-00"
    first = offline_run(sweep / "0_minividit_ablation_full", "aaaa")
    second = offline_run(sweep / "1_minividit_ablation_ssim", "bbbb", synced=True)
    single = offline_run(tmp_path / "logs" / "train" / "minividit_cpu" / "full_x", "cccc")
    online = sweep / "0_minividit_ablation_full" / "wandb" / "run-20260101_000000-dddd"
    online.mkdir()  # an online run: nothing to upload
    (online / "run-dddd.wandb").write_bytes(b"")
    (sweep / "2_minividit_ablation_no_depth" / "wandb" / "offline-run-x").mkdir(parents=True)
    assert offline_runs(sweep) == [first, second]
    assert offline_runs(tmp_path / "logs") == [single, first, second]  # by path
    assert offline_runs(sweep / "2_minividit_ablation_no_depth") == []  # no datastore


def test_sync_names_the_runs_then_hands_them_to_wandb(tmp_path):
    sweep = tmp_path / "logs" / "train" / "multiruns" / "2026-01-01_00-00-00"
    first = offline_run(sweep / "0_minividit_ablation_full", "aaaa")
    second = offline_run(sweep / "1_minividit_ablation_ssim", "bbbb", synced=True)
    env = user_environment(tmp_path)
    result = sync(str(sweep), "--dry-run", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"2 offline W&B run(s) under {sweep}:",
        f"  {first}",
        f"  {second}  (uploaded before: skipped)",
    ]
    # the command it would run: wandb sync with both (wandb skips the one uploaded before)
    assert lines[3:] == [f"would run: {shlex.join(sync_command([first, second]))}"]
    assert sync_command([first])[1:] == ["-m", "wandb", "sync", str(first)]


def test_sync_hands_the_runs_to_wandb_when_the_server_answers(tmp_path, monkeypatch):
    run = offline_run(tmp_path / "logs" / "run", "aaaa")
    called = []
    monkeypatch.setattr(wandb_sync, "unreachable_wandb_server", lambda: None)
    monkeypatch.setattr(
        wandb_sync.subprocess,
        "run",
        lambda command, check: called.append(command) or subprocess.CompletedProcess(command, 0),
    )
    assert wandb_sync.sync_offline_runs([run]) == 0
    assert called == [wandb_sync.sync_command([run])]


def errors(result: subprocess.CompletedProcess) -> list[str]:
    """The lines relight-wandb wrote on stderr, checked to be the last ones (a library may
    warn at import before them: timm 1.0.9 under torch 2.14 does) and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("relight-wandb")]
    assert "Traceback" not in result.stderr and ours == lines[len(lines) - len(ours) :]
    return ours


def test_sync_errors_are_one_line(tmp_path):
    env = user_environment(tmp_path)
    (tmp_path / "logs").mkdir()
    empty = sync("logs", env=env, cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout.startswith("no offline W&B runs under logs:")
    missing = sync("nowhere", env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert errors(missing) == [
        "relight-wandb: error: no such folder: nowhere (see relight-wandb --help)"
    ]
    offline_run(tmp_path / "logs" / "run", "aaaa")
    start = time.monotonic()
    unreachable = sync("logs", env=env, cwd=tmp_path)  # WANDB_BASE_URL never resolves
    assert time.monotonic() - start < 60
    assert unreachable.returncode == 1
    assert errors(unreachable) == [
        f"relight-wandb: error: the W&B server api.{BLACKHOLE} cannot be reached: nothing "
        "uploaded. The runs stay offline on disk; sync again when it can be reached (or fix "
        "the network/WANDB_BASE_URL)."
    ]


# --- the Makefile ------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_makefile_leaves_wandb_to_the_user_and_turns_it_off_for_the_tests(tmp_path):
    """Each target's command, run with stand-ins for the console scripts that print the
    ``WANDB_MODE`` they were given and their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("relight-convert", "relight-train", "relight-wandb", "relight-report", "pytest"):
        script = bin_dir / name
        script.write_text(
            '#!/bin/sh\necho "$(basename "$0") [${WANDB_MODE-unset}] $*"\n'
            '[ "$(basename "$0")" = "${STAND_IN_FAILS-}" ] && exit 1; exit 0\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def make(*args: str, **env: str) -> list[str]:
        base = {k: v for k, v in os.environ.items() if k not in {"WANDB_MODE", "MAKEFLAGS"}}
        result = subprocess.run(
            ["make", "--no-print-directory", "-s", "-C", str(ROOT), f"BIN={bin_dir}", *args],
            env={**base, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.splitlines()

    assert make("train") == ["relight-train [unset] experiment=minividit_cpu"]
    assert make("train", WANDB_MODE="online") == ["relight-train [online] experiment=minividit_cpu"]
    assert make("test-fast", WANDB_MODE="online") == ["pytest [disabled] -q -m not slow"]
    assert make("wandb-sync") == ["relight-wandb [unset] sync logs"]
    assert make("wandb-sync", "SWEEP=logs/train/multiruns/x", "ARGS=--dry-run") == [
        "relight-wandb [unset] sync logs/train/multiruns/x --dry-run"
    ]
    sweep = "relight-train [unset] -m experiment=minividit_ablation ablation=full,no_depth"
    report = "relight-report [unset] logs/train/multiruns/latest"
    assert make("sweep-ablation", "ABLATIONS=full,no_depth") == [sweep, report]
    # a failed job fails the sweep: the table still lists the jobs, and make fails
    with pytest.raises(subprocess.CalledProcessError) as failed:
        make("sweep-ablation", "ABLATIONS=full,no_depth", STAND_IN_FAILS="relight-train")
    assert failed.value.stdout.splitlines() == [sweep, report]


# --- how a run is closed ------------------------------------------------------------------


def exit_codes(run_file: Path, wait: float = 30.0) -> list[int]:
    """The exit codes the run's ``exit`` records hold (one, once it is closed), waiting for
    W&B's service to write the record (it may land just after ``wandb.finish`` returns)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            codes = [r.exit_code for kind, r in records(run_file) if kind == "exit"]
        except Exception:  # noqa: BLE001 - a record half written: read again
            codes = []
        if codes or time.monotonic() > deadline:
            return codes
        time.sleep(0.2)


def test_a_crashed_run_is_closed_in_wandb_as_failed(train_cfg, monkeypatch):
    """Training that raises closes its W&B run with a nonzero exit code (the dashboard shows
    it crashed, not beside the good runs as finished), and the error still ends the job."""
    from relight.cli.train import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = train_cfg("logger=wandb", "trainer.max_epochs=abc", "evaluate=false", "test=false")
    with pytest.raises(AssertionError):  # Lightning's check of max_epochs, in fit
        main(cfg)
    (run_file,) = Path(cfg.paths.output_dir).glob("wandb/offline-run-*/run-*.wandb")
    assert exit_codes(run_file) == [1]


@pytest.mark.parametrize(
    ("error", "code"), [(KeyboardInterrupt(), 130), (SystemExit(1), 1), (SystemExit(2), 2)]
)
def test_an_interrupted_or_failed_run_is_closed_with_a_nonzero_exit_code(
    error, code, train_cfg, monkeypatch
):
    """Ctrl-C, and a one-line error (``SystemExit``), close the W&B run as failed too."""
    import wandb

    from relight.cli import train as cli_train

    closed = []
    monkeypatch.setattr(wandb, "run", object(), raising=False)
    monkeypatch.setattr(wandb, "finish", lambda exit_code=None: closed.append(exit_code))

    def fail(cfg):
        raise error

    monkeypatch.setattr(cli_train, "run_train", fail)
    with pytest.raises(type(error)):
        cli_train.main(train_cfg())
    assert closed == [code]
