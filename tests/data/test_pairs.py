import numpy as np
import pytest
import torch

from relight.data import DataFormatError, PairsDataset, index_pairs
from relight.data.cache import FileReader

from .vidit_factory import write_pairs


def test_pairs_with_target(tmp_path):
    pairs = index_pairs(write_pairs(tmp_path / "val", count=3))
    assert [p.name for p in pairs] == ["Pair000", "Pair001", "Pair002"]
    item = PairsDataset(pairs, FileReader(None))[1]
    assert set(item) == {"input", "guide", "input_depth", "guide_depth", "target", "name"}
    assert item["name"] == "Pair001" and item["guide_depth"].shape == (1, 32, 32)
    root = tmp_path / "val"
    stored = np.load(root / "input" / "Pair001.npy", allow_pickle=True).item()["normalized_depth"]
    assert torch.equal(item["input_depth"][0], torch.from_numpy(stored))
    assert torch.equal(
        item["guide_depth"][0], torch.from_numpy(np.load(root / "guide" / "Pair001.npy"))
    )


def test_pairs_without_target_and_separate_ground_truth(tmp_path):
    root = write_pairs(tmp_path / "test", count=2, target=False)
    pairs = index_pairs(root)
    assert all(p.target is None for p in pairs)
    assert "target" not in PairsDataset(pairs, FileReader(None))[0]
    gt = write_pairs(tmp_path / "gt_source", count=2) / "target"
    assert index_pairs(root, gt_dir=gt)[0].target == gt / "Pair000.png"


def test_matched_by_name_even_if_parents_say_input(tmp_path):
    root = write_pairs(tmp_path / "input" / "input_pairs", count=2)
    pair = index_pairs(root)[0]
    assert pair.guide == root / "guide" / "Pair000.png"
    assert pair.input_depth == root / "input" / "Pair000.npy"


def test_missing_guide_names_the_pair(tmp_path):
    root = write_pairs(tmp_path / "val", count=3)
    (root / "guide" / "Pair001.png").unlink()
    with pytest.raises(DataFormatError, match=r"Pair001\.png: guide of pair 'Pair001' is missing"):
        index_pairs(root)


def test_missing_depth_and_folder(tmp_path):
    root = write_pairs(tmp_path / "val", count=2)
    (root / "input" / "Pair000.npy").unlink()
    with pytest.raises(DataFormatError, match=r"input depth of pair 'Pair000' is missing"):
        index_pairs(root)
    with pytest.raises(DataFormatError, match=r"guide: folder not found; a pairs folder holds"):
        (tmp_path / "only_input" / "input").mkdir(parents=True)
        index_pairs(tmp_path / "only_input")


def test_depth_optional_for_prediction(tmp_path):
    root = write_pairs(tmp_path / "val", count=2)
    (root / "input" / "Pair000.npy").unlink()
    (root / "guide" / "Pair001.npy").unlink()
    first, second = index_pairs(root, require_depth=False)
    assert first.input_depth is None and first.guide_depth == root / "guide" / "Pair000.npy"
    assert second.guide_depth is None and second.input_depth == root / "input" / "Pair001.npy"
    (root / "guide" / "Pair000.png").unlink()
    with pytest.raises(DataFormatError, match=r"guide of pair 'Pair000' is missing"):
        index_pairs(root, require_depth=False)


def test_size_mismatch_in_a_pair(tmp_path):
    root = write_pairs(tmp_path / "val", count=1)
    np.save(root / "guide" / "Pair000.npy", np.zeros((8, 8), np.float32))
    with pytest.raises(
        DataFormatError, match=r"pair 'Pair000': files differ in size.*guide/Pair000\.npy: \(8, 8\)"
    ):
        index_pairs(root)


def test_values_are_read_as_stored(tmp_path):
    root = write_pairs(tmp_path / "val", count=1)
    item = PairsDataset(index_pairs(root), FileReader(None))[0]
    stored = np.load(root / "guide" / "Pair000.npy")
    assert torch.equal(item["guide_depth"][0], torch.from_numpy(stored))


@pytest.mark.parametrize("require_depth", [True, False])
def test_missing_input_names_the_file_not_drops_the_pair(tmp_path, require_depth):
    root = write_pairs(tmp_path / "val", count=3)
    (root / "input" / "Pair001.png").unlink()
    with pytest.raises(DataFormatError, match=r"input/Pair001\.png: input of pair 'Pair001'") as e:
        index_pairs(root, require_depth=require_depth)
    assert e.value.path == root / "input" / "Pair001.png" and e.value.reason == "missing"


def test_depth_files_alone_name_a_pair_only_when_depth_is_required(tmp_path):
    root = write_pairs(tmp_path / "val", count=2)
    for folder in ("input", "guide"):
        (root / folder / "Pair001.png").unlink()  # Pair001: its depth files only
    with pytest.raises(DataFormatError, match=r"input/Pair001\.png: input of pair 'Pair001'"):
        index_pairs(root)
    # relight-predict's folder mode: a .npy names no pair
    assert [p.name for p in index_pairs(root, require_depth=False)] == ["Pair000"]
