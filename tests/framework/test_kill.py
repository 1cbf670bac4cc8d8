"""``kill -9`` in the middle of an epoch, then the same command: the run continues from its
newest checkpoint, on mini-VIDIT, through the real command line."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TINY
from .recorder import read_records

pytest.importorskip("mitsuba")
pytestmark = pytest.mark.slow

MINIVIDIT = [
    "data=minividit",
    "data.render_size=48",
    "data.train_scenes=3",
    "data.val_scenes_rendered=2",
    "data.pairs_per_val_scene=1",
    "data.shifted_scenes_rendered=0",
    "data.spp=4",
    "data.render_workers=1",
]
#: 3 scenes x 4 inputs = 12 items in batches of 2: 6 steps per epoch, 3 epochs.
RUN = [
    "data.image_size=48",
    "data.samples_per_scene=4",
    "trainer.limit_train_batches=1.0",
    "trainer.max_epochs=3",
    "callbacks.step_checkpoint.every_n_train_steps=2",
    "logger=many",
    "evaluate=false",
    "test=false",
    "run_name=killed",
]


def command(tmp_path: Path) -> list[str]:
    recorder = [
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={tmp_path / 'steps.jsonl'}",
        "+callbacks.recorder.sleep=0.3",
    ]
    data = [*MINIVIDIT, f"data.dataset_dir={tmp_path / 'minividit'}"]
    return [sys.executable, "-m", "relight.train", *data, *TINY, *RUN, *recorder]


def start(tmp_path: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        RELIGHT_ROOT=str(tmp_path),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),  # the test callback
    )
    # each run its own W&B service: an earlier test in this process may have started one
    # (its address is inherited), where the killed run's id would stay "in use"
    env.pop("WANDB_SERVICE", None)
    log = open(tmp_path / "output.txt", "a")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command(tmp_path), cwd=tmp_path, env=env, stdout=log, stderr=log)


def wait_for_step(process: subprocess.Popen, steps: Path, epoch: int, batch: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended early ({process.returncode}) before the kill")
        if steps.exists() and any(
            (r["epoch"], r["batch"]) >= (epoch, batch) for r in read_records(steps)
        ):
            return
        time.sleep(0.05)
    pytest.fail("training did not reach the step to kill at")


def csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_kill_9_mid_epoch_then_the_same_command_resumes(tmp_path):
    steps = tmp_path / "steps.jsonl"
    first = start(tmp_path)
    wait_for_step(first, steps, epoch=1, batch=3)  # step 10 of 18
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = read_records(steps)
    steps.rename(tmp_path / "steps_killed.jsonl")

    second = start(tmp_path)
    assert second.wait(timeout=600) == 0, (tmp_path / "output.txt").read_text()[-4000:]
    after = read_records(steps)
    runs = sorted((tmp_path / "logs" / "train" / "killed").iterdir())
    assert len(runs) == 2
    killed, resumed = runs
    assert not (killed / "FINISHED").exists() and (killed / "RESUMED").exists()
    assert (resumed / "FINISHED").exists()

    # the resumed run starts after its newest complete checkpoint (every 2 steps) ...
    start_step = after[0]["step"] - 1
    assert start_step % 2 == 0 and 8 <= start_step <= before[-1]["step"]
    assert [r["step"] for r in before[:start_step] + after] == list(range(1, 19))
    # ... and repeats the steps lost by the kill exactly: same items, same losses
    for old, new in zip(before[start_step:], after, strict=False):
        assert (old["epoch"], old["batch"], old["names"]) == (
            new["epoch"],
            new["batch"],
            new["names"],
        )
        assert old["loss"] == pytest.approx(new["loss"], rel=1e-5, abs=1e-6)

    # the metrics history continues: every epoch validated once, steps without a gap
    old_rows, new_rows = csv_rows(killed), csv_rows(resumed)
    val_epochs = [int(r["epoch"]) for r in old_rows + new_rows if r.get("val/psnr")]
    assert val_epochs == [0, 1, 2]
    train_steps = sorted(
        {int(r["step"]) for r in old_rows if r.get("train/loss") and int(r["step"]) < start_step}
        | {int(r["step"]) for r in new_rows if r.get("train/loss")}
    )
    assert train_steps == list(range(18))
    # the same W&B run continues
    run_id = (killed / "wandb_run_id.txt").read_text()
    assert (resumed / "wandb_run_id.txt").read_text() == run_id
    assert list(resumed.glob(f"wandb/offline-run-*/run-{run_id}.wandb"))
