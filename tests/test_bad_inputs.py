"""The bad-input matrix: every row is a bad (or merely unusual) input given to a user-facing
entry point. A bad input raises the named exception type with a message naming the file or
key; nothing half-written is left in the output folder. Unusual but valid inputs load."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from PIL import Image

from relight.checkpoints import CheckpointError, net_from_checkpoint, read_checkpoint
from relight.cli.data import main as relight_data
from relight.data import (
    DataFormatError,
    TooManyBadItemsError,
    VIDITDataModule,
    read_depth,
    read_image,
)
from relight.data.cache import FileReader
from relight.data.datasets import PairsDataset
from relight.data.pairs import index_pairs
from relight.evaluation import evaluate
from relight.files import OutOfSpaceError, OutputNotWritableError, atomic_write
from relight.metrics import RelightMetrics
from relight.models import S3Net

from .data.vidit_factory import write_pairs, write_vidit
from .framework.conftest import compose_cfg

LIGHTS = [(2500, "N"), (6500, "E"), (4500, "W")]
SMALL_NET = dict(encoder="resnet18", encoder_weights="none", allow_random_init=True)


@dataclass(frozen=True)
class Row:
    """``action(tmp, out)`` -> a thunk; it raises ``error`` matching ``match`` (a regex,
    ``{tmp}`` is replaced by the folder), or returns a value ``check`` accepts."""

    action: Callable[[Path, Path], Callable[[], Any]]
    error: type[BaseException] | None = None
    match: str = ""
    check: Callable[[Any], bool] | None = None


def png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def rgb(size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def truncated_png(tmp: Path, out: Path):
    data = png(tmp / "full.png", rgb()).read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    return lambda: read_image(tmp / "cut.png")


def text_png(tmp: Path, out: Path):
    (tmp / "notes.png").write_text("not a PNG at all")
    return lambda: read_image(tmp / "notes.png")


def loads(image_mode: str):
    def action(tmp: Path, out: Path):
        if image_mode == "RGBA":
            path = png(tmp / "a.png", np.dstack([rgb(), np.full((16, 16), 255, np.uint8)]), "RGBA")
        elif image_mode == "L":
            path = png(tmp / "a.png", rgb()[..., 0])
        elif image_mode == "P":
            path = tmp / "a.png"
            Image.fromarray(rgb()).convert("P").save(path)
        else:  # 16-bit greyscale
            path = png(tmp / "a.png", (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16))
        return lambda: read_image(path)

    return action


def is_rgb_image(image: torch.Tensor) -> bool:
    return (
        image.shape == (3, 16, 16)
        and image.dtype == torch.float32
        and 0 <= image.min() <= image.max() <= 1
    )


def vidit(tmp: Path, **kwargs) -> Path:
    return write_vidit(
        tmp / "train",
        scenes=kwargs.pop("scenes", range(3)),
        size=16,
        lightings=kwargs.pop("lightings", LIGHTS),
    )


def setup_module(root: Path, **kwargs) -> Callable[[], VIDITDataModule]:
    def run() -> VIDITDataModule:
        module = VIDITDataModule(root, image_size=16, val_ratio=0.0, batch_size=1, **kwargs)
        module.setup("fit")
        return module

    return run


def depth_dict_without_key(tmp: Path, out: Path):
    root = vidit(tmp)
    np.save(root / "Image001.npy", {"depth": np.ones((16, 16))}, allow_pickle=True)
    return setup_module(root)


def depth_with(value: float):
    def action(tmp: Path, out: Path):
        root = vidit(tmp)
        depth = np.ones((16, 16), np.float32)
        depth[3, 4] = value
        np.save(root / "Image002.npy", {"normalized_depth": depth}, allow_pickle=True)
        return setup_module(root)

    return action


def depth_other_size(tmp: Path, out: Path):
    root = vidit(tmp)
    np.save(root / "Image001.npy", {"normalized_depth": np.ones((8, 16))}, allow_pickle=True)
    return setup_module(root)


def missing_depth(tmp: Path, out: Path):
    root = vidit(tmp)
    (root / "Image002.npy").unlink()
    return setup_module(root)


def some_lightings(tmp: Path, out: Path):
    root = vidit(tmp, scenes=range(2))
    write_vidit(root, scenes=[2], size=16, lightings=LIGHTS[:2])  # scene 2 lacks 4500_W
    return setup_module(root, pairs_dir=write_pairs(tmp / "pairs", count=1, size=16))


def empty_folder(tmp: Path, out: Path):
    (tmp / "empty").mkdir()
    return setup_module(tmp / "empty")


def wrong_names(tmp: Path, out: Path):
    png(tmp / "photos" / "scene_1_north.png", rgb())
    png(tmp / "photos" / "IMG_0002.png", rgb())
    return setup_module(tmp / "photos")


def pairs_missing_guide(tmp: Path, out: Path):
    pairs = write_pairs(tmp / "pairs", count=3, size=16)
    (pairs / "guide" / "Pair001.png").unlink()
    return setup_module(vidit(tmp), pairs_dir=pairs)


def image_size_not_multiple(tmp: Path, out: Path):
    return lambda: VIDITDataModule(vidit(tmp), image_size=100)


def wrong_channel_count(tmp: Path, out: Path):
    net = S3Net(**SMALL_NET)
    return lambda: net(torch.zeros(1, 6, 64, 64))


def config(override: str):
    return lambda tmp, out: lambda: compose_cfg("train", ["data.root=/x", override], tmp)


def small_checkpoint(tmp: Path, **changes) -> Path:
    net = S3Net(**SMALL_NET)
    config = {**net.hparams(), **changes}
    path = tmp / "model.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"net_config": config}}, path)
    return path


def checkpoint_other_variant(tmp: Path, out: Path):
    path = small_checkpoint(tmp, attention=False)
    return lambda: net_from_checkpoint(path)


def truncated_checkpoint(tmp: Path, out: Path):
    path = small_checkpoint(tmp)
    path.write_bytes(path.read_bytes()[:100_000])
    return lambda: net_from_checkpoint(path)


def pickled_depth_refused(tmp: Path, out: Path):
    np.save(tmp / "untrusted.npy", {"normalized_depth": np.ones((4, 4))}, allow_pickle=True)
    return lambda: read_depth(tmp / "untrusted.npy", allow_pickle=False)


def plain_depth_without_pickle(tmp: Path, out: Path):
    np.save(tmp / "plain.npy", np.full((4, 5), 0.5, np.float32))
    return lambda: read_depth(tmp / "plain.npy", allow_pickle=False)


def unwritable_output(tmp: Path, out: Path):
    pairs = write_pairs(tmp / "pairs", count=2, size=32)
    dataset = PairsDataset(index_pairs(pairs), FileReader(None))
    net = S3Net(**SMALL_NET, enhancement=False)
    (tmp / "a_file").write_text("a file where a folder should be")
    metrics = RelightMetrics(lpips_weights="none")
    return lambda: evaluate(net, dataset, tmp / "a_file" / "eval", metrics, progress=False)


def missing_image_of_a_pair(tmp: Path, out: Path):
    pairs = write_pairs(tmp / "pairs", count=2, size=16)
    dataset = PairsDataset(index_pairs(pairs), FileReader(None))
    (pairs / "input" / "Pair001.png").unlink()
    return lambda: dataset[1]


def truncate(path: Path) -> None:
    """Cut a PNG in half: its header still reads (indexing passes), decoding fails."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def evaluate_fails_at_the_second_pair(tmp: Path, out: Path):
    pairs = write_pairs(tmp / "pairs", count=3, size=32)
    truncate(pairs / "input" / "Pair001.png")
    dataset = PairsDataset(index_pairs(pairs), FileReader(None))
    net = S3Net(**SMALL_NET, enhancement=False)
    metrics = RelightMetrics(lpips_weights="none")
    return lambda: evaluate(net, dataset, out, metrics, batch_size=1, progress=False)


def predict_fails_at_the_second_pair(tmp: Path, out: Path):
    from relight.prediction import Predictor, predict_pairs

    pairs = write_pairs(tmp / "pairs", count=3, size=32)
    truncate(pairs / "guide" / "Pair001.png")
    predictor = Predictor(S3Net(**SMALL_NET, enhancement=False))
    submission = out / "submission.zip"
    return lambda: predict_pairs(
        predictor, pairs, out, submission=submission, lpips_weights="none", progress=False
    )


def broken_vidit(tmp: Path) -> Path:
    """A train folder with a PNG cut short after its header and an empty depth file."""
    root = vidit(tmp)
    image = root / "Image001_6500_E.png"
    image.write_bytes(image.read_bytes()[:100])
    (root / "Image002.npy").write_bytes(b"")
    return root


def train_batches(**kwargs):
    def action(tmp: Path, out: Path):
        root = broken_vidit(tmp)
        (root / "Image002.npy").unlink()
        np.save(root / "Image002.npy", {"normalized_depth": np.ones((16, 16))}, allow_pickle=True)
        pairs = write_pairs(tmp / "pairs", count=1, size=16)

        def run():
            module = setup_module(root, pairs_dir=pairs, **kwargs)()
            return [module.on_after_batch_transfer(b, 0) for b in module.train_dataloader()]

        return run

    return action


def data_check(tmp: Path, out: Path):
    root = broken_vidit(tmp)
    return lambda: relight_data(["check", str(root), "--workers", "0", "--quiet"])


def verify_before_training(tmp: Path, out: Path):
    module = VIDITDataModule(broken_vidit(tmp), image_size=16, val_ratio=0.0, verify=True)
    return module.prepare_data


def disk_full_output(tmp: Path, out: Path):
    (tmp / "results").mkdir()
    (tmp / "results" / "metrics.json").write_text("{}")

    def write(path: Path) -> None:
        path.write_bytes(b"x" * 4096)  # what fitted, then the disk was full
        raise OSError(errno.ENOSPC, "No space left on device")

    return lambda: atomic_write(tmp / "results" / "metrics.json", write)


MATRIX: dict[str, Row] = {
    "truncated PNG": Row(truncated_png, DataFormatError, r"cut\.png: corrupt or truncated"),
    "PNG that is not an image": Row(text_png, DataFormatError, r"notes\.png: not an image"),
    "RGBA PNG loads": Row(loads("RGBA"), check=is_rgb_image),
    "greyscale PNG loads": Row(loads("L"), check=is_rgb_image),
    "palette PNG loads": Row(loads("P"), check=is_rgb_image),
    "16-bit PNG loads": Row(loads("I;16"), check=lambda x: is_rgb_image(x) and x.max() == 1),
    "depth dict without normalized_depth": Row(
        depth_dict_without_key,
        DataFormatError,
        r"Image001\.npy: depth dict has no 'normalized_depth'",
    ),
    "depth with NaN": Row(depth_with(np.nan), DataFormatError, r"Image002\.npy: depth has 1 NaN"),
    "depth with inf": Row(
        depth_with(np.inf), DataFormatError, r"Image002\.npy: depth has 1 NaN or inf"
    ),
    "depth of another size than its image": Row(
        depth_other_size,
        DataFormatError,
        r"Image001_\d+_\w+\.png: image is \(16, 16\) but its depth Image001\.npy is \(8, 16\)",
    ),
    "missing depth of one scene": Row(missing_depth, DataFormatError, r"Image002\.npy"),
    "scene with only some lightings loads": Row(
        some_lightings,
        check=lambda m: len(m.train_set) == 8 and m.train_set[7]["input"].shape == (3, 16, 16),
    ),
    "empty folder": Row(empty_folder, DataFormatError, r"empty.*ImageXXX_TTTT_D\.png"),
    "wrongly named files": Row(
        wrong_names, DataFormatError, r"photos.*ImageXXX_TTTT_D\.png.*scene_1_north\.png"
    ),
    "pairs folder whose guide is missing": Row(
        pairs_missing_guide, DataFormatError, r"guide/Pair001\.png"
    ),
    "image of a pair deleted after indexing": Row(
        missing_image_of_a_pair, DataFormatError, r"input/Pair001\.png: image file not found"
    ),
    "image_size not a multiple of 16": Row(
        image_size_not_multiple,
        ValueError,
        r"data\.image_size must be a positive multiple of 16.*100",
    ),
    "model input with the wrong channel count": Row(
        wrong_channel_count, ValueError, r"S3Net expects a \(B, 8, H, W\).*\(1, 6, 64, 64\)"
    ),
    "unknown config key": Row(config("data.imag_size=64"), ConfigCompositionException, "imag_size"),
    "wrong type in config": Row(
        config("model.optimizer.lr=fast"), ConfigCompositionException, r"model\.optimizer\.lr.*fast"
    ),
    "checkpoint from another model variant": Row(
        checkpoint_other_variant,
        CheckpointError,
        r"model\.ckpt: the checkpoint does not match this model variant \(\d+ unexpected: attention16",
    ),
    "checkpoint path that does not exist": Row(
        lambda tmp, out: lambda: read_checkpoint(tmp / "nope.ckpt"),
        CheckpointError,
        r"checkpoint not found: .*nope\.ckpt",
    ),
    "checkpoint cut short by a crash": Row(
        truncated_checkpoint, CheckpointError, r"model\.ckpt: not a readable relight checkpoint"
    ),
    "pickled depth from an untrusted source (flag refuses)": Row(
        pickled_depth_refused, DataFormatError, r"untrusted\.npy: .*pickle.*allow_pickle=false"
    ),
    "plain depth array loads without pickle": Row(
        plain_depth_without_pickle, check=lambda d: d.shape == (4, 5) and float(d.mean()) == 0.5
    ),
    "evaluation that fails at its second pair": Row(
        evaluate_fails_at_the_second_pair,
        DataFormatError,
        r"input/Pair001\.png: corrupt or truncated",
    ),
    "prediction that fails at its second pair": Row(
        predict_fails_at_the_second_pair,
        DataFormatError,
        r"guide/Pair001\.png: corrupt or truncated",
    ),
    "output folder not writable": Row(
        unwritable_output, OutputNotWritableError, r"output folder .*a_file/eval is not writable"
    ),
    "relight-data check on a folder with broken files (exit 1)": Row(
        data_check, check=lambda code: code == 1
    ),
    "relight-data check on a folder that does not exist (exit 2)": Row(
        lambda tmp, out: lambda: relight_data(["check", str(tmp / "VIDIT")]), SystemExit, "2"
    ),
    "data.verify=true lists every broken file before training": Row(
        verify_before_training,
        DataFormatError,
        r"data\.verify: .*2 problems.*\n.*Image001_6500_E\.png: corrupt or truncated.*\n"
        r".*Image002\.npy: empty depth file",
    ),
    "training meets a truncated PNG (on_bad_item=error)": Row(
        train_batches(), DataFormatError, r"Image001_6500_E\.png: corrupt or truncated image"
    ),
    "training over a truncated PNG with on_bad_item=skip runs": Row(
        train_batches(on_bad_item="skip"), check=lambda batches: batches[-1]["bad_items"] == 1
    ),
    "more unreadable files than data.max_bad_items": Row(
        train_batches(on_bad_item="skip", max_bad_items=0),
        TooManyBadItemsError,
        r"1 training files could not be read, more than data\.max_bad_items=0.*\n.*"
        r"Image001_6500_E\.png",
    ),
    "invalid data.on_bad_item": Row(
        config("data.on_bad_item=ignore"), ConfigCompositionException, r"data\.on_bad_item"
    ),
    "disk full while writing an output (ENOSPC)": Row(
        disk_full_output,
        OutOfSpaceError,
        r"no space left in {tmp}/results .*metrics\.json: it needs more than 4\.1 kB",
    ),
}


@pytest.mark.parametrize("row", list(MATRIX.values()), ids=list(MATRIX))
def test_bad_input(row: Row, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = row.action(tmp_path, out)
    if row.error is None:
        assert row.check is not None and row.check(run())
    else:
        with pytest.raises(row.error, match=row.match.replace("{tmp}", str(tmp_path))):
            run()
    # nothing half-written: no temporary files; what a failed run left in ``out`` (the
    # images finished before the failure) is complete, and no summary claims a result
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    if row.error is not None and out.exists():
        assert_no_partial_outputs(out)


#: What only a finished evaluation or prediction writes.
SUMMARIES = {"metrics.json", "metrics.csv", "cases.png", "submission.zip"}


def assert_no_partial_outputs(out: Path) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not SUMMARIES & {p.name for p in files}, files
    for path in files:
        assert path.suffix == ".png", path
        with Image.open(path) as image:
            image.load()  # a cut file fails here


def test_matrix_has_at_least_34_rows() -> None:
    assert len(MATRIX) >= 34 and sum(row.error is not None for row in MATRIX.values()) >= 26
