import numpy as np
import pytest
from PIL import Image

from relight.data import DataFormatError, Lighting, index_vidit, split_scenes

from .vidit_factory import write_vidit


def test_index_maps_scene_to_lightings(tmp_path):
    root = write_vidit(tmp_path, scenes=(0, 7), lightings=[(2500, "N"), (6500, "SW"), (4500, "E")])
    scenes = index_vidit(root)
    assert sorted(scenes) == [0, 7]
    assert sorted(scenes[7].images) == [
        Lighting(2500, "N"),
        Lighting(4500, "E"),
        Lighting(6500, "SW"),
    ]
    assert scenes[7].images[Lighting(6500, "SW")].name == "Image007_6500_SW.png"
    assert scenes[7].depth.name == "Image007.npy"


def test_scenes_with_fewer_lightings_are_fine(tmp_path):
    write_vidit(tmp_path, scenes=(0,), lightings=[(2500, "N"), (3500, "E")])
    write_vidit(tmp_path, scenes=(1,))
    scenes = index_vidit(tmp_path)
    assert len(scenes[0].images) == 2 and len(scenes[1].images) == 40


def test_missing_depth_names_the_file(tmp_path):
    write_vidit(tmp_path, scenes=(0, 3))
    (tmp_path / "Image003.npy").unlink()
    with pytest.raises(DataFormatError, match=r"depth missing for 1 scene\(s\): Image003\.npy"):
        index_vidit(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(
        DataFormatError, match=r"no VIDIT images found; expected ImageXXX_TTTT_D\.png.*empty folder"
    ):
        index_vidit(tmp_path)


def test_wrongly_named_files_say_the_pattern(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "scene1_warm_north.png")
    with pytest.raises(
        DataFormatError, match=r"expected ImageXXX_TTTT_D\.png.*scene1_warm_north\.png"
    ):
        index_vidit(tmp_path)


def test_a_lighting_that_is_not_vidits_is_refused(tmp_path):
    """A typo'd temperature is not a 41st lighting that the other scenes lack."""
    write_vidit(tmp_path, scenes=(0, 1), lightings=[(2500, "N"), (3500, "E")])
    (tmp_path / "Image001_2500_N.png").rename(tmp_path / "Image001_4550_N.png")
    with pytest.raises(
        DataFormatError,
        match=r"Image001_4550_N\.png: lighting '4550_N' is not one of VIDIT's 40 "
        r"\(temperatures 2500, 3500, 4500, 5500, 6500 K; directions N, NE, E, SE, S, SW, W, NW\)",
    ) as error:
        index_vidit(tmp_path)
    assert error.value.path == tmp_path / "Image001_4550_N.png"


def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        index_vidit(tmp_path / "nope")


def test_image_depth_size_mismatch(tmp_path):
    write_vidit(tmp_path, scenes=(0,), lightings=[(2500, "N"), (3500, "E")])
    np.save(tmp_path / "Image000.npy", {"normalized_depth": np.zeros((16, 16))}, allow_pickle=True)
    with pytest.raises(
        DataFormatError,
        match=r"Image000_2500_N\.png: image is \(32, 32\) but its depth Image000\.npy is \(16, 16\)",
    ):
        index_vidit(tmp_path)


def test_split_explicit_and_ratio():
    train, val = split_scenes(range(10), val_scenes=[3, 5])
    assert val == [3, 5] and 3 not in train and len(train) == 8
    a = split_scenes(range(20), val_ratio=0.25, seed=1)
    b = split_scenes(range(20), val_ratio=0.25, seed=1)
    c = split_scenes(range(20), val_ratio=0.25, seed=2)
    assert a == b and a != c
    assert len(a[1]) == 5 and not set(a[0]) & set(a[1]) and sorted(a[0] + a[1]) == list(range(20))
    with pytest.raises(ValueError, match=r"not in the data: \[42\]"):
        split_scenes(range(10), val_scenes=[42])
    with pytest.raises(ValueError, match="no training scene"):
        split_scenes([1, 2], val_scenes=[1, 2])


def test_scenes_of_another_size_are_refused_at_the_native_size(tmp_path):
    write_vidit(tmp_path, scenes=(0, 1, 2), size=16, lightings=[(2500, "N"), (3500, "E")])
    write_vidit(tmp_path, scenes=(3,), size=32, lightings=[(2500, "N"), (3500, "E")])
    assert len(index_vidit(tmp_path)) == 4  # resized to data.image_size: fine
    with pytest.raises(
        DataFormatError,
        match=r"Image003_2500_N\.png: scene Image003 is \(32, 32\) but 3 other scenes are "
        r"\(16, 16\).*data\.image_size",
    ):
        index_vidit(tmp_path, one_size=True)
