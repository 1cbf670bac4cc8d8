"""A full disk while a checkpoint is written: the run stops with a message naming the
folder and the space needed, the previous checkpoint stays loadable, no temporary file is
left, and the same command resumes once there is space. Once on a real, small tmpfs
(where this machine lets the test mount one), once with an injected ENOSPC."""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import relight.checkpoints.atomic_io
from relight.checkpoints import FINISHED, checkpoint_problem, read_checkpoint
from relight.files import OutOfSpaceError
from relight.train import train

from .recorder import read_records

#: 4 scenes x 4 inputs in batches of 2, 4 steps: checkpoints after steps 2 and 4, and the
#: disk is full for the second.
RUN = [
    "data.samples_per_scene=4",
    "data.image_size=48",
    "trainer.limit_train_batches=4",
    "trainer.max_epochs=1",
    "callbacks.step_checkpoint.every_n_train_steps=2",
    "evaluate=false",
    "test=false",
]


def command(train_cfg, steps: Path, run: str):
    recorder = [
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={steps}",
    ]
    return train_cfg(*RUN, *recorder, run=run)


def fill_disk_then_free(train_cfg, tmp_path: Path, free_space: Callable[[], None]) -> None:
    """Train until the step-4 checkpoint finds no space, check what is left, call
    ``free_space``, run the same command again and check it resumes from step 2."""
    first = command(train_cfg, tmp_path / "a.jsonl", run="a")
    folder = Path(first.paths.output_dir) / "checkpoints"
    with pytest.raises(OutOfSpaceError) as stopped:
        train(first)
    message = str(stopped.value)
    previous = folder / "step_0000002.ckpt"
    # the message names the folder and what the checkpoint needs (its own size, estimated)
    assert f"no space left in {folder} " in message and "while writing step_0000004.ckpt" in message
    needed = float(re.search(r"it needs about ([\d.]+) MB,", message)[1]) * 1e6
    assert needed == pytest.approx(previous.stat().st_size, rel=0.02)
    assert stopped.value.folder == folder and "rerun the same command" in message
    # the previous checkpoint is intact and loads; nothing half-written is left
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000002.ckpt"]
    assert checkpoint_problem(previous) is None and read_checkpoint(previous)["global_step"] == 2
    assert not (Path(first.paths.output_dir) / FINISHED).exists()
    assert [r["step"] for r in read_records(tmp_path / "a.jsonl")] == [1, 2, 3, 4]

    free_space()
    second = command(train_cfg, tmp_path / "b.jsonl", run="b")  # the same command
    train(second)
    assert [r["step"] for r in read_records(tmp_path / "b.jsonl")] == [3, 4]
    assert (Path(second.paths.output_dir) / FINISHED).exists()
    last = read_checkpoint(Path(second.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 4


class FullDiskFile(io.FileIO):
    """A file on a disk with ``free`` bytes left: the write that needs more fails with
    ENOSPC after writing what fits, as ``write(2)`` on a full disk does."""

    def __init__(self, path: str | os.PathLike[str], free: int) -> None:
        super().__init__(path, "w")
        self.free = free

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if len(view) > self.free:
            super().write(view[: self.free])
            self.free = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.free -= len(view)
        return super().write(view)


def test_injected_enospc_stops_the_run_and_the_same_command_resumes(
    train_cfg, tmp_path, monkeypatch
):
    def full_disk_open(path, mode="r", *args, **kwargs):
        if "step_0000004" in os.fspath(path) and "w" in mode:
            return FullDiskFile(path, free=2_000_000)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(relight.checkpoints.atomic_io, "open", full_disk_open, raising=False)
    fill_disk_then_free(train_cfg, tmp_path, free_space=monkeypatch.undo)


@pytest.fixture
def small_disk(tmp_path):
    """A 200 MB tmpfs mounted at the runs' log folder (skips where mounting is refused)."""
    disk = tmp_path / "logs"
    disk.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC test covers this")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); injected test")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_full_tmpfs_stops_the_run_and_the_same_command_resumes(train_cfg, tmp_path, small_disk):
    """A real ENOSPC: a ballast file leaves room for one and a half checkpoints (about
    50 MB each with the tests' ResNet-18 S3Net and its AdamW state); deleting it frees
    the space."""
    from relight.models import S3Net

    net = S3Net(encoder="resnet18", encoder_weights="none")
    checkpoint = 3 * sum(p.numel() * p.element_size() for p in net.parameters())  # + AdamW
    ballast = small_disk / "ballast.bin"
    with open(ballast, "wb") as handle:
        left = shutil.disk_usage(small_disk).free - int(1.5 * checkpoint)
        handle.write(b"\0" * left)
    fill_disk_then_free(train_cfg, tmp_path, free_space=ballast.unlink)
