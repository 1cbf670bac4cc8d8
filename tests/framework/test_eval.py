import csv
import json
from pathlib import Path

import pytest

from relight.checkpoints import CheckpointError
from relight.cli.eval import run_eval
from relight.models.execution import BF16_TOLERANCE

from ..metrics_reference import assert_means_of_rows, read_csv, skimage_scores
from .conftest import compose_cfg


def pairs_eval_cfg(checkpoint, tiny_data, tmp_path, *extra: str):
    """relight-eval of ``checkpoint`` on the tiny pairs folder at 64²."""
    args = [
        f"ckpt_path={checkpoint}",
        f"pairs_dir={tiny_data['pairs']}",
        "data=vidit",
        f"data.root={tiny_data['train']}",
        "image_size=64",
        *extra,
    ]
    return compose_cfg("eval", args, tmp_path)


def test_eval_on_a_pairs_folder(trained_checkpoint, tiny_data, tmp_path):
    cfg = pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path, "metrics.lpips_weights=none")
    summary = run_eval(cfg)
    out = Path(cfg.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["images"] == 3 and set(saved["results"]) == {"S3Net", "identity (output = input)"}
    assert set(saved["results"]["S3Net"]) == {"psnr", "ssim", "lpips", "mps"}
    assert "RANDOM backbone" in saved["convention"]
    assert (out / "cases.png").is_file() and len(list((out / "images").iterdir())) == 3
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("name,psnr,ssim,lpips,mps,identity_psnr")
    assert "| identity (output = input) |" in summary["table"]
    # a pairs folder without pairs.json (VIDIT's own): the kinds are unknown, no breakdown
    assert saved["by_lighting_change"] is None and "lighting_change" not in header
    assert "By kind of lighting change" not in summary["table"]
    rows = read_csv(out / "metrics.csv")
    assert_means_of_rows(saved["results"], rows)
    # the identity baseline scores the input files against the target files
    pairs = Path(tiny_data["pairs"])
    for row in rows:
        name = row["name"]
        reference = skimage_scores(
            pairs / "input" / f"{name}.png", pairs / "target" / f"{name}.png"
        )
        assert float(row["identity_psnr"]) == pytest.approx(reference["psnr"], abs=1e-4)
        assert float(row["identity_ssim"]) == pytest.approx(reference["ssim"], abs=1e-4)


def test_eval_split_of_the_data_config(trained_checkpoint, tiny_data, tmp_path):
    cfg = compose_cfg(
        "eval",
        [
            f"ckpt_path={trained_checkpoint}",
            "data=vidit",
            f"data.root={tiny_data['train']}",
            "data.val_scenes=[1,2]",
            "data.image_size=64",
            "metrics.lpips_weights=imagenet",
        ],
        tmp_path,
    )
    with pytest.warns(RuntimeWarning, match="LPIPS and MPS are OFF"):
        summary = run_eval(cfg)
    assert summary["images"] == 4  # 2 generated pairs per validation scene
    assert "n/a" in summary["table"]
    # generated pairs are named by their lightings: the breakdown is there
    groups = summary["by_lighting_change"]
    assert sum(g["images"] for g in groups.values()) == 4
    assert "By kind of lighting change" in summary["table"]


def test_eval_missing_checkpoint(tmp_path):
    cfg = compose_cfg("eval", ["ckpt_path=/no/such.ckpt"], tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint not found: /no/such.ckpt"):
        run_eval(cfg)


def test_eval_refuses_pickled_depth_when_disabled(trained_checkpoint, tiny_data, tmp_path):
    cfg = pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path, "data.allow_pickle=false")
    with pytest.raises(ValueError, match=r"input/Pair000\.npy: .*pickled"):
        run_eval(cfg)


def test_evaluate_an_empty_dataset_is_a_clear_error(trained_checkpoint, tmp_path):
    from relight.checkpoints import net_from_checkpoint
    from relight.evaluation import evaluate
    from relight.metrics import RelightMetrics

    net, _ = net_from_checkpoint(trained_checkpoint)
    with pytest.raises(ValueError, match="dataset is empty"):
        evaluate(net, [], tmp_path, RelightMetrics(lpips_weights="none"))


def test_eval_in_bf16_channels_last_matches_fp32(trained_checkpoint, tiny_data, tmp_path):
    fp32 = run_eval(pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path / "a"))
    bf16 = run_eval(pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path / "b", "mode=bf16-cl"))
    assert bf16["mode"] == "bf16-cl"
    for name in ("psnr", "ssim"):
        assert bf16["results"]["S3Net"][name] == pytest.approx(
            fp32["results"]["S3Net"][name],
            abs=BF16_TOLERANCE[f"{name}_db" if name == "psnr" else name],
        )
    # bf16 really ran: its rounding shows (channels_last alone moves PSNR by ~1e-6 dB)
    assert abs(bf16["results"]["S3Net"]["psnr"] - fp32["results"]["S3Net"]["psnr"]) > 1e-4
    with pytest.raises(ValueError, match="unknown execution mode 'fp16'"):
        run_eval(pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path / "c", "mode=fp16"))


#: compass angle of each direction, to classify the pairs independently of relight
ANGLE = {"N": 0, "NE": 45, "E": 90, "SE": 135, "S": 180, "SW": 225, "W": 270, "NW": 315}


def expected_kind(source: str, guide: str) -> str:
    a, b = source.split("_"), guide.split("_")
    angle = abs(ANGLE[a[2]] - ANGLE[b[2]]) % 360
    if angle == 0:
        return "same_direction"
    return "opposite_direction" if angle == 180 else "other_direction"


@pytest.mark.parametrize("split", ["validation", "validation_shifted"])
def test_eval_breaks_each_metric_down_by_lighting_change(
    trained_checkpoint, tiny_minividit, tmp_path, split
):
    folder = tiny_minividit[0] / split
    args = [
        f"ckpt_path={trained_checkpoint}",
        f"pairs_dir={folder}",
        "data=vidit",
        "data.root=unused",
        "image_size=32",
        "metrics.lpips_weights=none",
    ]
    cfg = compose_cfg("eval", args, tmp_path)
    summary = run_eval(cfg)
    out = Path(cfg.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    sources = json.loads((folder / "pairs.json").read_text())
    for row in rows:  # each row's kind is the one its source names give
        pair = sources[row["name"]]
        assert row["lighting_change"] == expected_kind(pair["input"], pair["guide"])
    groups = saved["by_lighting_change"]
    kinds = ("same_direction", "other_direction", "opposite_direction")
    present = [k for k in kinds if any(r["lighting_change"] == k for r in rows)]
    assert list(groups) == present and len(present) >= 2
    for kind, group in groups.items():
        members = [r for r in rows if r["lighting_change"] == kind]
        assert group["images"] == len(members)
        assert_means_of_rows(group["results"], members)
    assert_means_of_rows(saved["results"], rows)
    table = summary["table"].split("By kind of lighting change:")[1]
    labels = {
        "same_direction": "same direction, other temperature",
        "other_direction": "another direction",
        "opposite_direction": "opposite direction",
    }
    for kind in present:
        assert f"| {labels[kind]}" in table


def test_eval_the_shifted_split_of_the_data_config(trained_checkpoint, tiny_minividit, tmp_path):
    out = tiny_minividit[0]
    data = [
        "data=vidit",
        f"data.root={out / 'train'}",
        f"data.pairs_dir={out / 'validation'}",
        "data.val_ratio=0",
        "data.image_size=32",
    ]
    args = [f"ckpt_path={trained_checkpoint}", "metrics.lpips_weights=none", *data]
    with pytest.raises(ValueError, match=r"no shifted validation set \(data\.shifted_pairs_dir\)"):
        run_eval(compose_cfg("eval", [*args, "split=shifted"], tmp_path / "a"))
    shifted = f"data.shifted_pairs_dir={out / 'validation_shifted'}"
    summary = run_eval(compose_cfg("eval", [*args, shifted, "split=shifted"], tmp_path / "b"))
    images = sorted(p.name for p in (tmp_path / "b" / "run" / "images").iterdir())
    assert summary["images"] == 8 and images == [f"Pair{n:03d}.png" for n in range(8)]
    assert sum(g["images"] for g in summary["by_lighting_change"].values()) == 8
    with pytest.raises(ValueError, match="split must be one of val, test, shifted, got 'train'"):
        run_eval(compose_cfg("eval", [*args, "split=train"], tmp_path / "c"))


def test_eval_the_test_split_of_the_data_config(trained_checkpoint, tiny_data, tmp_path):
    """``split=test`` without ``data.test_pairs_dir`` is an error naming the key, not an
    evaluation of the validation set; with one, its pairs are evaluated."""
    args = [
        f"ckpt_path={trained_checkpoint}",
        "metrics.lpips_weights=none",
        "data=vidit",
        f"data.root={tiny_data['train']}",
        f"data.pairs_dir={tiny_data['pairs']}",
        "data.val_ratio=0",
        "data.image_size=64",
        "split=test",
    ]
    with pytest.raises(ValueError, match=r"^split=test: the data config has no test set \(data"):
        run_eval(compose_cfg("eval", args, tmp_path / "a"))
    assert not (tmp_path / "a" / "run" / "metrics.json").exists()
    test = f"data.test_pairs_dir={tiny_data['pairs']}"
    summary = run_eval(compose_cfg("eval", [*args, test], tmp_path / "b"))
    assert summary["images"] == 3


def test_eval_on_a_missing_device_names_its_own_key(trained_checkpoint, tiny_data, tmp_path):
    """relight-eval takes ``device=cpu`` (a config key), not the other tools' ``--device``."""
    from unittest import mock

    from relight.devices import DeviceUnavailableError, pick_device

    cfg = pairs_eval_cfg(trained_checkpoint, tiny_data, tmp_path, "device=cuda")
    with (
        mock.patch("torch.cuda.is_available", return_value=False),
        pytest.raises(DeviceUnavailableError, match="CUDA is not available") as error,
    ):
        run_eval(cfg)
    assert str(error.value).endswith("; use device=cpu (or device=auto)")
    with (  # relight-predict and relight-bench: the flag
        mock.patch("torch.cuda.is_available", return_value=False),
        pytest.raises(DeviceUnavailableError, match=r"; use --device cpu \(or --device auto\)$"),
    ):
        pick_device("cuda")
