import json
import re
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from relight import prediction
from relight.any_size import SizePolicy
from relight.checkpoints import CheckpointError, net_from_any_checkpoint
from relight.cli.predict import main
from relight.data.formats import DataFormatError
from relight.data.photo_pairs import DepthOptions, read_depth_as
from relight.data.transforms import resize_depth, resize_image
from relight.models.execution import BF16_TOLERANCE
from relight.prediction import Predictor

from ..data.vidit_factory import lit_image, write_pairs
from ..metrics_reference import assert_means_of_rows, skimage_scores
from ..models.authors_state import synthetic_authors_state_dict
from .conftest import save_relight_checkpoint, small_s3net


def write_rgb(path, height, width, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def distance_map(height, width):
    """A VIDIT-style normalized_depth: distance / farthest, near = 0.25, far = 1."""
    yy, xx = np.mgrid[0:height, 0:width]
    return (0.25 + 0.75 * (yy + xx) / (height + width - 2)).astype(np.float32)


def write_depth(path, depth, kind):
    """``depth`` (VIDIT convention) written as ``kind``; returns (path, convention)."""
    if kind == "dict_npy":
        np.save(path.with_suffix(".npy"), {"normalized_depth": depth, "ref_center_dis": 3.0})
        return path.with_suffix(".npy"), "vidit"
    if kind == "plain_npy":
        np.save(path.with_suffix(".npy"), depth)
        return path.with_suffix(".npy"), "vidit"
    if kind == "png16_distance":  # a depth sensor in millimetres (up to 4 m)
        millimetres = (depth * 4000).round().astype(np.uint16)
        Image.fromarray(millimetres).save(path.with_suffix(".png"))
        return path.with_suffix(".png"), "distance"
    if kind == "png8_disparity":  # a monocular estimator's 8-bit visualisation (near bright)
        disparity = (1 / depth) / (1 / depth).max()
        Image.fromarray((disparity * 255).round().astype(np.uint8)).save(path.with_suffix(".png"))
        return path.with_suffix(".png"), "disparity"
    raise AssertionError(kind)


DEPTH_KINDS = ["dict_npy", "plain_npy", "png16_distance", "png8_disparity"]


def predict_folder(pairs, checkpoint, out, *extra: str) -> None:
    """relight-predict --pairs PAIRS --checkpoint CKPT --output OUT [extra...]."""
    main(["--pairs", str(pairs), "--checkpoint", str(checkpoint), "--output", str(out), *extra])


def expected_depth(path, kind) -> np.ndarray:
    """The normalized_depth relight-predict must derive from a file ``write_depth`` wrote,
    computed here from the stored values: distance / farthest, or nearest disparity /
    disparity."""
    if kind in ("dict_npy", "plain_npy"):
        stored = np.load(path, allow_pickle=True)
        return stored.item()["normalized_depth"] if stored.dtype == object else stored
    with Image.open(path) as image:
        values = np.asarray(image).astype(np.float64)
    if kind == "png16_distance":
        return (values / values.max()).astype(np.float32)
    return (values[values > 0].min() / values).astype(np.float32)


def rgb_of(path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1) / 255


def expected_relit(net, image, guide, depth, guide_depth) -> np.ndarray:
    """The 8-bit output of ``net`` on the input built here: image, guide, image depth,
    guide depth, reflect-padded at the bottom and right to a multiple of 16 and cropped."""
    x = torch.cat([image, guide, torch.as_tensor(depth)[None], torch.as_tensor(guide_depth)[None]])
    height, width = x.shape[-2:]
    pad = (0, -width % 16, 0, -height % 16)
    with torch.no_grad():
        out = net(torch.nn.functional.pad(x[None].float(), pad, mode="reflect"))
    out = out[0, :, :height, :width].clamp(0, 1)
    return (out * 255 + 0.5).byte().permute(1, 2, 0).numpy()


def assert_png_equals(path, expected: np.ndarray) -> None:
    with Image.open(path) as relit:
        assert relit.mode == "RGB"
        written = np.asarray(relit).astype(int)
    assert written.shape == expected.shape
    assert np.abs(written - expected.astype(int)).max() <= 1  # within 1/255


@pytest.mark.parametrize("kind", DEPTH_KINDS)
def test_every_depth_format_becomes_normalized_depth(tmp_path, kind):
    depth = distance_map(24, 40)
    path, convention = write_depth(tmp_path / "depth", depth, kind)
    read = read_depth_as(path, (24, 40), DepthOptions(convention))
    tolerance = {"png8_disparity": 0.02, "png16_distance": 1e-3}.get(kind, 0)
    assert read.shape == (24, 40)
    assert np.abs(read.numpy() - depth).max() <= tolerance


@pytest.mark.parametrize("kind", DEPTH_KINDS)
def test_single_pair_with_each_depth_format(tmp_path, small_net, small_checkpoint, kind):
    image = write_rgb(tmp_path / "in.png", 48, 64, seed=1)
    guide = write_rgb(tmp_path / "guide.png", 48, 64, seed=2)
    depth, convention = write_depth(tmp_path / "in_depth", distance_map(48, 64), kind)
    guide_depth, _ = write_depth(tmp_path / "guide_depth", distance_map(48, 64)[::-1], kind)
    output = tmp_path / "out" / "relit.png"
    main(
        [
            "--input",
            str(image),
            "--input-depth",
            str(depth),
            "--guide",
            str(guide),
            "--guide-depth",
            str(guide_depth),
            "--depth-convention",
            convention,
            "--checkpoint",
            str(small_checkpoint),
            "--output",
            str(output),
        ]
    )
    expected = expected_relit(
        small_net,
        rgb_of(image),
        rgb_of(guide),
        expected_depth(depth, kind),
        expected_depth(guide_depth, kind),
    )
    assert_png_equals(output, expected)
    assert not list(output.parent.glob(".*tmp"))


def test_odd_size_own_depth_resolution_and_guide_of_another_size(
    tmp_path, small_net, small_checkpoint
):
    """1000x750 input, depth estimated at half resolution, a guide of another size: the
    depth is resized to the image, the guide and its depth to the input's size."""
    image = write_rgb(tmp_path / "in.png", 750, 1000)
    guide = write_rgb(tmp_path / "guide.png", 480, 640)
    np.save(tmp_path / "in.npy", distance_map(375, 500))
    np.save(tmp_path / "guide.npy", distance_map(480, 640))
    output = tmp_path / "relit.png"
    main(
        [
            "--input",
            str(image),
            "--input-depth",
            str(tmp_path / "in.npy"),
            "--guide",
            str(guide),
            "--guide-depth",
            str(tmp_path / "guide.npy"),
            "--checkpoint",
            str(small_checkpoint),
            "--output",
            str(output),
        ]
    )
    size = (750, 1000)
    expected = expected_relit(
        small_net,
        rgb_of(image),
        resize_image(rgb_of(guide), size),
        resize_depth(torch.from_numpy(distance_map(375, 500)), size),
        resize_depth(torch.from_numpy(distance_map(480, 640)), size),
    )
    assert_png_equals(output, expected)


def test_depth_of_another_aspect_ratio_is_refused(tmp_path):
    np.save(tmp_path / "d.npy", distance_map(40, 40))
    with pytest.raises(DataFormatError, match=r"d\.npy: depth of 40x40 does not match"):
        read_depth_as(tmp_path / "d.npy", (30, 40), DepthOptions())


def test_folder_mode_metrics_and_submission_zip(tmp_path, small_checkpoint):
    pairs = write_pairs(tmp_path / "pairs", count=3, size=48, target=True)
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="LPIPS and MPS are OFF"):
        predict_folder(
            pairs, small_checkpoint, out, "--submission", "--quiet", "--description", "test run"
        )
    names = [f"Pair{n:03d}.png" for n in range(3)]
    assert sorted(p.name for p in out.glob("*.png")) == names
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["images"] == 3 and len(summary["per_image"]) == 3
    assert set(summary["results"]["S3Net"]) == {"psnr", "ssim"}  # LPIPS/MPS n/a offline
    assert "identity (output = input)" in summary["results"]
    assert "| n/a | n/a |" in summary["table"]
    assert all(row["seconds"] > 0 for row in summary["per_image"])
    assert_means_of_rows(summary["results"], summary["per_image"])
    for row in summary["per_image"]:  # scored against the right files
        target = pairs / "target" / f"{row['name']}.png"
        identity = skimage_scores(pairs / "input" / f"{row['name']}.png", target)
        assert row["identity_psnr"] == pytest.approx(identity["psnr"], abs=1e-4)
        assert row["identity_ssim"] == pytest.approx(identity["ssim"], abs=1e-4)
        written = skimage_scores(out / f"{row['name']}.png", target)  # 8-bit: nearly equal
        assert row["psnr"] == pytest.approx(written["psnr"], abs=0.05)
        assert row["ssim"] == pytest.approx(written["ssim"], abs=2e-3)

    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted([*names, "readme.txt"])
        readme = archive.read("readme.txt").decode()
        assert archive.read("Pair001.png") == (out / "Pair001.png").read_bytes()
    lines = readme.splitlines()
    assert re.fullmatch(r"Runtime per image \[s\] : \d+\.\d\d", lines[0])
    assert lines[1:] == [
        "CPU[1] / GPU[0] : 1",
        "Extra Data [1] / No Extra Data [0] : 0",
        "Other description : test run",
    ]
    assert not list(out.glob(".*tmp"))


def test_folder_without_targets_writes_images_only(tmp_path, small_checkpoint):
    pairs = write_pairs(tmp_path / "pairs", count=2, size=32, target=False)
    out = tmp_path / "out"
    predict_folder(pairs, small_checkpoint, out, "--quiet")
    assert sorted(p.name for p in out.iterdir()) == ["Pair000.png", "Pair001.png"]


@pytest.fixture(scope="module")
def authors_weight_pkl(tmp_path_factory):
    path = tmp_path_factory.mktemp("authors") / "weight.pkl"
    torch.save({"state_dict": synthetic_authors_state_dict()}, path)
    return path


def test_authors_checkpoint_is_converted_on_the_fly(tmp_path, authors_weight_pkl):
    net, config, kind = net_from_any_checkpoint(authors_weight_pkl)
    assert kind == "authors" and config["encoder"] == "res2net101d" and not net.training
    authors = torch.load(authors_weight_pkl, weights_only=True)["state_dict"]
    assert torch.equal(
        net.state_dict()["attention16.conv2.weight"], authors["mid_conv.conv2.weight"]
    )
    image = Image.fromarray(lit_image(1, 2500, "N", 64))  # RGBA, as VIDIT
    image.save(tmp_path / "in.png")
    Image.fromarray(lit_image(2, 6500, "E", 64)).save(tmp_path / "guide.png")
    np.save(tmp_path / "d.npy", {"normalized_depth": distance_map(64, 64)})
    output = tmp_path / "relit.png"
    main(
        [
            "--input",
            str(tmp_path / "in.png"),
            "--input-depth",
            str(tmp_path / "d.npy"),
            "--guide",
            str(tmp_path / "guide.png"),
            "--guide-depth",
            str(tmp_path / "d.npy"),
            "--checkpoint",
            str(authors_weight_pkl),
            "--output",
            str(output),
        ]
    )
    with Image.open(output) as relit:
        assert relit.size == (64, 64)


def test_relight_convert_output_and_unknown_checkpoints(tmp_path):
    net = small_s3net()
    converted = tmp_path / "converted.pt"
    torch.save({"state_dict": net.state_dict(), "source": "weight.pkl"}, converted)
    with pytest.raises(CheckpointError, match="converted.pt: the checkpoint does not match"):
        net_from_any_checkpoint(converted)  # a relight-convert file holds the paper's model
    stray = tmp_path / "stray.pt"
    torch.save({"state_dict": {"head.weight": torch.zeros(2)}}, stray)
    with pytest.raises(CheckpointError, match="stray.pt: neither a relight checkpoint"):
        net_from_any_checkpoint(stray)
    other = tmp_path / "other.pt"
    torch.save({"epoch": 3}, other)
    with pytest.raises(CheckpointError, match="other.pt: not a checkpoint relight can use"):
        net_from_any_checkpoint(other)
    with pytest.raises(CheckpointError, match="missing.ckpt"):
        net_from_any_checkpoint(tmp_path / "missing.ckpt")


def test_relight_checkpoint_of_a_variant(tmp_path):
    net = small_s3net(attention=False, global_residual=True)
    path = save_relight_checkpoint(net, tmp_path / "variant.ckpt")
    loaded, config, kind = net_from_any_checkpoint(path)
    assert kind == "relight" and config["attention"] is False
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_bf16_is_close_to_fp32(small_net):
    item = {
        "input": torch.rand(3, 40, 56),
        "guide": torch.rand(3, 40, 56),
        "input_depth": torch.rand(1, 40, 56),
        "guide_depth": torch.rand(1, 40, 56),
    }
    fp32, seconds = Predictor(small_net, precision="fp32")(item)
    bf16, _ = Predictor(small_net, precision="bf16")(item)
    assert fp32.shape == bf16.shape == (3, 40, 56) and bf16.dtype == torch.float32
    assert seconds > 0
    # close, and bf16 really ran (channels_last alone changes the output by < 1e-7)
    assert 1e-5 < (fp32 - bf16).abs().mean() < BF16_TOLERANCE["mean_abs"]


def test_command_line_errors(tmp_path, small_checkpoint, capsys):
    base = ["--checkpoint", str(small_checkpoint)]
    with pytest.raises(SystemExit):
        main([*base, "--output", str(tmp_path / "o.png")])
    assert "give --pairs DIR, or --input and --guide" in capsys.readouterr().err
    image = write_rgb(tmp_path / "in.png", 32, 32)
    with pytest.raises(SystemExit):
        main([*base, "--input", str(image), "--guide", str(image), "--output", str(tmp_path)])
    assert "--output must be a .png file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--pairs", str(tmp_path), "--output", str(tmp_path), "--tile", "100"])
    assert "multiple of 16" in capsys.readouterr().err
    assert SizePolicy().check() == SizePolicy()


def test_folder_problems_are_found_before_the_checkpoint_loads(
    tmp_path, small_checkpoint, monkeypatch, capsys
):
    """Each pair's depth maps and the submission zip's place are checked first: a depth
    map of the wrong shape in the second pair once stopped the run after the first was
    relit, and a folder given as the zip failed after every pair."""
    pairs = write_pairs(tmp_path / "pairs", count=2, size=48, target=False)
    np.save(pairs / "guide" / "Pair001.npy", np.ones((48, 24), np.float32))
    out = tmp_path / "out"

    def no_loading(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded before the inputs were checked")

    monkeypatch.setattr("relight.cli.predict.net_from_any_checkpoint", no_loading)
    base = ["--checkpoint", str(small_checkpoint), "--output", str(out), "--quiet"]
    with pytest.raises(SystemExit):
        main([*base, "--pairs", str(pairs)])
    assert "Pair001.npy: depth of 48x24 does not match" in capsys.readouterr().err
    assert not list(out.glob("*.png"))

    np.save(pairs / "guide" / "Pair001.npy", np.ones((48, 48), np.float32))
    folder = tmp_path / "a_folder"
    folder.mkdir()
    for bad in (folder, tmp_path / "team.tar"):
        with pytest.raises(SystemExit):
            main([*base, "--pairs", str(pairs), "--submission", str(bad)])
        assert f"--submission must name a .zip file; got {bad}" in capsys.readouterr().err


def test_folder_flags_with_a_single_pair_are_usage_errors(tmp_path, small_checkpoint, capsys):
    image = write_rgb(tmp_path / "in.png", 32, 32)
    single = ["--checkpoint", str(small_checkpoint), "--input", str(image), "--guide", str(image)]
    single += ["--output", str(tmp_path / "o.png")]
    for flags, named in (
        (["--gt-dir", str(tmp_path)], "--gt-dir"),
        (["--submission"], "--submission"),
        (["--extra-data", "--description", "mine"], "--extra-data, --description"),
        (["--lpips-weights", "none"], "--lpips-weights"),
    ):
        with pytest.raises(SystemExit) as stop:
            main([*single, *flags])
        assert stop.value.code == 2
        assert f"{named} apply to a pairs folder (--pairs DIR) only" in capsys.readouterr().err


def test_submission_path_given_explicitly(tmp_path, small_checkpoint):
    pairs = write_pairs(tmp_path / "pairs", count=1, size=32, target=False)
    zip_path = tmp_path / "elsewhere" / "team.zip"
    predict_folder(
        pairs,
        small_checkpoint,
        tmp_path / "out",
        "--quiet",
        "--submission",
        str(zip_path),
        "--extra-data",
    )
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["Pair000.png", "readme.txt"]
        assert "Extra Data [1] / No Extra Data [0] : 1" in archive.read("readme.txt").decode()
    assert not (tmp_path / "out" / "submission.zip").exists()


def test_guide_depth_in_another_convention(tmp_path, small_net, small_checkpoint, capsys):
    """Your photo with a monocular disparity PNG, a VIDIT guide with its dict .npy."""
    image = write_rgb(tmp_path / "in.png", 48, 64)
    depth, _ = write_depth(tmp_path / "in_depth", distance_map(48, 64), "png8_disparity")
    guide_depth, _ = write_depth(tmp_path / "guide_depth", distance_map(48, 64), "dict_npy")
    args = [
        "--input",
        str(image),
        "--input-depth",
        str(depth),
        "--guide",
        str(image),
        "--guide-depth",
        str(guide_depth),
        "--depth-convention",
        "disparity",
        "--guide-depth-convention",
        "vidit",
        "--checkpoint",
        str(small_checkpoint),
    ]
    main([*args, "--output", str(tmp_path / "a.png")])
    expected = expected_relit(
        small_net,
        rgb_of(image),
        rgb_of(image),
        expected_depth(depth, "png8_disparity"),
        distance_map(48, 64),
    )
    assert_png_equals(tmp_path / "a.png", expected)
    # by default the guide's depth is read in the input's convention
    np.save(guide_depth, {"normalized_depth": np.zeros((48, 64), np.float32)})
    with pytest.raises(SystemExit) as stopped:
        main(
            [*args[:-4], "--checkpoint", str(small_checkpoint), "--output", str(tmp_path / "b.png")]
        )
    assert stopped.value.code == 1
    assert "guide_depth.npy: a 'disparity' depth map" in capsys.readouterr().err


def auto_item() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    shapes = {"input": 3, "guide": 3, "input_depth": 1, "guide_depth": 1}
    return {k: torch.rand(c, 48, 64, generator=generator) for k, c in shapes.items()}


def test_precision_auto_is_fp32_without_native_bf16():
    net = small_s3net()
    auto = Predictor(net, precision="auto")
    assert auto.mode == "eager-fp32" and not auto.candidates  # a CPU: bf16 only by name
    out, _ = auto(auto_item())
    assert auto.auto_choice is None  # nothing timed
    assert torch.equal(out, Predictor(small_s3net(), precision="fp32")(auto_item())[0])


@pytest.mark.parametrize(
    ("capability", "native"), [((7, 0), False), ((7, 5), False), ((8, 0), True)]
)
def test_native_bf16_is_ampere_on_the_given_gpu(monkeypatch, capability, native):
    """A V100 or T4 emulates bf16 (torch's is_bf16_supported says yes there): auto would
    time an emulated bf16-cl; and the GPU asked about is the one given (--device cuda:1)."""
    asked = []

    def get_device_capability(device):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", get_device_capability)
    assert prediction.native_bf16(torch.device("cuda", 1)) is native
    assert asked == [torch.device("cuda", 1)]
    assert prediction.native_bf16(torch.device("cpu")) is False


def slow_down(monkeypatch, slow_mode: str, seconds: float = 0.4) -> None:
    """Each call of ``slow_mode`` takes ``seconds`` longer (as bf16-cl on an H200 at 1024²,
    batch 1: slower than fp32, which uses TF32)."""
    real = prediction.prepare

    def prepare(net, mode, device="cpu"):
        run = real(net, mode, device)
        if mode != slow_mode:
            return run

        def slow(x):
            time.sleep(seconds)
            return run(x)

        return slow

    monkeypatch.setattr(prediction, "prepare", prepare)


@pytest.mark.parametrize("slow, kept", [("eager-fp32", "bf16-cl"), ("bf16-cl", "eager-fp32")])
def test_precision_auto_keeps_the_faster_mode_within_the_tolerance(monkeypatch, slow, kept):
    """As on a GPU with native bf16 (the choice is made the same way on this CPU)."""
    monkeypatch.setattr(prediction, "native_bf16", lambda device: True)
    slow_down(monkeypatch, slow)
    auto = Predictor(small_s3net(), precision="auto")
    assert auto.candidates == ("bf16-cl", "eager-fp32") and auto.auto_choice is None
    out, took = auto(auto_item())
    expected, _ = Predictor(small_s3net(), precision=kept)(auto_item())
    choice = auto.auto_choice
    assert auto.mode == choice.mode == kept and not auto.candidates
    assert torch.equal(out, expected)
    assert choice.seconds[kept] < took < 0.4 <= choice.seconds[slow]  # + the copy
    assert choice.mean_abs["eager-fp32"] == 0
    assert 0 < choice.mean_abs["bf16-cl"] <= BF16_TOLERANCE["mean_abs"]
    assert str(choice).startswith(f"--precision auto: {kept}, timed on the first image: ")
    conv = next(p for p in auto.net.parameters() if p.dim() == 4)  # the kept mode's layout
    assert conv.is_contiguous(memory_format=torch.channels_last) == (kept == "bf16-cl")
    later, took = auto(auto_item())  # later images: the kept mode, not timed again
    assert torch.equal(later, expected) and took < 0.4 and auto.auto_choice is choice


@pytest.mark.parametrize(
    "device, bf16, candidates",
    [
        ("cuda", True, ("bf16-cl", "fp32-cl", "eager-fp32")),
        ("cuda", False, ("fp32-cl", "eager-fp32")),
        ("cpu", False, ("eager-fp32",)),
    ],
)
def test_precision_auto_candidates(monkeypatch, device, bf16, candidates):
    """On an H200, fp32-cl beat eager fp32 (20.3 against 32.9 ms, 1024², batch 1) and bf16-cl
    lost to both: a CUDA GPU times fp32-cl too."""
    monkeypatch.setattr(prediction, "native_bf16", lambda device: bf16)
    assert prediction.auto_candidates(torch.device(device)) == candidates


def test_precision_auto_keeps_the_fastest_of_three(monkeypatch):
    """The CUDA candidates, run on this CPU: the two slowed modes lose to fp32-cl."""
    monkeypatch.setattr(
        prediction, "auto_candidates", lambda device: ("bf16-cl", "fp32-cl", "eager-fp32")
    )
    slow_down(monkeypatch, "bf16-cl")
    slow_down(monkeypatch, "eager-fp32")
    auto = Predictor(small_s3net(), precision="auto")
    out, _ = auto(auto_item())
    assert auto.mode == auto.auto_choice.mode == "fp32-cl"
    assert list(auto.auto_choice.seconds) == ["bf16-cl", "fp32-cl", "eager-fp32"]
    assert auto.auto_choice.seconds["fp32-cl"] < 0.4 <= auto.auto_choice.seconds["eager-fp32"]
    fp32, _ = Predictor(small_s3net(), precision="fp32")(auto_item())
    torch.testing.assert_close(out, fp32, atol=1e-5, rtol=0)


def test_precision_auto_drops_a_mode_over_the_tolerance(monkeypatch):
    monkeypatch.setattr(prediction, "native_bf16", lambda device: True)
    monkeypatch.setitem(BF16_TOLERANCE, "mean_abs", 0.0)
    slow_down(monkeypatch, "eager-fp32")  # bf16 is faster, but too far from fp32
    auto = Predictor(small_s3net(), precision="auto")
    with pytest.warns(UserWarning, match="auto: bf16-cl moved the first image .*: not using it"):
        out, _ = auto(auto_item())
    fp32, _ = Predictor(small_s3net(), precision="fp32")(auto_item())
    assert auto.mode == auto.auto_choice.mode == "eager-fp32" and torch.equal(out, fp32)


def test_precision_auto_on_the_command_line(monkeypatch, tmp_path, small_checkpoint, capsys):
    monkeypatch.setattr(prediction, "native_bf16", lambda device: True)
    slow_down(monkeypatch, "bf16-cl")
    pairs = write_pairs(tmp_path / "pairs", count=2, size=48, target=True)
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="LPIPS and MPS are OFF"):
        predict_folder(pairs, small_checkpoint, out, "--quiet")
    err = capsys.readouterr().err
    assert "on cpu, auto (timing bf16-cl and eager-fp32 on the first image)" in err
    assert re.search(r"--precision auto: eager-fp32, timed on the first image: bf16-cl ", err)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["precision"] == "auto" and summary["mode"] == "eager-fp32"
    assert summary["auto"]["seconds"]["bf16-cl"] >= 0.4
    assert summary["auto"]["mean_abs_from_fp32"]["eager-fp32"] == 0
