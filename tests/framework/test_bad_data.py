"""Broken training data through ``relight-train``: ``data.verify`` stops a run before its
first step with every problem listed, and ``data.max_bad_items`` stops a ``skip`` run."""

from pathlib import Path

import pytest

from relight.data import DataFormatError, TooManyBadItemsError
from relight.train import train

from ..data.vidit_factory import write_pairs, write_vidit
from .conftest import LIGHTS
from .recorder import read_records


@pytest.fixture
def broken_data(tmp_path) -> list[str]:
    """The tiny training data with a PNG cut to 300 bytes (its header still reads) and a
    depth file cut short: the data overrides of a run."""
    train_dir = write_vidit(tmp_path / "data" / "train", scenes=range(4), lightings=LIGHTS, size=64)
    pairs = write_pairs(tmp_path / "data" / "validation", count=3, size=64)
    image = train_dir / "Image001_3500_E.png"
    image.write_bytes(image.read_bytes()[:300])
    depth = train_dir / "Image003.npy"
    depth.write_bytes(depth.read_bytes()[:-100])
    return [f"data.root={train_dir}", f"data.pairs_dir={pairs}"]


def recorder(path: Path) -> list[str]:
    return [
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={path}",
    ]


def test_verify_lists_every_problem_before_the_first_step(train_cfg, broken_data, tmp_path):
    cfg = train_cfg(*broken_data, "data.verify=true", *recorder(tmp_path / "steps.jsonl"))
    with pytest.raises(DataFormatError, match="data.verify") as error:
        train(cfg)
    message = str(error.value)
    assert "2 problems (2 errors, 0 warnings)" in message
    assert "Image001_3500_E.png: corrupt or truncated image" in message
    assert "Image003.npy: corrupt or truncated pickled .npy" in message
    assert "data.on_bad_item=skip" in message
    assert not (tmp_path / "steps.jsonl").exists()  # not a single step
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_skip_stops_past_max_bad_items(train_cfg, broken_data, tmp_path):
    steps = tmp_path / "steps.jsonl"
    overrides = ["data.on_bad_item=skip", "data.samples_per_scene=4", "trainer.max_epochs=1"]
    cfg = train_cfg(*broken_data, *overrides, "data.max_bad_items=1", *recorder(steps))
    with pytest.raises(TooManyBadItemsError, match=r"2 training files could not be read") as error:
        train(cfg)
    assert "Image001_3500_E.png" in str(error.value) and "Image003.npy" in str(error.value)
    trained = read_records(steps) if steps.exists() else []
    assert len(trained) < 8  # stopped inside the epoch
