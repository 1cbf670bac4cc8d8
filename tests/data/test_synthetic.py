import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mitsuba")

from relight.data import VIDITDataModule, index_pairs, index_vidit  # noqa: E402
from relight.data.synthetic import (  # noqa: E402
    RenderSettings,
    blackbody_rgb,
    choose_variant,
    render_minividit,
    scene_description,
)

TINY = RenderSettings(
    size=32,
    train_scenes=3,
    val_scenes=2,
    pairs_per_val_scene=1,
    spp=4,
    temperatures=(2500, 6500),
    directions=("N", "E", "S", "W"),
    workers=1,
    variant="scalar_rgb",
)


@pytest.fixture(scope="module")
def minividit(tmp_path_factory):
    out = tmp_path_factory.mktemp("minividit")
    return out, render_minividit(out, TINY, progress=False)


def test_layout_is_vidit_track2(minividit):
    out, summary = minividit
    scenes = index_vidit(out / "train")
    assert sorted(scenes) == [0, 1, 2]
    assert all(len(s.images) == 8 for s in scenes.values())
    with Image.open(out / "train" / "Image001_6500_W.png") as image:
        assert image.mode == "RGBA" and image.size == (32, 32)
        assert np.asarray(image)[..., 3].min() == 255
    record = np.load(out / "train" / "Image001.npy", allow_pickle=True).item()
    assert set(record) == {"normalized_depth", "ref_center_dis"}
    depth = record["normalized_depth"]
    assert depth.shape == (32, 32) and depth.dtype == np.float32
    assert 0 < depth.min() < depth.max() <= 1
    pairs = index_pairs(out / "validation")
    assert [p.name for p in pairs] == ["Pair000", "Pair001"]
    assert summary["rendered"] == 3 * 9 + 2 * 5
    assert (out / "contact_sheet.png").is_file()
    assert json.loads((out / "minividit.json").read_text())["variant"] == "scalar_rgb"


def test_pairs_are_consistent_with_the_plan(minividit):
    out, summary = minividit
    for pair in summary["pairs"]:
        a, b = pair["input"].split("_")[0], pair["guide"].split("_")[0]
        assert a != b and pair["target"].startswith(a)
        assert pair["target"].split("_", 1)[1] == pair["guide"].split("_", 1)[1]


def test_shadows_move_with_direction_and_colour_with_temperature(minividit):
    out, _ = minividit

    def load(name: str) -> np.ndarray:
        return np.asarray(
            Image.open(out / "train" / f"{name}.png").convert("RGB"), dtype=np.float32
        )

    east, west = load("Image000_6500_E"), load("Image000_6500_W")
    assert np.abs(east - west).mean() > 10  # the lit/shadowed sides swap
    warm, cool = load("Image000_2500_E"), load("Image000_6500_E")
    assert (
        warm[..., 0].mean() / warm[..., 2].mean() > 1.5 * cool[..., 0].mean() / cool[..., 2].mean()
    )


def test_rendering_is_deterministic_and_resumable(minividit, tmp_path):
    out, _ = minividit
    again = render_minividit(tmp_path, TINY, progress=False)
    for name in ("train/Image002_2500_S.png", "validation/target/Pair001.png"):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()
    (tmp_path / "train" / "Image000_2500_N.png").unlink()
    resumed = render_minividit(tmp_path, TINY, progress=False)
    assert resumed["rendered"] == 1 and again["rendered"] == 37


def test_loads_through_the_datamodule(minividit):
    out, _ = minividit
    dm = VIDITDataModule(
        out / "train", pairs_dir=out / "validation", val_ratio=0, image_size=32, batch_size=2
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (2, 3, 32, 32)
    assert next(iter(dm.val_dataloader()))["target"].shape == (2, 3, 32, 32)


def test_blackbody_colours():
    warm, neutral = blackbody_rgb(2500), blackbody_rgb(6500)
    assert warm[0] > warm[1] > warm[2]
    assert all(0.85 < c < 1.15 for c in neutral)  # close to the D65 white point


def test_scene_descriptions_are_seeded():
    assert scene_description(3) == scene_description(3) != scene_description(4)
    assert 3 <= len(scene_description(3)["objects"]) <= 6


def test_variant_probe_never_crashes_the_process():
    choose_variant.cache_clear()
    assert choose_variant("auto") in {"llvm_ad_rgb", "scalar_rgb"}


def test_bad_settings():
    with pytest.raises(ValueError, match="multiple of 16"):
        render_minividit("/nonexistent", RenderSettings(size=40))
