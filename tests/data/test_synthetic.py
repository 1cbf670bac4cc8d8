import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mitsuba")

from relight.cli import minividit as minividit_cli  # noqa: E402
from relight.data import MiniVIDITDataModule, VIDITDataModule, index_pairs, index_vidit  # noqa: E402
from relight.data.formats import DataFormatError  # noqa: E402
from relight.data.lighting_change import (  # noqa: E402
    lighting_change,
    pair_lighting_changes,
    parse_lighting,
)
from relight.data.scene_generator import (  # noqa: E402
    SHIFTED_GENERATOR,
    TRAIN_GENERATOR,
    scene_description,
)
from relight.data.synthetic import (  # noqa: E402
    AZIMUTH,
    LIGHT_DISTANCE,
    RenderSettings,
    blackbody_rgb,
    choose_variant,
    is_rendered,
    pairs_plan,
    render_minividit,
)

from ..conftest import TINY_RENDER  # noqa: E402

TINY = RenderSettings(**TINY_RENDER)
#: 3 training scenes x (8 images + depth); 8 pairs x 5 files in each validation split
TINY_FILES = 3 * 9 + 8 * 5 + 8 * 5

#: factors drawn from a set of choices, and from a (low, high) range
DISCRETE = ("shapes", "materials", "ground_textures", "object_textures")
CONTINUOUS = (
    "object_size",
    "aspect",
    "camera_height",
    "camera_distance",
    "fov",
    "light_elevation",
    "light_size",
    "saturation",
)


@pytest.fixture(scope="module")
def minividit(tiny_minividit):
    out, _, summary = tiny_minividit
    return out, summary


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
    for split in ("validation", "validation_shifted"):
        pairs = index_pairs(out / split)
        assert [p.name for p in pairs] == [f"Pair{n:03d}" for n in range(8)]
        assert (out / split / "pairs.json").is_file()
    assert summary["rendered"] == TINY_FILES
    assert (out / "contact_sheet.png").is_file()
    saved = json.loads((out / "minividit.json").read_text())
    assert saved["variant"] == "scalar_rgb" and saved["complete"]
    assert is_rendered(out, TINY) and not is_rendered(out, replace(TINY, spp=8))


def test_pairs_are_consistent_with_their_sources(minividit):
    out, summary = minividit
    splits = summary["splits"]
    for split in ("validation", "validation_shifted"):
        scenes = {f"Image{sid:03d}" for sid in splits[split]["scenes"]}
        sources = json.loads((out / split / "pairs.json").read_text())
        assert sources == splits[split]["pairs"]
        for pair in sources.values():
            a, b = pair["input"].split("_")[0], pair["guide"].split("_")[0]
            assert a != b and {a, b} <= scenes  # cross-scene, inside the split
            assert pair["target"] == f"{a}_{pair['guide'].split('_', 1)[1]}"


def test_validation_pairs_draw_lightings_as_training_does(minividit):
    out, _ = minividit
    for split in ("validation", "validation_shifted"):
        kinds = pair_lighting_changes(out / split, [f"Pair{n:03d}" for n in range(8)])
        assert "same_lighting" not in kinds.values() and len(set(kinds.values())) >= 2
    # uniform over the 40 x 39 ordered pairs of different lightings: VIDIT's proportions
    plan = pairs_plan(RenderSettings(), list(range(200)), 20, stream=2)
    kinds = Counter(lighting_change(l1, l2) for _, l1, _, l2 in plan)
    assert set(kinds) == {"same_direction", "other_direction", "opposite_direction"}
    for kind, share in (("same_direction", 4 / 39), ("opposite_direction", 5 / 39)):
        assert kinds[kind] / len(plan) == pytest.approx(share, abs=0.02)
    assert all(a != b for a, _, b, _ in plan)


def test_shadows_move_with_direction_and_colour_with_temperature(minividit):
    out, _ = minividit

    def load(name: str) -> np.ndarray:
        return np.asarray(
            Image.open(out / "train" / f"{name}.png").convert("RGB"), dtype=np.float32
        )

    east, west = load("Image000_6500_E"), load("Image000_6500_W")
    assert np.abs(east - west).mean() > 5  # the lit/shadowed sides swap
    warm, cool = load("Image000_2500_E"), load("Image000_6500_E")
    assert (
        warm[..., 0].mean() / warm[..., 2].mean() > 1.5 * cool[..., 0].mean() / cool[..., 2].mean()
    )


def test_a_validation_image_is_the_render_of_its_source(minividit):
    """An input and a target of the same scene and lighting are the same picture."""
    out, summary = minividit
    seen: dict[str, bytes] = {}
    for name, pair in summary["splits"]["validation"]["pairs"].items():
        for role in ("input", "target"):
            data = (out / "validation" / role / f"{name}.png").read_bytes()
            assert seen.setdefault(pair[role], data) == data
    assert len(seen) < 16  # some source appears twice


def test_rendering_is_deterministic_and_resumable(minividit, tmp_path):
    out, _ = minividit
    again = render_minividit(tmp_path, TINY, progress=False)
    for name in (
        "train/Image002_2500_S.png",
        "validation/target/Pair001.png",
        "validation_shifted/guide/Pair004.png",
        "validation_shifted/input/Pair002.npy",
    ):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()
    (tmp_path / "train" / "Image000_2500_N.png").unlink()
    resumed = render_minividit(tmp_path, TINY, progress=False)
    assert resumed["rendered"] == 1 and again["rendered"] == TINY_FILES
    assert (out / "train/Image000_2500_N.png").read_bytes() == (
        tmp_path / "train/Image000_2500_N.png"
    ).read_bytes()


def test_a_folder_rendered_with_other_settings_is_not_mixed(minividit, tmp_path):
    out, _ = minividit
    render_minividit(tmp_path, TINY, progress=False)
    with pytest.raises(DataFormatError, match=r"other settings \(differing: \['spp'\]\)"):
        render_minividit(tmp_path, replace(TINY, spp=8), progress=False)
    render_minividit(tmp_path, replace(TINY, workers=2), progress=False)  # same pictures


def test_loads_through_the_datamodule(minividit):
    out, _ = minividit
    dm = VIDITDataModule(
        out / "train",
        pairs_dir=out / "validation",
        val_ratio=0,
        image_size=32,
        batch_size=2,
        shifted_pairs_dir=out / "validation_shifted",
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (2, 3, 32, 32)
    assert next(iter(dm.val_dataloader()))["target"].shape == (2, 3, 32, 32)
    sets = dm.evaluation_sets()
    assert list(sets) == ["eval", "eval_shifted"] and len(sets["eval_shifted"]) == 8
    assert sets["eval_shifted"].pairs[0].input.parent.parent == out / "validation_shifted"


def test_the_minividit_datamodule_validates_on_both_splits(tmp_path):
    dm = MiniVIDITDataModule(tmp_path, image_size=32)
    assert dm.pairs_dir == tmp_path / "validation"
    assert dm.shifted_pairs_dir == tmp_path / "validation_shifted"
    settings = dm.render_settings
    assert (settings.train_scenes, settings.val_scenes, settings.pairs_per_val_scene) == (96, 8, 4)
    assert (settings.shifted_scenes, settings.pairs_per_shifted_scene) == (10, 4)
    assert not is_rendered(tmp_path, settings)
    without = MiniVIDITDataModule(tmp_path, shifted_scenes_rendered=0, image_size=32)
    assert without.shifted_pairs_dir is None and without.render_settings.shifted_scenes == 0


def test_the_command_line_renders_the_shifted_split(tmp_path, monkeypatch, capsys):
    asked = []

    def render(out, settings):
        asked.append(settings)
        return {"rendered": 0, "seconds": 0.0, "variant": "scalar_rgb"}

    monkeypatch.setattr(minividit_cli, "render_minividit", render)
    minividit_cli.main([str(tmp_path), "--shifted-scenes", "4", "--pairs-per-shifted-scene", "2"])
    assert (asked[0].shifted_scenes, asked[0].pairs_per_shifted_scene) == (4, 2)
    assert asked[0].train_scenes == 96 and "contact sheet" in capsys.readouterr().out


def test_shifted_generator_differs_from_the_training_one():
    for factor in DISCRETE:  # none of its shapes, materials or texture kinds is trained on
        assert not set(getattr(SHIFTED_GENERATOR, factor)) & set(getattr(TRAIN_GENERATOR, factor))
    for factor in CONTINUOUS:  # another range, reaching past the training one
        (low, high), (train_low, train_high) = (
            getattr(SHIFTED_GENERATOR, factor),
            getattr(TRAIN_GENERATOR, factor),
        )
        assert (low, high) != (train_low, train_high), factor
        assert low < train_low or high > train_high, factor
    assert SHIFTED_GENERATOR.object_count != TRAIN_GENERATOR.object_count


def _in(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 1e-3 <= value <= bounds[1] + 1e-3


def test_each_split_is_rendered_from_its_generator(minividit):
    _, summary = minividit
    splits, descriptions = summary["splits"], summary["descriptions"]
    assert summary["content"]["generators"]["shifted"]["shapes"] == list(SHIFTED_GENERATOR.shapes)
    for split, generator in (
        ("train", TRAIN_GENERATOR),
        ("validation", TRAIN_GENERATOR),
        ("validation_shifted", SHIFTED_GENERATOR),
    ):
        assert splits[split]["generator"] == generator.name
        for sid in splits[split]["scenes"]:
            scene = descriptions[f"Image{sid:03d}"]
            assert scene["generator"] == generator.name
            assert _in(scene["camera"]["height"], generator.camera_height)
            assert _in(scene["camera"]["fov"], generator.fov)
            assert _in(scene["light"]["elevation"], generator.light_elevation)
            assert _in(scene["light"]["size"], generator.light_size)
            assert scene["ground"]["kind"] in generator.ground_textures
            for obj in scene["objects"]:
                assert obj["shape"] in generator.shapes
                assert obj["material"]["kind"] in generator.materials
    # the shifted scenes come from their own seed range: no description repeats a training one
    shifted = [descriptions[f"Image{s:03d}"] for s in splits["validation_shifted"]["scenes"]]
    train = [descriptions[f"Image{s:03d}"] for s in splits["train"]["scenes"]]
    assert all(d["objects"] != t["objects"] for d in shifted for t in train)
    # and they are what the shifted pairs show: a pair's input is one of the shifted scenes
    pairs = splits["validation_shifted"]["pairs"]
    ids = {int(p["input"][5:8]) for p in pairs.values()}
    assert ids == set(splits["validation_shifted"]["scenes"])
    assert all(parse_lighting(p["guide"]) for p in pairs.values())


def test_training_generator_varies_every_factor():
    """No single value of any factor is all a model sees."""
    scenes = [scene_description(seed) for seed in range(60)]
    objects = [o for s in scenes for o in s["objects"]]
    assert {o["shape"] for o in objects} == set(TRAIN_GENERATOR.shapes)
    assert {o["material"]["kind"] for o in objects} == set(TRAIN_GENERATOR.materials)
    assert {o["material"]["texture"]["kind"] for o in objects} == {
        "plain",
        *TRAIN_GENERATOR.object_textures,
    }
    assert {s["ground"]["kind"] for s in scenes} == set(TRAIN_GENERATOR.ground_textures)
    assert len({len(s["objects"]) for s in scenes}) >= 4
    for values in (
        [s["camera"]["height"] for s in scenes],
        [s["camera"]["fov"] for s in scenes],
        [s["light"]["elevation"] for s in scenes],
        [s["light"]["size"] for s in scenes],
        [o["height"] / o["size"] for o in objects],
    ):
        assert len(set(values)) == len(values) and np.std(values) > 0.1 * np.mean(values)


def test_every_camera_sees_the_scene_in_front_of_the_light():
    """A camera behind the square light would see its black back instead of the scene."""
    import itertools
    import math

    for g in (TRAIN_GENERATOR, SHIFTED_GENERATOR):
        corners = itertools.product(
            g.camera_height, g.camera_distance, g.camera_yaw, g.light_elevation, AZIMUTH.values()
        )
        for height, distance, yaw, elevation, azimuth in corners:
            e, a, y = math.radians(elevation), math.radians(azimuth), math.radians(yaw)
            light = LIGHT_DISTANCE * np.array(
                [math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]
            )
            camera = np.array([distance * math.sin(y), 0.2 - distance * math.cos(y), height])
            facing = -light / np.linalg.norm(light)  # the light looks at the origin
            assert np.dot(camera - light, facing) > 1.0, (g.name, height, elevation, azimuth)


def test_every_image_is_lit_by_its_own_lighting(minividit):
    out, summary = minividit
    for sid in summary["splits"]["train"]["scenes"]:
        images = {p.read_bytes() for p in (out / "train").glob(f"Image{sid:03d}_*.png")}
        assert len(images) == 8  # no two lightings give the same picture
    for split in ("validation", "validation_shifted"):
        for n in range(8):
            pair = [
                (out / split / role / f"Pair{n:03d}.png").read_bytes()
                for role in ("input", "target")
            ]
            assert pair[0] != pair[1]


def test_blackbody_colours():
    warm, neutral = blackbody_rgb(2500), blackbody_rgb(6500)
    assert warm[0] > warm[1] > warm[2]
    assert all(0.85 < c < 1.15 for c in neutral)  # close to the D65 white point


def test_scene_descriptions_are_seeded():
    assert scene_description(3) == scene_description(3) != scene_description(4)
    low, high = TRAIN_GENERATOR.object_count
    assert low <= len(scene_description(3)["objects"]) <= high
    shifted = scene_description(3, SHIFTED_GENERATOR)
    assert shifted != scene_description(3) and shifted["generator"] == "shifted"


def test_variant_probe_never_crashes_the_process():
    choose_variant.cache_clear()
    assert choose_variant("auto") in {"llvm_ad_rgb", "scalar_rgb"}


def test_bad_settings():
    with pytest.raises(ValueError, match="multiple of 16"):
        render_minividit("/nonexistent", RenderSettings(size=40))
    with pytest.raises(ValueError, match=">= 2 scenes per validation split"):
        render_minividit("/nonexistent", RenderSettings(shifted_scenes=1))


def test_only_vidits_lightings_are_rendered(tmp_path):
    """index_vidit refuses other lightings: the mini-VIDIT never writes one."""
    with pytest.raises(ValueError, match="renders VIDIT's lightings"):
        render_minividit(tmp_path, replace(TINY, temperatures=(2500, 4550)))
    assert not any(tmp_path.iterdir())
