"""Crash-safe training: a run stopped mid-epoch continues exactly where it stopped."""

import csv
import logging
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from relight.checkpoints import FINISHED, RESUMED, close_run, read_checkpoint, run_closed
from relight.train import train

from ..data.vidit_factory import write_pairs, write_vidit
from .conftest import LIGHTS, TINY, compose_cfg
from .recorder import SimulatedCrash, read_records

#: 4 scenes x 4 inputs = 16 items in batches of 2: 8 steps per epoch, a checkpoint every 3.
EPOCH = [
    "data.samples_per_scene=4",
    "data.image_size=48",
    "trainer.limit_train_batches=1.0",
    "trainer.max_epochs=2",
    "callbacks.step_checkpoint.every_n_train_steps=3",
    "evaluate=false",
    "test=false",
]


def recorded(train_cfg, log: Path, *overrides: str, run: str, crash_at: int | None = None):
    cfg = train_cfg(
        *EPOCH,
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={log}",
        f"+callbacks.recorder.crash_at_step={'null' if crash_at is None else crash_at}",
        *overrides,
        run=run,
    )
    if crash_at is None:
        return cfg, train(cfg)
    with pytest.raises(SimulatedCrash):
        train(cfg)
    return cfg, None


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> tuple[dict[str, float], list[dict]]:
    """The metrics and step records of a run that never stopped."""
    out = tmp_path_factory.mktemp("reference")
    data = [f"data.root={tiny_data['train']}", f"data.pairs_dir={tiny_data['pairs']}"]
    recorder = [
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={out / 'steps.jsonl'}",
    ]
    overrides = ["data=vidit", *data, "data.val_ratio=0.0", *TINY, *EPOCH, *recorder]
    metrics = train(compose_cfg("train", overrides, out))
    return metrics, read_records(out / "steps.jsonl")


@pytest.mark.parametrize("crash_at", [11, 9], ids=["mid-epoch", "at-epoch-start"])
def test_crashed_run_resumes_with_the_same_data_and_weights(
    train_cfg, tmp_path, reference, crash_at
):
    """Crash before step 11 (newest checkpoint: step 9, in epoch 1) or before step 9 (newest:
    the last.ckpt of epoch 0 and the step-6 one); the same command resumes and trains on
    exactly the items, with exactly the losses, of a run that never stopped."""
    reference, expected = reference
    assert len(expected) == 16 and [r["step"] for r in expected] == list(range(1, 17))

    crashed_cfg, _ = recorded(train_cfg, tmp_path / "a.jsonl", run="a", crash_at=crash_at)
    crashed_dir = Path(crashed_cfg.paths.output_dir)
    assert not (crashed_dir / FINISHED).exists()
    resumed_cfg, resumed = recorded(train_cfg, tmp_path / "b.jsonl", run="b")  # same command
    assert (
        crashed_dir / RESUMED
    ).read_text().strip() == f"resumed by {resumed_cfg.paths.output_dir}"
    assert (Path(resumed_cfg.paths.output_dir) / FINISHED).exists()

    before, after = read_records(tmp_path / "a.jsonl"), read_records(tmp_path / "b.jsonl")
    assert [r["step"] for r in before] == list(range(1, crash_at + 1))
    start = after[0]["step"] - 1  # the checkpoint the second run resumed from
    assert start == (crash_at // 3) * 3 or start == 8  # the newest step or epoch checkpoint
    combined = before[:start] + after
    assert [r["step"] for r in combined] == list(range(1, 17))  # no gap, no repeat
    for got, want in zip(combined, expected, strict=True):
        assert (got["epoch"], got["batch"], got["names"]) == (
            want["epoch"],
            want["batch"],
            want["names"],
        ), got["step"]
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-6), got["step"]
    for key in ("val/psnr", "val/ssim", "train/loss"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5), key

    last = read_checkpoint(Path(resumed_cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 16 and last["epoch"] == 1
    assert last["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] == 16


def test_a_resumed_run_killed_before_its_first_checkpoint_is_resumed_again(train_cfg, tmp_path):
    """a is killed before step 5 (newest checkpoint: step 3); b resumes it and is killed
    before step 5 too, without a checkpoint of its own; c resumes from a's step 3 again (a's
    RESUMED marker, written when b started, once closed a: c started over from step 1)."""
    a, _ = recorded(train_cfg, tmp_path / "a.jsonl", run="a", crash_at=5)
    b, _ = recorded(train_cfg, tmp_path / "b.jsonl", run="b", crash_at=5)
    assert [r["step"] for r in read_records(tmp_path / "b.jsonl")] == [4, 5]
    assert not list((Path(b.paths.output_dir) / "checkpoints").glob("*.ckpt"))
    c, _ = recorded(train_cfg, tmp_path / "c.jsonl", run="c")
    assert read_records(tmp_path / "c.jsonl")[0]["step"] == 4
    marker = (Path(a.paths.output_dir) / RESUMED).read_text().strip()
    assert marker == f"resumed by {c.paths.output_dir}"


def test_the_best_epoch_before_a_resume_stays_the_best(train_cfg, tmp_path):
    """Scores 0.9, 0.5, then a crash, then 0.6: the resumed run's best is still epoch 0,
    whose file it carries (Lightning forgot the best score when the run folder changed, and
    best.ckpt, test and evaluation were epoch 2)."""
    scores = [
        "trainer.max_epochs=3",
        "evaluate=false",
        "+callbacks.scripted._target_=tests.framework.recorder.ScriptedScores",
        "+callbacks.scripted.scores=[0.9,0.5,0.6]",
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
    ]
    crashed = train_cfg(
        *scores,
        f"+callbacks.recorder.path={tmp_path / 'a.jsonl'}",
        "+callbacks.recorder.crash_at_step=4",
        run="a",
    )
    with pytest.raises(SimulatedCrash):
        train(crashed)
    resumed = train_cfg(*scores, f"+callbacks.recorder.path={tmp_path / 'b.jsonl'}", run="b")
    metrics = train(resumed)
    folder = Path(resumed.paths.output_dir) / "checkpoints"
    best = (folder / "best.ckpt").resolve()
    assert best == folder / "epoch_000.ckpt"
    original = Path(crashed.paths.output_dir) / "checkpoints" / "epoch_000.ckpt"
    assert best.read_bytes() == original.read_bytes()
    assert read_checkpoint(best)["global_step"] == 2
    assert metrics["val/ssim_best"] == pytest.approx(0.9)
    assert sorted(p.name for p in folder.glob("*.ckpt")) == [
        "best.ckpt",
        "epoch_000.ckpt",
        "last.ckpt",
    ]


def test_a_run_is_closed_once_its_resumer_has_a_checkpoint_or_finished(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (b / "checkpoints").mkdir(parents=True)
    a.mkdir()
    close_run(a, RESUMED, f"resumed by {b}\n")
    assert not run_closed(a)  # b may still die before its first checkpoint
    close_run(b, FINISHED)  # b resumed a after its last epoch: nothing left to train
    assert run_closed(a)


def test_the_carried_best_checkpoint_is_made_once(tmp_path, monkeypatch):
    """Every DDP rank loads the callback state; only the first makes the file."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from relight.checkpoints.best import BestCheckpoint

    old = tmp_path / "old" / "epoch_000.ckpt"
    old.parent.mkdir()
    old.write_bytes(b"weights")
    state = {"dirpath": str(old.parent), "monitor": "val/ssim", "best_model_score": 0.9}
    state["best_model_path"] = str(old)
    for rank in (1, 0, 0):  # another rank, then the first one, twice
        monkeypatch.setattr(rank_zero_only, "rank", rank)
        callback = BestCheckpoint(dirpath=tmp_path / "new", monitor="val/ssim", mode="max")
        callback.load_state_dict(dict(state))
        carried = tmp_path / "new" / "epoch_000.ckpt"
        assert callback.best_model_path == str(carried) and callback.best_model_score == 0.9
        assert carried.exists() == (rank == 0)
    assert carried.stat().st_ino == old.stat().st_ino  # a link, not a second copy


def test_checkpoints_of_either_checkpoint_class_resume_with_the_other():
    from lightning.pytorch.callbacks import ModelCheckpoint

    from relight.checkpoints.best import BestCheckpoint

    settings = {"monitor": "val/mps", "mode": "max", "save_top_k": 1}
    assert BestCheckpoint(**settings).state_key == ModelCheckpoint(**settings).state_key


def test_a_run_that_trained_something_else_is_not_resumed(train_cfg, tmp_path, caplog):
    """Sweep jobs share run name and variant: a job of another learning rate once resumed a
    crashed one, and trained on with its optimiser state. Now only a run of the same model,
    loss, data and seed is resumed; loader knobs may differ."""
    a, _ = recorded(
        train_cfg, tmp_path / "a.jsonl", "model.optimizer.lr=0.001", run="a", crash_at=5
    )
    assert (Path(a.paths.output_dir) / "run_key.json").is_file()
    with caplog.at_level(logging.INFO, logger="relight.checkpoints.resume"):
        recorded(train_cfg, tmp_path / "b.jsonl", "model.optimizer.lr=0.002", run="b")
    assert read_records(tmp_path / "b.jsonl")[0]["step"] == 1  # a fresh run
    assert f"not resuming {a.paths.output_dir}: it trained something else" in caplog.text
    assert "model.optimizer.lr: 0.001 there, 0.002 here" in caplog.text
    assert caplog.text.count("not resuming") == 1  # one line per run, not per checkpoint
    how = ["data.num_workers=1", "data.max_bad_items=7", "model.panel_every_n_epochs=3"]
    recorded(train_cfg, tmp_path / "c.jsonl", "model.optimizer.lr=0.001", *how, run="c")
    assert read_records(tmp_path / "c.jsonl")[0]["step"] == 4  # a's step 3, then on


def test_a_finished_run_is_not_resumed(train_cfg):
    first = train(train_cfg("trainer.max_epochs=1", "evaluate=false", "test=false", run="a"))
    cfg = train_cfg("trainer.max_epochs=1", "evaluate=false", "test=false", run="b")
    second = train(cfg)  # the same command again: a new run, from scratch
    assert second["train/loss"] == first["train/loss"]
    checkpoint = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2


def test_truncated_checkpoint_falls_back_to_the_previous_one(train_cfg, tmp_path):
    crashed_cfg, _ = recorded(train_cfg, tmp_path / "a.jsonl", run="a", crash_at=11)
    folder = Path(crashed_cfg.paths.output_dir) / "checkpoints"
    newest = folder / "step_0000009.ckpt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # what a crash during a plain write leaves
    with pytest.warns(UserWarning, match=r"skipping checkpoint .*step_0000009\.ckpt: incomplete"):
        resumed_cfg, _ = recorded(train_cfg, tmp_path / "b.jsonl", run="b")
    assert read_records(tmp_path / "b.jsonl")[0]["step"] == 9  # from last.ckpt (step 8)
    with pytest.raises(Exception, match="step_0000009.ckpt: not a readable relight checkpoint"):
        read_checkpoint(newest)
    assert not list(folder.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_checkpoint_holds_rng_and_sampler_position(train_cfg, tmp_path):
    cfg, _ = recorded(train_cfg, tmp_path / "a.jsonl", run="a", crash_at=5)
    checkpoint = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "step_0000003.ckpt")
    (loader,) = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader == {
        "epoch": 0,
        "batches_done": 3,
        "batch_size": 2,
        "world_size": 1,
        "items": 16,
        "batches": 8,
    }
    assert set(checkpoint["rng_states"]) >= {"python", "numpy", "torch"}
    assert isinstance(checkpoint["rng_states"]["torch"], torch.Tensor)


def test_cuda_rng_of_more_gpus_than_are_visible_restores_those_there_are(monkeypatch):
    """A checkpoint written where 4 GPUs were visible, resumed where 1 is: set_rng_state_all
    would raise IndexError; the visible GPU gets its state, the rest are left."""
    from relight.checkpoints.rng import rng_states, set_rng_states

    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.append((s, i)))
    saved = [torch.full((4,), i, dtype=torch.uint8) for i in range(4)]
    with pytest.warns(UserWarning, match="random states of 4 GPUs and 1 are visible"):
        set_rng_states({**rng_states(), "cuda": saved})
    assert [(int(s[0]), i) for s, i in restored] == [(0, 0)]


def uses_file(name: str, file: str) -> bool:
    """Whether the item ``ImageA_L1-to-ImageB_L2`` reads ``file`` (input, guide or target)."""
    source, guide = name.split("-to-")
    target = f"{source.split('_')[0]}_{guide.split('_', 1)[1]}"  # source scene, guide light
    return file in {f"{source}.png", f"{guide}.png", f"{target}.png"}


def csv_column(run_dir: Path, key: str) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


def test_skip_policy_resumes_exactly_over_an_unreadable_file(train_cfg, tmp_path):
    """data.on_bad_item=skip: a PNG cut short is needed at step 4; its items are replaced
    by other draws and the file is counted. A run crashed before step 6 resumes from its
    step-3 checkpoint and repeats steps 4 and 5 exactly: the same replacements, losses and
    counts (the steps after a resume in general are checked above)."""
    train = write_vidit(tmp_path / "data" / "train", scenes=range(4), lightings=LIGHTS, size=64)
    pairs = write_pairs(tmp_path / "data" / "validation", count=3, size=64)
    skip = [
        f"data.root={train}",
        f"data.pairs_dir={pairs}",
        "data.on_bad_item=skip",
        "trainer.max_epochs=1",
    ]
    datamodule = instantiate(train_cfg(*EPOCH, *skip).data)
    datamodule.setup("fit")
    key = list(datamodule.train_dataloader().sampler)[6]  # the first item of step 4
    bad = datamodule.train_set.triplet(key).name.split("-to-")[0] + ".png"
    (train / bad).write_bytes((train / bad).read_bytes()[:300])  # header intact: indexed

    crashed_cfg, _ = recorded(train_cfg, tmp_path / "a.jsonl", *skip, run="a", crash_at=5)
    resumed_cfg, _ = recorded(train_cfg, tmp_path / "b.jsonl", *skip, run="b")
    before, after = read_records(tmp_path / "a.jsonl"), read_records(tmp_path / "b.jsonl")
    assert [r["step"] for r in before + after] == [1, 2, 3, 4, 5, 4, 5, 6, 7, 8]
    assert not any(uses_file(n, bad) for r in before + after for n in r["names"])
    for got, want in zip(after[:2], before[3:], strict=True):
        assert got["names"] == want["names"], got["step"]
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5, abs=1e-6), got["step"]
    runs = [Path(c.paths.output_dir) for c in (crashed_cfg, resumed_cfg)]
    bad_items = [csv_column(run, "train/bad_items") for run in runs]
    skipped = [csv_column(run, "train/skipped_items") for run in runs]
    assert bad_items[0][-1] == bad_items[1][-1] == 1  # one file, reported once
    assert skipped[0][3] > skipped[0][2]  # step 4 replaced an item
    assert skipped[1][:2] == skipped[0][3:]  # the count continues from the checkpoint


@pytest.mark.parametrize(
    "change",
    [
        "seed=1",
        "loss.wssim=0.5",
        "loss.eps=0.01",
        "model.optimizer.lr=0.002",
        "model.net.attention=false",
        "data.image_size=64",
    ],
)
def test_the_run_key_changes_with_what_a_run_trains(change, tmp_path):
    """One key per section (model, loss, data, seed): a sweep over any of them must not
    resume its own jobs."""
    from relight.checkpoints.resume import run_key

    base = run_key(compose_cfg("train", [], tmp_path))
    changed = run_key(compose_cfg("train", [change], tmp_path))
    name = change.split("=")[0]
    differing = [k for k in base if base[k] != changed.get(k)]
    assert name in differing  # and its aliases: model.loss is ${loss}, data.seed ${seed}
    assert all(k.endswith(name) for k in differing), differing


def test_the_run_key_leaves_out_how_a_run_runs_and_each_left_out_key_exists(tmp_path):
    """RUN_KEY_IGNORED: loader and speed settings may change on resume; a name in it that is
    not a config key would leave nothing out (a typo there goes unnoticed otherwise)."""
    from relight.checkpoints.resume import RUN_KEY_IGNORED, RUN_KEY_SECTIONS, flatten, run_key

    every = {}
    for data in ("minividit", "vidit"):
        composed = compose_cfg("train", [f"data={data}"], tmp_path)
        sections = [s for s in RUN_KEY_SECTIONS if OmegaConf.is_config(composed[s])]
        every |= flatten({s: OmegaConf.to_container(composed[s]) for s in sections})
    assert not [k for k in RUN_KEY_IGNORED if k not in every]
    cfg = compose_cfg("train", [], tmp_path)
    changes = ["data.batch_size=3", "data.num_workers=0", "model.compile=true", "data.verify=true"]
    assert run_key(compose_cfg("train", changes, tmp_path)) == run_key(cfg)
