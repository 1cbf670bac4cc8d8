import numpy as np
import pytest
import torch

from relight.data import VIDITDataModule
from relight.data.augment import JOINT_KEYS, JointAugmentation
from relight.data.transport import decode_batch

from .vidit_factory import write_pairs, write_vidit

LIGHTS = [(2500, "N"), (3500, "E"), (6500, "SW"), (4500, "W")]


@pytest.fixture
def folders(tmp_path):
    train = write_vidit(tmp_path / "train", scenes=range(4), lightings=LIGHTS, size=48)
    return train, write_pairs(tmp_path / "pairs", count=2, size=48)


def datamodule(folders, **augment) -> VIDITDataModule:
    train, pairs = folders
    dm = VIDITDataModule(train, pairs_dir=pairs, val_ratio=0, image_size=48, augment=augment)
    dm.setup("fit")
    return dm


def test_a_flip_mirrors_all_five_tensors_together(folders):
    plain = datamodule(folders).train_set
    flipped = datamodule(folders, hflip=1.0).train_set
    for key in range(len(plain)):
        item, mirrored = plain[key], flipped[key]
        assert mirrored["name"] == item["name"]
        for name in JOINT_KEYS:  # input, guide, target and both depth maps
            assert torch.equal(mirrored[name], item[name].flip(-1)), name
            assert not torch.equal(mirrored[name], item[name]), name


def test_a_random_flip_is_one_decision_per_item_and_reproducible(folders):
    plain = datamodule(folders).train_set
    augmented = datamodule(folders, hflip=0.5).train_set
    again = datamodule(folders, hflip=0.5).train_set
    decisions = []
    for key in range(3 * len(plain)):  # three epochs: keys encode (epoch, index)
        item, out = plain[key], augmented[key]
        flipped = [torch.equal(out[n], item[n].flip(-1)) for n in JOINT_KEYS]
        kept = [torch.equal(out[n], item[n]) for n in JOINT_KEYS]
        assert all(flipped) or all(kept)
        decisions.append(all(flipped))
        assert all(torch.equal(out[n], again[key][n]) for n in JOINT_KEYS)
    assert 0 < sum(decisions) < len(decisions)


@pytest.mark.parametrize(("height", "width"), [(48, 48), (48, 96), (96, 48)])
def test_a_crop_takes_the_same_window_of_all_five(height, width):
    """Windows anywhere in the item, of every shape (native-size VIDIT is not square)."""
    crop = 32
    ramp = torch.arange(height * width, dtype=torch.float32).reshape(height, width)
    item = {
        "name": "x",
        "input": ramp.expand(3, -1, -1) + 0,
        "guide": ramp.expand(3, -1, -1) + 1,
        "target": ramp.expand(3, -1, -1) + 2,
        "input_depth": ramp[None] + 3,
        "guide_depth": ramp[None] + 4,
    }
    windows = set()
    for seed in range(40):
        out = JointAugmentation(hflip=0.5, crop_size=crop)(item, np.random.default_rng(seed))
        corner = out["input"][0, 0, 0].item(), out["input"][0, 0, -1].item()
        top, left = divmod(int(min(corner)), width)
        flip = corner[0] > corner[1]
        windows.add((top, left, flip))
        for offset, name in enumerate(JOINT_KEYS):
            expected = item[name][..., top : top + crop, left : left + crop]
            expected = expected.flip(-1) if flip else expected
            assert out[name].shape[-2:] == (crop, crop)
            assert torch.equal(out[name], expected), name
            assert out[name].min().item() == top * width + left + offset
    assert len(windows) > 10 and {w[2] for w in windows} == {True, False}
    tops, lefts = {w[0] for w in windows}, {w[1] for w in windows}
    assert max(tops) > (height - crop) / 2 and max(lefts) > (width - crop) / 2


def test_a_scene_tint_gives_input_and_target_one_gain_and_the_guide_another():
    torch.manual_seed(0)
    item = {
        "name": "x",
        "input": torch.rand(3, 16, 16) * 0.5,
        "guide": torch.rand(3, 16, 16) * 0.5,
        "target": torch.rand(3, 16, 16) * 0.5,
        "input_depth": torch.rand(1, 16, 16),
        "guide_depth": torch.rand(1, 16, 16),
    }
    guide_gains = []
    for seed in range(10):
        out = JointAugmentation(scene_tint=0.3)(item, np.random.default_rng(seed))
        gains = {k: (out[k] / item[k]).mean(dim=(1, 2)) for k in ("input", "target", "guide")}
        for key in ("input", "target", "guide"):  # one gain per channel over the whole image
            torch.testing.assert_close(out[key], item[key] * gains[key][:, None, None])
            assert ((gains[key] > 0.74) & (gains[key] < 1.35)).all()  # exp(+-0.3)
        torch.testing.assert_close(gains["input"], gains["target"])  # scene A: one gain
        assert not torch.allclose(gains["input"], gains["guide"])  # scene B: another
        guide_gains.append(gains["guide"])
        for key in ("input_depth", "guide_depth"):
            assert torch.equal(out[key], item[key])  # geometry is untouched
    assert len({tuple(g.tolist()) for g in guide_gains}) == 10
    compact = {**item, "input": (item["input"] * 255).round().to(torch.uint8)}
    out = JointAugmentation(scene_tint=0.3)(compact, np.random.default_rng(0))
    assert out["input"].dtype == torch.uint8


def test_validation_is_never_augmented(folders):
    plain, augmented = datamodule(folders), datamodule(folders, hflip=1.0, crop_size=32)
    assert len(plain.val_set) == len(augmented.val_set) == 2
    for key in range(2):
        a, b = plain.val_set[key], augmented.val_set[key]
        assert all(torch.equal(a[n], b[n]) for n in JOINT_KEYS)
    assert augmented.train_set[0]["input"].shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ({"hflip": 1.5}, r"data\.augment\.hflip must be a probability"),
        ({"hflip": True}, r"data\.augment\.hflip must be a probability"),
        ({"scene_tint": -0.1}, r"data\.augment\.scene_tint must be in \[0, 1\]"),
        ({"crop_size": 40}, r"data\.augment\.crop_size must be a positive multiple of 16"),
        ({"crop_size": 64}, r"crop_size=64 is larger than data\.image_size=48"),
    ],
)
def test_bad_augmentation_settings(folders, augment, message):
    with pytest.raises(ValueError, match=message):
        datamodule(folders, **augment)


def test_compact_cached_items_are_augmented_like_files(folders, tmp_path):
    """uint8/float16 items from the cache take the same flip, crop and tint as float files."""
    train, pairs = folders
    augment = {"hflip": 0.5, "crop_size": 32, "scene_tint": 0.2}
    files = datamodule(folders, **augment).train_set
    cached = VIDITDataModule(
        train,
        pairs_dir=pairs,
        val_ratio=0,
        image_size=48,
        augment=augment,
        cache_dir=tmp_path / "cache",
    )
    cached.setup("fit")
    for key in range(len(files)):
        compact = decode_batch(
            {k: v[None] if torch.is_tensor(v) else v for k, v in cached.train_set[key].items()}
        )
        for name in JOINT_KEYS:
            torch.testing.assert_close(compact[name][0], files[key][name], atol=0.01, rtol=0)


def test_a_replaced_item_is_augmented_by_the_draws_of_its_own_index(folders):
    """Under on_bad_item=skip the augmentation stays seeded by (seed, epoch, index)."""
    train, pairs = folders
    kept = VIDITDataModule(
        train,
        pairs_dir=pairs,
        val_ratio=0,
        image_size=48,
        augment={"hflip": 0.5},
        on_bad_item="skip",
    )
    kept.setup("fit")
    plain = datamodule(folders, hflip=0.5).train_set
    for key in range(2 * len(plain)):
        assert all(torch.equal(kept.train_set[key][n], plain[key][n]) for n in JOINT_KEYS)
