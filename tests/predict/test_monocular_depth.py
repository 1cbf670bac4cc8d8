"""Monocular depth for photos without a depth map: the conversion, the weight policy, photos
as they come (EXIF, 8/16-bit, greyscale, sizes), saved maps, folder mode, the command."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from relight.cli.predict import main
from relight.data.formats import DataFormatError
from relight.data.pairs import PairFiles
from relight.data.photo_pairs import DepthOptions, read_pair
from relight.data.transforms import resize_depth, resize_image
from relight.models import monocular_depth
from relight.models.monocular_depth import (
    DEFAULT_DEPTH_MODEL,
    MonocularDepth,
    load_depth_model,
)
from relight.models.weights import WeightsUnavailableError
from relight.prediction import Predictor, predict_pairs, predict_single

from ..data.vidit_factory import write_pairs
from .conftest import save_relight_checkpoint, small_s3net
from .depth_models import RampDisparity, reference_normalized_depth, save_tiny_depth_model

pytest.importorskip("transformers")  # the 'depth' extra (in 'dev')


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return save_tiny_depth_model(tmp_path_factory.mktemp("depth_model") / "tiny")


@pytest.fixture(scope="module")
def tiny(tiny_folder) -> MonocularDepth:
    return load_depth_model(tiny_folder)


def write_photo(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A smooth colour photo (JPEG or PNG by suffix): gradients and a disc."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    disc = ((yy - rng.uniform(0.2, 0.6)) ** 2 + (xx - rng.uniform(0.2, 0.6)) ** 2) < 0.05
    rgb = np.stack([yy, xx, 0.3 + 0.6 * disc], axis=2)
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path, quality=95)
    return path


def as_tensor(array: np.ndarray, scale: float = 255.0) -> torch.Tensor:
    """(H, W) or (H, W, 3) pixels -> (3, H, W) float in [0, 1], written out independently."""
    array = np.asarray(array, np.float32) / scale
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def test_ramp_disparity_becomes_vidit_distance():
    """A stub network returning 1 / distance of a known ramp: normalized_depth must be the
    distance divided by the farthest, and past 100x the nearest it is clipped there."""
    from transformers import DPTImageProcessor

    processor = DPTImageProcessor(do_resize=False, do_normalize=False)  # pixels as given
    red = torch.linspace(0, 1, 6 * 10).reshape(6, 10)  # distance = near + (far - near) * red
    image = torch.stack([red, torch.zeros_like(red), torch.ones_like(red)])

    depth = MonocularDepth(RampDisparity(near=2.0, far=8.0), processor)(image)
    distance = 2.0 + 6.0 * red
    torch.testing.assert_close(depth, distance / 8.0, atol=1e-6, rtol=0)
    assert depth.min() == pytest.approx(0.25) and depth.max() == pytest.approx(1.0)

    sky = MonocularDepth(RampDisparity(near=1.0, far=500.0), processor)(image)
    expected = (1.0 + 499.0 * red).clamp(max=100.0) / 100.0
    torch.testing.assert_close(sky, expected, atol=1e-6, rtol=1e-5)

    metric = MonocularDepth(RampDisparity(2.0, 8.0, metric=True), processor, "distance")(image)
    torch.testing.assert_close(metric, distance / 8.0, atol=1e-6, rtol=0)

    nothing = MonocularDepth(RampDisparity(near=-2.0, far=-1.0, metric=True), processor)
    with pytest.raises(DataFormatError, match=r"dark\.jpg: the depth model .* found no depth"):
        nothing(image, origin="dark.jpg")


@pytest.mark.parametrize("size", [(57, 200), (130, 70)])
def test_tiny_model_gives_the_reference_depth(tiny, tiny_folder, size):
    image = torch.rand(3, *size, generator=torch.Generator().manual_seed(sum(size)))
    depth = tiny(image)
    assert depth.shape == size and depth.dtype == torch.float32
    assert 0.01 <= depth.min() < 0.9 and depth.max() == pytest.approx(1.0)  # near < far = 1
    reference = reference_normalized_depth(tiny_folder, image)
    np.testing.assert_allclose(depth.numpy(), reference, atol=1e-5)


PHOTO_KINDS = ["rgb_jpeg", "exif_rotated_jpeg", "grey_png", "grey16_png", "rgba_png"]


def write_photo_kind(folder: Path, kind: str) -> tuple[Path, torch.Tensor]:
    """A 64x96 (displayed) photo of ``kind`` and its pixels as displayed, computed without
    relight's reader."""
    photo = write_photo(folder / "source.png", 64, 96)
    pixels = np.asarray(Image.open(photo))
    if kind == "rgb_jpeg":
        Image.fromarray(pixels).save(folder / "photo.jpg", quality=95)
        return folder / "photo.jpg", as_tensor(np.asarray(Image.open(folder / "photo.jpg")))
    if kind == "exif_rotated_jpeg":  # stored 96x64 sideways, EXIF 6: turn 90 deg clockwise
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.rot90(pixels)).save(folder / "photo.jpg", exif=exif, quality=95)
        stored = np.asarray(Image.open(folder / "photo.jpg"))
        assert stored.shape[:2] == (96, 64)
        return folder / "photo.jpg", as_tensor(np.rot90(stored, k=-1))
    if kind == "grey_png":
        Image.fromarray(pixels[..., 1]).save(folder / "photo.png")
        return folder / "photo.png", as_tensor(pixels[..., 1])
    if kind == "grey16_png":
        grey16 = (pixels[..., 1].astype(np.uint16) * 257 + 100).clip(0, 65535).astype(np.uint16)
        Image.fromarray(grey16).save(folder / "photo.png")
        assert Image.open(folder / "photo.png").mode == "I;16"
        return folder / "photo.png", as_tensor(grey16, 65535.0)
    alpha = np.full((64, 96, 1), 200, np.uint8)
    Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA").save(folder / "photo.png")
    return folder / "photo.png", as_tensor(pixels)


@pytest.mark.parametrize("kind", PHOTO_KINDS)
def test_photos_as_they_come(tmp_path, small_net, tiny, tiny_folder, kind):
    """Each photo relit at its displayed size, its depth that of its displayed pixels."""
    photo, displayed = write_photo_kind(tmp_path, kind)
    guide = write_photo(tmp_path / "guide.jpg", 64, 96, seed=1)
    pair = PairFiles("single", photo, None, guide, None, None)
    output, saved = tmp_path / "relit.png", tmp_path / "depth"
    predict_single(Predictor(small_net, depth_model=tiny, save_depth=saved), pair, output)
    with Image.open(output) as relit:
        assert relit.size == (96, 64)
    depth = np.load(saved / "input" / "photo.npy")
    assert depth.shape == (64, 96)
    reference = reference_normalized_depth(tiny_folder, displayed)
    np.testing.assert_allclose(depth, reference, atol=1e-5)


def test_guide_of_another_size_saved_maps_and_their_reuse(tmp_path, small_net, tiny, tiny_folder):
    image = write_photo(tmp_path / "photo.jpg", 64, 96)
    guide = write_photo(tmp_path / "guide.jpg", 90, 60, seed=2)  # portrait, another size
    pair = PairFiles("single", image, None, guide, None, None)
    saved = tmp_path / "depth"
    item = read_pair(pair, DepthOptions(), estimator=tiny, save_depth=saved)

    guide_npy = np.load(saved / "guide" / "guide.npy")
    assert guide_npy.shape == (90, 60)  # estimated on the guide as it is
    guide_pixels = as_tensor(np.asarray(Image.open(guide)))
    np.testing.assert_allclose(
        guide_npy, reference_normalized_depth(tiny_folder, guide_pixels), atol=1e-5
    )
    # ... then resized to the input, like the guide itself
    assert item["guide"].shape == (3, 64, 96)
    expected = resize_depth(torch.from_numpy(guide_npy), (64, 96))
    assert torch.equal(item["guide_depth"][0], expected)
    assert torch.equal(
        item["input_depth"][0], torch.from_numpy(np.load(saved / "input" / "photo.npy"))
    )

    for role, stem in (("input", "photo"), ("guide", "guide")):
        npy = np.load(saved / role / f"{stem}.npy")
        with Image.open(saved / role / "preview" / f"{stem}_depth.png") as png:
            assert png.mode == "I;16"
            assert np.array_equal(np.asarray(png), np.round(npy * 65535).astype(np.uint16))
        assert 0 < npy.min() and npy.max() == 1.0

    # the saved .npy files are depth files: given back, the output is the same
    predict_single(Predictor(small_net, depth_model=tiny), pair, tmp_path / "estimated.png")
    given = PairFiles(
        "single", image, saved / "input" / "photo.npy", guide, saved / "guide" / "guide.npy", None
    )
    no_model = Predictor(small_net, depth_model="/nonexistent/model")
    predict_single(no_model, given, tmp_path / "given.png")
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "estimated.png")),
        np.asarray(Image.open(tmp_path / "given.png")),
    )


def test_only_missing_maps_are_estimated(tmp_path, small_net, tiny):
    pairs = write_pairs(tmp_path / "pairs", count=3, size=64, target=False)
    (pairs / "input" / "Pair000.npy").unlink()
    (pairs / "guide" / "Pair002.npy").unlink()
    out, saved = tmp_path / "out", tmp_path / "depth"
    predict_pairs(
        Predictor(small_net, depth_model=tiny, save_depth=saved), pairs, out, progress=False
    )
    assert sorted(p.name for p in out.glob("*.png")) == [
        "Pair000.png",
        "Pair001.png",
        "Pair002.png",
    ]
    written = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert written == [
        "guide/Pair002.npy",
        "guide/preview/Pair002_depth.png",
        "input/Pair000.npy",
        "input/preview/Pair000_depth.png",
    ]
    # a pair folder with every depth given needs no depth model at all
    complete = write_pairs(tmp_path / "complete", count=1, size=32, target=False)
    no_model = Predictor(
        small_net, depth_model="/nonexistent/model", save_depth=tmp_path / "unused"
    )
    predict_pairs(no_model, complete, tmp_path / "out2", progress=False)
    assert not (tmp_path / "unused").exists()


def test_model_without_depth_runs_no_estimator(tmp_path, capsys):
    checkpoint = save_relight_checkpoint(small_s3net(depth=False), tmp_path / "no_depth.ckpt")
    image = write_photo(tmp_path / "photo.jpg", 48, 64)
    args = ["--input", str(image), "--guide", str(image), "--checkpoint", str(checkpoint)]
    # a depth model that would fail to load if anything tried to load it
    main([*args, "--output", str(tmp_path / "relit.png"), "--depth-model", "/nonexistent/model"])
    assert (tmp_path / "relit.png").is_file()
    with pytest.raises(SystemExit):
        main([*args, "--output", str(tmp_path / "b.png"), "--save-depth", str(tmp_path / "d")])
    assert "--save-depth: this checkpoint's model takes no depth" in capsys.readouterr().err


def test_weights_unavailable_and_bad_models(tmp_path, tiny_folder):
    # the test session is offline (HF_HUB_OFFLINE=1) with an empty Hugging Face cache
    with pytest.raises(WeightsUnavailableError) as error:
        load_depth_model()
    message = str(error.value)
    assert f"'{DEFAULT_DEPTH_MODEL}'" in message and "HF_HUB_OFFLINE=1" in message
    assert "three ways" in message and "--depth-model /path/to/folder" in message
    assert "--input-depth and --guide-depth" in message

    with pytest.raises(WeightsUnavailableError, match=r"nowhere does not exist"):
        load_depth_model(tmp_path / "nowhere")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (incomplete / name).write_bytes((tiny_folder / name).read_bytes())
    with pytest.raises(WeightsUnavailableError, match=r"incomplete lacks model\.safetensors or"):
        load_depth_model(incomplete)
    (incomplete / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsUnavailableError, match=r"could not be loaded from .*incomplete"):
        load_depth_model(incomplete)
    (incomplete / "config.json").write_text('{"model_type": "dpt"}')
    with pytest.raises(ValueError, match=r"is a 'dpt' model; relight converts .* Depth Anything"):
        load_depth_model(incomplete)


def test_without_the_depth_extra(monkeypatch, tiny_folder, tmp_path, small_checkpoint, capsys):
    real = monocular_depth.importlib.util.find_spec
    monkeypatch.setattr(
        monocular_depth.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "transformers" else real(name, *a),
    )
    with pytest.raises(
        ImportError, match=r"needs the 'depth' extra: pip install 'relight\[depth\]'"
    ):
        load_depth_model(tiny_folder)
    # the command ends in one line naming the extra, not in a traceback
    photo = write_photo(tmp_path / "photo.jpg", 64, 96)
    args = ["--input", str(photo), "--guide", str(photo), "--checkpoint", str(small_checkpoint)]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--output", str(tmp_path / "relit.png"), "--depth-model", str(tiny_folder)])
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "Traceback" not in err
    assert "relight-predict: error: estimating depth maps needs the 'depth' extra" in err


def test_metric_depth_anything_uses_the_distance_rule(tmp_path):
    folder = save_tiny_depth_model(tmp_path / "metric", depth_estimation_type="metric")
    assert load_depth_model(folder).convention == "distance"


def depth_sensitive_s3net():
    """A small random S3Net whose output visibly depends on depth: the global residual
    keeps it off the clamp, and its stem weighs the two depth channels 30 times more."""
    net = small_s3net(seed=1, global_residual=True)
    with torch.no_grad():
        net.encoder.conv1.weight[:, 6:] *= 30
    return net


def test_relight_predict_command_uses_the_estimated_depth(tmp_path, tiny_folder):
    """The one command, as a user runs it: two JPEGs, a checkpoint, no depth; the model
    folder given with --depth-model. Its output is S3Net on the reference depths."""
    photo = write_photo(tmp_path / "photo.jpg", 72, 100, seed=3)
    guide = write_photo(tmp_path / "guide.jpg", 60, 80, seed=4)
    net = depth_sensitive_s3net()
    checkpoint = save_relight_checkpoint(net, tmp_path / "s3net.ckpt")
    script = Path(sys.executable).parent / "relight-predict"
    assert script.is_file(), f"{script}: relight is not installed in this environment"
    src = str(Path(__file__).parents[2] / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [
            str(script),
            "--input",
            "photo.jpg",
            "--guide",
            "guide.jpg",
            "--checkpoint",
            str(checkpoint),
            "--output",
            "out.png",
            "--depth-model",
            str(tiny_folder),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote out.png" in done.stdout
    relit = torch.from_numpy(np.asarray(Image.open(tmp_path / "out.png"), np.float32) / 255)

    image = as_tensor(np.asarray(Image.open(photo)))
    guide_image = as_tensor(np.asarray(Image.open(guide)))
    input_depth = torch.from_numpy(reference_normalized_depth(tiny_folder, image))
    guide_depth = torch.from_numpy(reference_normalized_depth(tiny_folder, guide_image))

    def relight(input_depth: torch.Tensor, guide_depth: torch.Tensor) -> torch.Tensor:
        item = {
            "input": image,
            "guide": resize_image(guide_image, (72, 100)),
            "input_depth": resize_depth(input_depth, (72, 100))[None],
            "guide_depth": resize_depth(guide_depth, (72, 100))[None],
        }
        return Predictor(net)(item)[0].permute(1, 2, 0)

    # measured: 0.5/255 from the expected output, 74/255 from flat and 6/255 from swapped depth
    assert (relit - relight(input_depth, guide_depth)).abs().max() <= 1 / 255 + 1e-6
    # the depth matters: flat or swapped depth maps give outputs outside that bound
    flat = relight(torch.ones(72, 100), torch.ones(72, 100))
    assert (relit - flat).abs().max() > 10 / 255
    swapped = relight(guide_depth, input_depth)
    assert (relit - swapped).abs().max() > 2 / 255


def test_maps_saved_into_the_pairs_folder_are_its_depth_next_time(tmp_path, small_net, tiny):
    """``--pairs DIR --save-depth DIR``: the next run reads the saved maps and finds the
    same pairs (the 16-bit previews once sat beside the images and were taken for pairs)."""
    pairs = write_pairs(tmp_path / "pairs", count=2, size=64, target=False)
    (pairs / "input" / "Pair000.npy").unlink()
    (pairs / "guide" / "Pair001.npy").unlink()
    first = predict_pairs(
        Predictor(small_net, depth_model=tiny, save_depth=pairs), pairs, tmp_path / "a"
    )
    assert (pairs / "input" / "Pair000.npy").is_file()
    no_model = Predictor(small_net, depth_model="/nonexistent/model")
    second = predict_pairs(no_model, pairs, tmp_path / "b", progress=False)
    assert first["images"] == second["images"] == 2
    names = sorted(p.name for p in (tmp_path / "b").glob("*.png"))
    assert names == ["Pair000.png", "Pair001.png"]
    for name in names:
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "a" / name)),
            np.asarray(Image.open(tmp_path / "b" / name)),
        )
