import os
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loops.progress import _BatchProgress

from relight.data import FixedTripletDataset, PairsDataset, VIDITDataModule
from relight.data.cache import CachedReader
from relight.data.formats import DataFormatError
from relight.data.transforms import check_image_size, resize_depth, resize_image
from relight.data.transport import decode_batch

from .vidit_factory import write_pairs, write_vidit

LIGHTS = [(2500, "N"), (3500, "E"), (6500, "SW"), (4500, "W")]


@pytest.fixture
def train_root(tmp_path):
    return write_vidit(tmp_path / "train", scenes=range(6), lightings=LIGHTS, size=48)


def test_split_by_scene_and_generated_validation(train_root):
    dm = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], batch_size=2)
    dm.setup("fit")
    assert dm.train_ids == [0, 2, 3, 5] and dm.val_ids == [1, 4]
    assert isinstance(dm.val_set, FixedTripletDataset)
    train_scenes = {dm.train_set.triplet(i).input_scene for i in range(len(dm.train_set))}
    train_guides = {dm.train_set.triplet(i).guide_scene for i in range(len(dm.train_set))}
    val_scenes = {t.input_scene for t in dm.val_set.triplets} | {
        t.guide_scene for t in dm.val_set.triplets
    }
    assert train_scenes | train_guides <= {0, 2, 3, 5} and val_scenes <= {1, 4}
    assert len(dm.val_set) == 4  # 2 per validation scene
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (2, 3, 32, 32) and batch["input_depth"].shape == (2, 1, 32, 32)
    assert batch["target"].dtype == torch.float32 and len(batch["name"]) == 2
    # the fixed validation set is the same every time
    again = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4])
    again.setup("fit")
    assert again.val_set.triplets == dm.val_set.triplets


def test_pairs_folder_for_validation_and_test(train_root, tmp_path):
    pairs = write_pairs(tmp_path / "pairs", count=3, size=48)
    dm = VIDITDataModule(
        train_root, pairs_dir=pairs, test_pairs_dir=pairs, val_ratio=0, image_size=48
    )
    dm.setup("fit")
    assert isinstance(dm.val_set, PairsDataset) and len(dm.train_ids) == 6
    batch = next(iter(dm.val_dataloader()))
    assert batch["name"] == ["Pair000", "Pair001", "Pair002"]
    with pytest.warns(UserWarning, match="held-out validation scenes are not used"):
        VIDITDataModule(train_root, pairs_dir=pairs, val_ratio=0.5).setup("fit")


@pytest.mark.parametrize("key", ["pairs_dir", "test_pairs_dir", "shifted_pairs_dir"])
def test_a_scored_pairs_folder_without_ground_truth_fails_at_setup(train_root, tmp_path, key):
    """It used to pass setup and fail at the first validation (or test) batch."""
    scored = write_pairs(tmp_path / "scored", count=2, size=48, target=True)
    bare = write_pairs(tmp_path / "bare", count=2, size=48, target=False)
    folders = {"pairs_dir": scored, key: bare}
    dm = VIDITDataModule(train_root, val_ratio=0, image_size=48, **folders)
    message = rf"bare: no ground truth, .*bare/target not found; the pairs of data\.{key}"
    with pytest.raises(DataFormatError, match=message):
        dm.setup("fit")
    gt_dir = tmp_path / "gt"
    (tmp_path / "scored" / "target").rename(gt_dir)
    VIDITDataModule(train_root, pairs_dir=scored, gt_dir=gt_dir, val_ratio=0, image_size=48).setup()


def test_native_size_refuses_pairs_of_another_size(train_root, tmp_path):
    """Validation batches stack pairs: at the native size one of another size crashed the
    first validation batch inside collate, naming no file."""
    pairs = write_pairs(tmp_path / "pairs", count=3, size=48)
    odd = write_pairs(tmp_path / "odd", count=1, size=32)
    for role in ("input", "guide", "target"):
        for suffix in (".png", ".npy") if role != "target" else (".png",):
            (odd / role / f"Pair000{suffix}").replace(pairs / role / f"Pair002{suffix}")
    native = VIDITDataModule(train_root, pairs_dir=pairs, val_ratio=0, image_size=None)
    message = r"input/Pair002\.png: pair Pair002 is \(32, 32\) but 2 other pairs are \(48, 48\)"
    with pytest.raises(DataFormatError, match=message):
        native.setup("fit")
    VIDITDataModule(train_root, pairs_dir=pairs, val_ratio=0, image_size=48).setup("fit")


def test_no_validation_data_is_an_error(train_root):
    with pytest.raises(ValueError, match="no validation data"):
        VIDITDataModule(train_root, val_ratio=0).setup("fit")


@pytest.mark.parametrize("bad", [100, 0, -16, 24.0, True])
def test_image_size_must_be_a_multiple_of_16(train_root, bad):
    with pytest.raises(ValueError, match="multiple of 16"):
        VIDITDataModule(train_root, image_size=bad)
    assert check_image_size(None) is None and check_image_size(64) == 64


def test_resize_keeps_ranges():
    image = torch.rand(3, 64, 64)
    small = resize_image(image, 32)
    assert small.shape == (3, 32, 32) and 0 <= small.min() and small.max() <= 1
    depth = torch.rand(64, 64)
    assert resize_depth(depth, 16).shape == (16, 16)
    torch.testing.assert_close(
        resize_depth(depth, 32), torch.nn.functional.avg_pool2d(depth[None, None], 2)[0, 0]
    )
    up = resize_depth(depth, 128)
    assert up.min() >= depth.min() - 1e-6 and up.max() <= depth.max() + 1e-6


def test_cache_matches_files_and_is_reused(train_root, tmp_path):
    cache = tmp_path / "cache"
    plain = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4])
    cached = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], cache_dir=cache)
    plain.setup("fit")
    cached.setup("fit")
    assert isinstance(cached.train_set.reader, CachedReader)
    for key in (0, 7, 13):
        a, compact = plain.train_set[key], cached.train_set[key]
        # items travel compact (uint8 images, float16 depth) and are decoded on the device
        assert (
            compact["input"].dtype == torch.uint8 and compact["input_depth"].dtype == torch.float16
        )
        b = decode_batch(compact)
        assert a["name"] == b["name"] and b["input"].dtype == torch.float32
        assert (a["input"] - b["input"]).abs().max() <= 0.5 / 255 + 1e-6
        assert (a["input_depth"] - b["input_depth"]).abs().max() <= 1e-3
    float_items = VIDITDataModule(
        train_root, image_size=32, val_scenes=[1, 4], cache_dir=cache, compact_transport=False
    )
    float_items.setup("fit")
    torch.testing.assert_close(
        float_items.train_set[7]["input"], decode_batch(cached.train_set[7])["input"]
    )
    folders = list(cache.iterdir())
    assert len(folders) == 1
    stamp = (folders[0] / "images.npy").stat().st_mtime_ns
    VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], cache_dir=cache).setup("fit")
    assert (folders[0] / "images.npy").stat().st_mtime_ns == stamp
    VIDITDataModule(train_root, image_size=16, val_scenes=[1, 4], cache_dir=cache).setup("fit")
    assert len(list(cache.iterdir())) == 2  # another size is another cache
    # a changed source file gives a new key
    target = train_root / "Image000_2500_N.png"
    os.utime(target, ns=(stamp, stamp + 10**9))
    VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], cache_dir=cache).setup("fit")
    assert len(list(cache.iterdir())) == 3


def test_a_cache_built_with_pickles_is_not_reused_without_them(train_root, tmp_path):
    """allow_pickle=False refuses VIDIT's pickled depth files, cached or not."""
    images = sorted(train_root.glob("*.png"))
    depths = sorted(train_root.glob("*.npy"))
    CachedReader.build(tmp_path / "cache", images, depths, 32, allow_pickle=True, progress=False)
    with pytest.raises(DataFormatError, match=r"Image000\.npy: this \.npy holds a pickled object"):
        CachedReader.build(
            tmp_path / "cache", images, depths, 32, allow_pickle=False, progress=False
        )


def test_cached_loader_with_workers(train_root, tmp_path):
    dm = VIDITDataModule(
        train_root,
        image_size=32,
        val_scenes=[1, 4],
        cache_dir=tmp_path / "c",
        num_workers=2,
        batch_size=4,
    )
    dm.setup("fit")
    names = [n for batch in dm.train_dataloader() for n in batch["name"]]
    assert len(names) == len(dm.train_set)


def test_bad_data_fails_at_setup(tmp_path):
    root = write_vidit(tmp_path / "train", scenes=range(3), lightings=LIGHTS, size=32)
    (root / "Image002.npy").unlink()
    with pytest.raises(ValueError, match=r"Image002\.npy"):
        VIDITDataModule(root, val_scenes=[0]).setup("fit")


@pytest.mark.parametrize("verify", [False, True])
def test_setup_refuses_a_lighting_that_is_not_vidits(train_root, verify):
    (train_root / "Image002_2500_N.png").rename(train_root / "Image002_4550_N.png")
    """Under skip too, and by data.verify (prepare_data) as by setup."""
    dm = VIDITDataModule(
        train_root, image_size=32, val_scenes=[0], on_bad_item="skip", verify=verify
    )
    with pytest.raises(DataFormatError, match=r"Image002_4550_N\.png: lighting '4550_N' is not"):
        dm.prepare_data()
        dm.setup("fit")


def test_truncated_png_at_load_time_names_the_file(tmp_path):
    root = write_vidit(tmp_path / "train", scenes=range(4), lightings=LIGHTS, size=32)
    path = root / "Image001_3500_E.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header survives: indexing passes
    dm = VIDITDataModule(root, val_scenes=[0, 2], image_size=32)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"Image001_3500_E\.png: corrupt or truncated"):
        for i in range(len(dm.train_set)):
            dm.train_set[i]


def test_cache_is_shared_by_paths_that_reach_the_same_files(train_root, tmp_path):
    link = tmp_path / "linked_train"
    link.symlink_to(train_root)
    cache = tmp_path / "cache"
    first = VIDITDataModule(link, image_size=32, val_scenes=[1, 4], cache_dir=cache)
    first.prepare_data()  # builds the cache (one process in DDP)
    second = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], cache_dir=cache)
    second.setup("fit")
    assert len(list(cache.iterdir())) == 1
    assert second.train_set[0]["input"].shape == (3, 32, 32)


def test_native_size_refuses_scenes_of_another_size(train_root):
    write_vidit(train_root, scenes=(6,), lightings=LIGHTS, size=32)
    VIDITDataModule(train_root, image_size=32, val_ratio=0.5).setup("fit")
    with pytest.raises(
        DataFormatError, match=r"Image006_2500_N\.png: scene Image006 is \(32, 32\)"
    ):
        VIDITDataModule(train_root, image_size=None, val_ratio=0.5).setup("fit")


def test_converted_resume_position_moves_the_training_loops_batch_count(train_root):
    """A resume on another world size sets the loop's restored count of the epoch's batches
    (all four counters, keeping the offset a checkpoint written mid-batch has)."""
    dm = VIDITDataModule(train_root, image_size=32, val_ratio=0.5, batch_size=2)
    current = _BatchProgress().current
    current.ready = current.started = current.processed = 6
    current.completed = 5
    dm.trainer = SimpleNamespace(
        fit_loop=SimpleNamespace(
            epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(current=current))
        )
    )
    dm._set_train_batches_done(2)
    assert (current.ready, current.started, current.processed, current.completed) == (2, 2, 2, 1)


def test_val_pairs_per_scene_below_one_names_its_key(train_root):
    with pytest.raises(ValueError, match=r"^data\.val_pairs_per_scene must be >= 1, got 0$"):
        VIDITDataModule(train_root, image_size=32, val_ratio=0.5, val_pairs_per_scene=0).setup()


def test_validation_and_test_batches_come_in_the_sets_order_every_epoch(train_root):
    """The same pairs in the same batches each epoch: the first batch's panel shows the same
    pairs throughout a run, and runs compare pair by pair."""
    dm = VIDITDataModule(train_root, image_size=32, val_scenes=[1, 4], batch_size=3)
    dm.setup("fit")
    expected = [dm.val_set[i]["name"] for i in range(len(dm.val_set))]
    assert len(set(expected)) > 1
    for make_loader in (dm.val_dataloader, dm.test_dataloader):
        for epoch in (0, 3):
            loader = make_loader()
            loader.sampler.set_epoch(epoch)
            assert [name for batch in loader for name in batch["name"]] == expected
