"""``data.on_bad_item``, ``data.max_bad_items`` and ``data.verify`` at the data level."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from relight.data import DataFormatError, TooManyBadItemsError, VIDITDataModule
from relight.data.bad_items import UNREADABLE_KEY, BadItemTracker
from relight.files import OutOfSpaceError

from .vidit_factory import lit_image, write_pairs, write_vidit

LIGHTS = [(2500, "N"), (6500, "E"), (4500, "W"), (3500, "S")]


@pytest.fixture
def broken(tmp_path) -> dict[str, Path]:
    """4 scenes x 4 lightings at 16², one PNG cut short, one image not a PNG at all."""
    train = write_vidit(tmp_path / "train", scenes=range(4), size=16, lightings=LIGHTS)
    data = (train / "Image001_6500_E.png").read_bytes()
    (train / "Image001_6500_E.png").write_bytes(data[: len(data) // 2])
    (train / "Image003_2500_N.png").write_text("404 Not Found")
    return {
        "train": train,
        "pairs": write_pairs(tmp_path / "pairs", count=2, size=16),
        "bad": [train / "Image001_6500_E.png", train / "Image003_2500_N.png"],
    }


def module(data: dict[str, Path], **kwargs) -> VIDITDataModule:
    kwargs = {"image_size": 16, "val_ratio": 0.0, "batch_size": 2, **kwargs}
    return VIDITDataModule(data["train"], pairs_dir=data["pairs"], **kwargs)


def uses(triplet, name: str) -> bool:
    files = {
        f"Image{triplet.input_scene:03d}_{triplet.input_light}.png",
        f"Image{triplet.input_scene:03d}_{triplet.guide_light}.png",
        f"Image{triplet.guide_scene:03d}_{triplet.guide_light}.png",
    }
    return name in files


def test_skip_replaces_items_needing_an_unreadable_file_by_another_draw(broken):
    dm = module(broken, on_bad_item="skip")
    dm.setup("fit")
    dataset, sampler = dm.train_set, dm.train_set.sampler
    bad = {p.name for p in broken["bad"]}
    replaced = 0
    for epoch in (0, 1):
        for index in range(len(dataset)):
            item = dataset[epoch * len(dataset) + index]
            original = sampler.triplet(epoch, index)
            unreadable = json.loads(item[UNREADABLE_KEY])
            if not any(uses(original, name) for name in bad):
                assert item["name"] == original.name and unreadable == []
                continue
            replaced += 1
            # the first draw that reads, from the same epoch, never the item itself
            attempt = len(unreadable)
            drawn = sampler.replacement(epoch, index, attempt)
            assert drawn != index and item["name"] == sampler.triplet(epoch, drawn).name
            assert all(
                uses(sampler.triplet(epoch, sampler.replacement(epoch, index, a)), Path(path).name)
                for a, (path, _) in enumerate(unreadable)
            )
            assert {Path(path).name for path, _ in unreadable} <= bad
            expected = dataset.read(sampler.triplet(epoch, drawn))
            assert torch.equal(item["input"], expected["input"])
            assert torch.equal(item["target"], expected["target"])
    assert replaced >= 4  # each bad image is an input once per epoch at least


def test_skipped_draws_do_not_depend_on_the_worker_count(broken):
    names = []
    for workers in (0, 2):
        dm = module(broken, on_bad_item="skip", num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(1)
        names.append([n for batch in loader for n in batch["name"]])
    assert names[0] == names[1] and len(names[0]) == 16


def header_intact(path: Path) -> None:
    """Turn the file into a PNG cut short after its header (indexing reads headers only)."""
    Image.fromarray(lit_image(3, 2500, "N", 16)).save(path, format="PNG")
    path.write_bytes(path.read_bytes()[:120])


def test_error_policy_stops_at_the_unreadable_file(broken):
    with pytest.raises(DataFormatError, match=r"Image003_2500_N\.png: not an image file"):
        module(broken).setup("fit")  # a header that cannot be read: found before training
    header_intact(broken["bad"][1])
    dm = module(broken)
    dm.setup("fit")
    with pytest.raises(DataFormatError, match=r"Image00[13]_\w+\.png: (corrupt|not an image)"):
        for batch in dm.train_dataloader():
            dm.on_after_batch_transfer(batch, 0)


def test_tracker_reports_each_file_once_and_stops_past_the_limit(caplog):
    tracker = BadItemTracker(max_bad_items=1)
    first = json.dumps([["/d/a.png", "/d/a.png: truncated"]])
    both = json.dumps([["/d/a.png", "/d/a.png: truncated"], ["/d/b.npy", "/d/b.npy: NaN"]])
    with caplog.at_level(logging.WARNING, logger="relight.data.bad_items"):
        tracker.update([first, "[]", first])
        assert (len(tracker.files), tracker.skipped, tracker.exceeded) == (1, 2, False)
        tracker.update([both])
    assert (len(tracker.files), tracker.skipped, tracker.exceeded) == (2, 4, True)
    assert [r.getMessage().count("/d/a.png") for r in caplog.records] == [1, 0]
    assert "/d/b.npy: NaN" in caplog.records[1].getMessage()
    error = tracker.error()
    assert isinstance(error, TooManyBadItemsError) and error.path == Path("/d/a.png")
    assert "2 training files could not be read, more than data.max_bad_items=1" in str(error)
    assert "/d/a.png: truncated" in str(error) and "/d/b.npy: NaN" in str(error)
    restored = BadItemTracker(max_bad_items=1)
    restored.load_state_dict(tracker.state_dict())
    assert (restored.files, restored.skipped) == (tracker.files, tracker.skipped)


def test_batches_carry_the_counts_and_the_limit_stops_the_loop(broken):
    dm = module(broken, on_bad_item="skip", max_bad_items=2)
    dm.setup("fit")
    totals = [dm.on_after_batch_transfer(b, 0) for b in dm.train_dataloader()]
    assert all(UNREADABLE_KEY not in b for b in totals)
    assert totals[-1]["bad_items"] == 2 and totals[-1]["skipped_items"] >= 4
    assert [b["skipped_items"] for b in totals] == sorted(b["skipped_items"] for b in totals)
    assert dm.state_dict()["bad_items"]["skipped"] == totals[-1]["skipped_items"]

    strict = module(broken, on_bad_item="skip", max_bad_items=1)
    strict.setup("fit")
    with pytest.raises(TooManyBadItemsError, match=r"max_bad_items=1.*\n.*Image00[13]_"):
        for batch in strict.train_dataloader():
            strict.on_after_batch_transfer(batch, 0)


def test_the_cache_lists_every_unreadable_file_and_keeps_them_for_skip(broken, tmp_path):
    header_intact(broken["bad"][1])
    with pytest.raises(DataFormatError, match="2 files cannot be read") as error:
        module(broken, cache_dir=tmp_path / "cache").setup("fit")
    assert all(str(p) in str(error.value) for p in broken["bad"])
    assert not list((tmp_path / "cache").iterdir())  # no half-written cache

    dm = module(broken, cache_dir=tmp_path / "cache", on_bad_item="skip")
    dm.setup("fit")
    with pytest.raises(DataFormatError, match=r"Image001_6500_E\.png: corrupt or truncated"):
        dm.train_set.reader.image(broken["bad"][0])
    plain = module(broken, on_bad_item="skip")
    plain.setup("fit")
    for key in range(len(dm.train_set)):
        cached, read = dm.train_set[key], plain.train_set[key]
        assert cached["name"] == read["name"]
        assert [p for p, _ in json.loads(cached[UNREADABLE_KEY])] == [
            p for p, _ in json.loads(read[UNREADABLE_KEY])
        ]


def test_a_cache_built_under_skip_still_reports_its_unreadable_files_under_error(broken, tmp_path):
    """Reusing the cache must not hide what building it would report."""
    header_intact(broken["bad"][1])
    module(broken, cache_dir=tmp_path / "cache", on_bad_item="skip").setup("fit")
    with pytest.raises(DataFormatError, match="2 files cannot be read") as error:
        module(broken, cache_dir=tmp_path / "cache").setup("fit")
    assert all(str(p) in str(error.value) for p in broken["bad"])
    assert error.value.path in broken["bad"]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the same cache, reused


def test_verify_reports_every_problem_before_training(broken, caplog):
    (broken["train"] / "Image002_3500_S.png").unlink()  # a missing lighting: a warning
    (broken["train"] / "Thumbs.db").write_bytes(b"\0")  # a stray file: a warning
    with pytest.raises(DataFormatError, match="data.verify") as error:
        module(broken, verify=True).prepare_data()
    message = str(error.value)
    for name in ("Image001_6500_E.png", "Image003_2500_N.png", "Image002_*.png", "Thumbs.db"):
        assert name in message
    assert "4 problems (2 errors, 2 warnings)" in message

    with caplog.at_level(logging.WARNING, logger="relight.data.datamodule"):
        dm = module(broken, verify=True, on_bad_item="skip")
        dm.prepare_data()  # skip: unreadable files are not fatal, all are reported
        dm.setup("fit")
    (record,) = caplog.records
    assert "4 problems" in record.getMessage() and "Image001_6500_E.png" in record.getMessage()


def test_verify_under_skip_still_stops_at_layout_errors(broken):
    (broken["train"] / "Image002.npy").unlink()
    with pytest.raises(DataFormatError, match=r"missing_depth .*Image002\.npy: missing"):
        module(broken, verify=True, on_bad_item="skip").prepare_data()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"on_bad_item": "ignore"},
            r"data\.on_bad_item must be one of \['error', 'skip'\], got "
            "'ignore'",
        ),
        ({"max_bad_items": -1}, r"data\.max_bad_items must be 0 or more, got -1"),
    ],
    ids=["policy", "limit"],
)
def test_invalid_arguments(broken, kwargs, match):
    with pytest.raises(ValueError, match=match):
        module(broken, **kwargs)


def test_the_cache_checks_its_free_space_before_writing(broken, tmp_path, monkeypatch):
    header_intact(broken["bad"][1])
    monkeypatch.setattr("relight.files.free_space", lambda folder: 10_000)
    with pytest.raises(OutOfSpaceError, match=r"not enough space in .*cache for the decoded"):
        module(broken, cache_dir=tmp_path / "cache", on_bad_item="skip").setup("fit")
    assert not list((tmp_path / "cache").iterdir())
