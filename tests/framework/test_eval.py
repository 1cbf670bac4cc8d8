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
