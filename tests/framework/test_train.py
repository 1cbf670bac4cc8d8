import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from relight.checkpoints import CheckpointError, net_from_checkpoint, read_checkpoint
from relight.train import train

from ..data.vidit_factory import write_vidit
from .conftest import LIGHTS, TINY, compose_cfg
from .recorder import read_records
from .test_sweeps import data_args, run_cli
from .wandb_records import history, logged_table


def read_metrics_csv(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_fast_dev_run(train_cfg):
    cfg = train_cfg("debug=fdr")
    metrics = train(cfg)
    assert "train/loss" in metrics and torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_fast_dev_run_of_a_study_writes_no_logs_and_no_checkpoints(train_cfg, monkeypatch):
    """``debug=fdr`` on the ablation study (CSV + offline W&B in its group otherwise): no
    W&B run lands in the study's group, no CSV, no checkpoint."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = train_cfg("experiment=minividit_ablation", "debug=fdr")
    assert "train/loss" in train(cfg)
    run = Path(cfg.paths.output_dir)
    written = {p.name for p in run.iterdir()}
    assert not written & {"wandb", "wandb_run_id.txt", "csv", "checkpoints"}, written


def test_train_test_evaluate_and_stable_paths(train_cfg, tiny_data, tmp_path, capsys):
    # any pairs folder serves as the shifted validation set here
    cfg = train_cfg("model.panel_every_n_epochs=1", f"data.shifted_pairs_dir={tiny_data['pairs']}")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    for key in (
        "val/psnr",
        "val/ssim",
        "val/lpips",
        "val/mps",
        "val/mps_best",
        "test/mps",
        "eval/psnr",
        "eval_shifted/psnr",
        "eval_shifted/ssim",
    ):
        assert key in metrics, key
    printed = capsys.readouterr().out
    validation = printed.index("\nValidation (3 images)")
    shifted = printed.index("\nShifted validation (other generator) (3 images)")
    assert validation < shifted and printed.count("| identity (output = input) |") == 2
    assert f"metrics:     {run / 'eval_shifted' / 'metrics.json'}" in printed
    saved = json.loads((run / "eval_shifted" / "metrics.json").read_text())
    assert saved["results"]["S3Net"]["psnr"] == pytest.approx(metrics["eval_shifted/psnr"])
    # the checkpoint is selected on the ordinary validation set: the test metrics are its
    assert metrics["test/psnr"] == pytest.approx(metrics["eval/psnr"])
    best = run / "checkpoints" / "best.ckpt"
    assert best.is_symlink() and best.resolve().is_file()
    assert not (run / "checkpoints" / "last.ckpt").is_symlink()  # a copy of the newest state
    assert cfg.group == cfg.run_name  # a run without a sweep is its own W&B group
    assert (tmp_path / "logs" / "train" / "latest").resolve() == run.resolve()
    assert sorted(p.name for p in (run / "eval").iterdir()) == [
        "cases.png",
        "images",
        "metrics.csv",
        "metrics.json",
    ]
    assert len(list((run / "eval" / "images").glob("Pair*.png"))) == 3
    assert list((run / "panels").glob("epoch_000.png"))
    rows = read_metrics_csv(run)
    assert any(r.get("train/loss") for r in rows) and any(r.get("val/mps") for r in rows)
    (tested,) = [r for r in rows if r.get("test/psnr")]  # logged after fit finalized the CSV
    assert float(tested["test/psnr"]) == pytest.approx(metrics["test/psnr"])
    state = read_checkpoint(best)["state_dict"]
    assert all(k.startswith("net.") for k in state)  # no frozen VGG/LPIPS copies
    net, config = net_from_checkpoint(best)
    assert config["encoder_weights"] == "none" and not net.config.global_residual
    assert not net.training  # ready for inference (README): BatchNorm uses its statistics


def test_last_checkpoint_is_the_newest_state_whether_or_not_the_score_improved(train_cfg):
    """Epoch 1 scores below epoch 0. Lightning's save_last wrote last.ckpt only with a new
    best, so a killed run resumed from the last improvement and trained the epochs after it
    again."""
    cfg = train_cfg(
        "trainer.max_epochs=2",
        "evaluate=false",
        "+callbacks.scripted._target_=tests.framework.recorder.ScriptedScores",
        "+callbacks.scripted.scores=[0.9,0.5]",
    )
    train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    last = read_checkpoint(folder / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (1, 4)
    assert (folder / "best.ckpt").resolve().name == "epoch_000.ckpt"
    assert sorted(p.name for p in folder.glob("*.ckpt")) == [
        "best.ckpt",
        "epoch_000.ckpt",
        "last.ckpt",
    ]


def test_without_a_validation_best_ckpt_is_the_newest_state(train_cfg):
    """No score to pick by (no validation ran): best.ckpt, the test and the evaluation take
    last.ckpt (they once found no checkpoint at all)."""
    cfg = train_cfg("trainer.limit_val_batches=0", "test=false", "evaluate=false")
    train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert (folder / "best.ckpt").resolve() == folder / "last.ckpt"


def test_resume_continues_the_epoch_count(train_cfg):
    first = train_cfg("trainer.max_epochs=1", "run_name=resumable", run="first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["epoch"] == 0
    second = train_cfg(
        "trainer.max_epochs=2",
        "run_name=resumable",
        "ckpt_path=last",
        "loss.perceptual=0.1",
        "loss.vgg_weights=none",
        run="second",
    )  # the frozen loss networks may differ between runs
    second_metrics = train(second)
    # the best score carries over: it is the best over both runs' epochs
    scores = [
        float(r["val/ssim"])
        for run in (first, second)
        for r in read_metrics_csv(Path(run.paths.output_dir))
        if r.get("val/ssim")
    ]
    assert len(scores) == 2
    assert second_metrics["val/ssim_best"] == pytest.approx(max(scores), abs=1e-6)
    resumed = read_checkpoint(Path(second.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert resumed["epoch"] == 1
    assert resumed["global_step"] == 2 * read_checkpoint(last)["global_step"]
    rows = read_metrics_csv(Path(second.paths.output_dir))
    epochs = {r["epoch"] for r in rows if r.get("train/loss") or r.get("val/psnr")}
    assert epochs == {"1"}  # continues: no epoch 0 again
    with pytest.raises(FileNotFoundError, match="variant 'no_attention'"):  # never another variant
        train(
            train_cfg("ckpt_path=last", "run_name=resumable", "ablation=no_attention", run="third")
        )


def test_auto_resume_and_missing_last(train_cfg):
    with pytest.raises(
        FileNotFoundError, match="ckpt_path=last: no complete checkpoint of run .never_ran."
    ):
        train(train_cfg("ckpt_path=last", "run_name=never_ran"))
    with pytest.raises(FileNotFoundError, match="checkpoint not found: /nope.ckpt"):
        train(train_cfg("ckpt_path=/nope.ckpt"))
    cfg = train_cfg("auto_resume=true", "run_name=fresh")  # nothing to resume: starts fresh
    assert "train/loss" in train(cfg)


def test_without_lpips_weights_selects_on_ssim(train_cfg):
    cfg = train_cfg("model.metrics.lpips_weights=imagenet")  # absent here: LPIPS off
    with pytest.warns(RuntimeWarning, match="LPIPS and MPS are OFF"):
        metrics = train(cfg)
    assert "val/mps" not in metrics and "val/ssim" in metrics
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    callbacks = read_checkpoint(best)["callbacks"]
    assert any("val/ssim" in key for key in callbacks)
    summary = (Path(cfg.paths.output_dir) / "eval" / "metrics.json").read_text()
    assert '"ranked_by": "ssim"' in summary


def test_wandb_offline_run_has_the_metrics_history(train_cfg, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # a copy of the pairs as the shifted set, with pairs.json: its lighting changes are known
    shifted = shutil.copytree(tiny_data["pairs"], tmp_path / "shifted")
    sources = {"input": "Image010_2500_N", "guide": "Image020_6500_E", "target": "Image010_6500_E"}
    (shifted / "pairs.json").write_text(json.dumps({f"Pair{n:03d}": sources for n in range(3)}))
    cfg = train_cfg(
        "logger=wandb",
        "trainer.max_epochs=2",
        "group=study",
        "tags=[a,b]",
        f"data.shifted_pairs_dir={shifted}",
    )
    metrics = train(cfg)
    from relight.cli.train import close_wandb

    close_wandb()
    run = Path(cfg.paths.output_dir)
    files = list(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    rows = history(files[0])
    assert sum("train/loss" in r for r in rows) >= 1
    assert [r["val/psnr"] for r in rows if "val/psnr" in r][:2] and sum(
        "val/mps" in r for r in rows
    ) == 2
    run_id = (run / "wandb_run_id.txt").read_text().strip()
    assert files[0].name == f"run-{run_id}.wandb"
    # each evaluation set under its own keys: means, tables, cases
    logged = {k: v for r in rows for k, v in r.items()}
    for folder in ("eval", "eval_shifted"):
        for metric in ("psnr", "ssim"):
            assert logged[f"{folder}/{metric}"] == pytest.approx(metrics[f"{folder}/{metric}"])
        assert f"{folder}/identity_psnr" in logged
        methods = logged_table(files[0].parent, f"{folder}/table")
        assert [row[0] for row in methods["data"]] == ["S3Net", "identity (output = input)"]
        assert len(logged_table(files[0].parent, f"{folder}/per_image")["data"]) == 3
        assert any(k.startswith(f"{folder}/cases/") for k in logged), folder
    assert "eval/by_lighting_change/_type" not in logged  # the plain pairs: kinds unknown
    kinds = logged_table(files[0].parent, "eval_shifted/by_lighting_change")
    assert kinds["columns"][:3] == ["lighting_change", "images", "method"]
    assert [row[:3] for row in kinds["data"]] == [
        ["other_direction", 3, "S3Net"],
        ["other_direction", 3, "identity (output = input)"],
    ]
    per_image = logged_table(files[0].parent, "eval_shifted/per_image")
    assert per_image["columns"][-1] == "lighting_change"
    assert {row[-1] for row in per_image["data"]} == {"other_direction"}


def test_augmented_training_runs(train_cfg):
    cfg = train_cfg(
        "data.augment.hflip=0.5",
        "data.augment.crop_size=48",
        "data.augment.scene_tint=0.2",
        "evaluate=false",
        "test=false",
    )
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_checkpoint_from_another_variant_is_refused(train_cfg, tmp_path):
    cfg = train_cfg("trainer.max_epochs=1", "evaluate=false", "test=false")
    train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    checkpoint = read_checkpoint(best)
    checkpoint["hyper_parameters"]["net_config"]["attention"] = False
    other = tmp_path / "other.ckpt"
    torch.save(checkpoint, other)
    with pytest.raises(
        CheckpointError,
        match=r"does not match this model variant \(\d+ unexpected: attention16\.channel_attention",
    ):
        net_from_checkpoint(other)


def test_same_seed_same_metrics(train_cfg):
    first = train(train_cfg("trainer.max_epochs=2", "evaluate=false", run="a"))
    second = train(train_cfg("trainer.max_epochs=2", "evaluate=false", run="b"))
    keys = ["train/loss", "val/psnr", "val/ssim", "val/mps", "test/psnr", "test/ssim"]
    assert [first[k] for k in keys] == [second[k] for k in keys]
    third = train(train_cfg("trainer.max_epochs=2", "evaluate=false", "seed=7", run="c"))
    assert third["train/loss"] != first["train/loss"]


def test_train_false_tests_the_given_checkpoint(train_cfg):
    cfg = train_cfg("evaluate=false", run="fit")
    fitted = train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    only_test = train(train_cfg("train=false", f"ckpt_path={best}", "evaluate=false", run="test"))
    assert only_test["test/psnr"] == pytest.approx(fitted["test/psnr"], abs=1e-5)


def test_cached_compact_batches_train_and_evaluate_like_files(train_cfg, tmp_path):
    """With the cache, uint8/float16 items are decoded on the device: the same metrics as
    decoding the files (up to the cache's 8-bit rounding)."""
    files = train(train_cfg("trainer.max_epochs=1", run="files"))
    cached = train(
        train_cfg("trainer.max_epochs=1", f"data.cache_dir={tmp_path / 'cache'}", run="cache")
    )
    for key in ("train/loss", "val/psnr", "eval/psnr", "eval/ssim"):
        assert cached[key] == pytest.approx(files[key], rel=2e-3), key


def test_bf16_mixed_channels_last_trains_with_the_same_checkpoint_keys(train_cfg):
    plain = train_cfg("trainer.max_epochs=1", "evaluate=false", "test=false", run="plain")
    plain_metrics = train(plain)
    fast = train_cfg(
        "trainer.max_epochs=1",
        "evaluate=false",
        "test=false",
        "trainer.precision=bf16-mixed",
        "model.channels_last=true",
        "auto_resume=false",
        run="fast",
    )
    metrics = train(fast)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    states = [
        read_checkpoint(Path(c.paths.output_dir) / "checkpoints" / "last.ckpt")["state_dict"]
        for c in (plain, fast)
    ]
    assert set(states[0]) == set(states[1])
    # the switches were applied: weights kept channels_last, a bf16 loss (same seed, data
    # and initial weights) that is close to the float32 one but not equal to it
    stem = "net.encoder.conv1.weight"
    assert states[1][stem].is_contiguous(memory_format=torch.channels_last)
    assert not states[0][stem].is_contiguous(memory_format=torch.channels_last)
    plain_loss = plain_metrics["train/loss"]
    assert metrics["train/loss"] != plain_loss
    assert metrics["train/loss"] == pytest.approx(plain_loss, rel=0.05)


@pytest.mark.slow
def test_compiled_network_and_loss_train_and_keep_the_checkpoint_keys(train_cfg):
    # the GPU main job's switches (CUDA graphs are skipped on a CPU; the rest is the same)
    cfg = train_cfg(
        "model.compile=true",
        "model.compile_mode=reduce-overhead",
        "model.compile_loss=true",
        "model.optimizer.fused=true",
        "evaluate=false",
        "test=false",
    )
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    state = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["state_dict"]
    assert state and all(k.startswith("net.") and "_orig_mod" not in k for k in state)


def test_progress_bar_shows_a_host_copy_of_the_loss(train_cfg, tmp_path):
    """A device tensor logged with prog_bar=True is copied to the host after every batch
    (a wait for the GPU's queue, whatever the bar's refresh rate): the bar gets ``loss``,
    read in the step's one sync, and ``train/loss`` goes to the loggers only."""
    bars = tmp_path / "bar.jsonl"
    cfg = train_cfg(
        "evaluate=false",  # test=true: metrics gathered after fit and after test
        "+callbacks.bar._target_=tests.framework.recorder.BarRecorder",
        f"+callbacks.bar.path={bars}",
    )
    metrics = train(cfg)
    records = read_records(bars)
    assert records and all("train/loss" not in r["bar"] for r in records)
    assert all(isinstance(r["bar"]["loss"], float) for r in records)
    assert records[-1]["bar"]["loss"] == pytest.approx(metrics["train/loss"], rel=1e-6)
    assert "loss" not in metrics  # the bar's copy is not a run metric
    rows = read_metrics_csv(Path(cfg.paths.output_dir))
    assert any(r.get("train/loss") for r in rows) and not any("loss" in r for r in rows)


def test_training_changes_the_weights_and_lowers_the_loss(train_cfg, tmp_path):
    """A fixed tiny set (2 scenes x 2 lightings: each input has one possible guide, so
    every epoch is the same batch of 4): every trainable layer moves, and the loss falls."""
    root = write_vidit(tmp_path / "fixed", scenes=(0, 1), size=64, lightings=LIGHTS[:2])
    steps, initial = tmp_path / "steps.jsonl", tmp_path / "initial.pt"
    cfg = train_cfg(
        f"data.root={root}",
        "data.batch_size=4",
        "data.samples_per_scene=null",
        "trainer.max_epochs=10",
        "model.optimizer.lr=1e-3",
        "model.scheduler=null",
        "evaluate=false",
        "test=false",
        "+callbacks.recorder._target_=tests.framework.recorder.StepRecorder",
        f"+callbacks.recorder.path={steps}",
        "+callbacks.snapshot._target_=tests.framework.recorder.WeightSnapshot",
        f"+callbacks.snapshot.path={initial}",
    )
    train(cfg)
    records = read_records(steps)
    assert len(records) == 10 and len({frozenset(r["names"]) for r in records}) == 1
    losses = [r["loss"] for r in records]
    assert losses[-1] < 0.7 * losses[0], losses
    before = torch.load(initial, weights_only=True)
    after = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["state_dict"]
    for key in ("encoder.conv1.weight", "encoder.layer3.1.conv2.weight", "tail.weight"):
        assert not torch.allclose(before[key], after[f"net.{key}"]), key


def test_learning_rate_follows_the_schedule(train_cfg):
    """StepLR(step_size=2, gamma=0.1) from 1e-3: 1e-3 in epochs 0 and 1, 1e-4 in epoch 2."""
    cfg = train_cfg(
        "trainer.max_epochs=3",
        "model.optimizer.lr=1e-3",
        "model.scheduler.step_size=2",
        "model.scheduler.gamma=0.1",
        "evaluate=false",
        "test=false",
    )
    train(cfg)
    rows = read_metrics_csv(Path(cfg.paths.output_dir))
    # logged at the start of each epoch, at its first global step (2 steps an epoch)
    lr = {int(r["step"]): float(r["lr-AdamW"]) for r in rows if r.get("lr-AdamW")}
    assert lr == pytest.approx({0: 1e-3, 2: 1e-3, 4: 1e-4})
    checkpoint = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4)


@pytest.mark.slow
def test_a_compile_failure_names_the_switches_that_train_without_it(train_cfg, no_cxx_compiler):
    """experiment=s3net_paper compiles by default: on a machine where torch.compile cannot
    (here: no C++ compiler), the error says which switches train eagerly."""
    from relight.cli.errors import expected
    from relight.models.execution import CompileFailedError

    cfg = train_cfg("model.compile=true", "model.compile_loss=true", "evaluate=false")
    with pytest.raises(CompileFailedError) as info:
        train(cfg)
    message = str(info.value)
    assert message.startswith(
        "torch.compile failed (model.compile=true, model.compile_loss=true, "
        "model.compile_mode=default): "
    )
    assert "No working C++ compiler" in message and expected(info.value)
    assert "Run without it: model.compile=false model.compile_loss=false" in message


# --- optimized_metric ---------------------------------------------------------------------


def test_optimized_metric_must_be_a_metric_relight_logs(tmp_path):
    """The names :func:`relight.train.train` returns (``extra_terms`` included); a name
    that is none of them, or one the config turns off, is a config error naming the key."""
    from omegaconf import OmegaConf

    from relight.config import ConfigError
    from relight.train import check_optimized_metric, metric_names

    def cfg(*overrides: str):
        return compose_cfg("train", ["data.root=/x", *overrides], tmp_path)

    for name in ("val/ssim_best", "val/mps_best", "eval_shifted/psnr", "test/mps", "train/loss"):
        check_optimized_metric(cfg(f"optimized_metric={name}"))
    check_optimized_metric(cfg())  # none: nothing to check
    for own_callbacks in ("lr-AdamW", "mine/edge_score"):  # looked up after the run
        check_optimized_metric(cfg(f"optimized_metric={own_callbacks}"))
    with pytest.raises(
        ConfigError,
        match=r"^optimized_metric='val/ssim_bets' names no metric relight-train logs "
        r"\(did you mean 'val/ssim_best'",
    ):
        check_optimized_metric(cfg("optimized_metric=val/ssim_bets"))
    with pytest.raises(ConfigError, match="evaluate=false, so the run logs no eval/ metrics"):
        check_optimized_metric(cfg("optimized_metric=eval/ssim", "evaluate=false"))
    with pytest.raises(ConfigError, match="test=false, so the run logs no test/ metrics"):
        check_optimized_metric(cfg("optimized_metric=test/ssim", "test=false"))
    own = OmegaConf.create({"loss": {"extra_terms": {"edge": {"weight": 0.5}}}})
    assert "train/edge" in metric_names(own) and "train/edge" not in metric_names(cfg())


@pytest.mark.parametrize(
    "sweep",
    [[], ["-m", "experiment=minividit_cpu", "hparams_search=minividit_optuna"]],
    ids=["single", "optuna"],
)
def test_a_misspelt_optimized_metric_is_one_line_before_anything_trains(sweep, tiny_data, tmp_path):
    """Checked when the command starts, not after the run (or an Optuna study's first
    trial) trained; the sweep's own choice of ``optimized_metric`` is checked too."""
    args = [*sweep, *data_args(tiny_data), *TINY, "evaluate=false", "test=false"]
    result = run_cli([*args, "optimized_metric=val/ssim_bets"], tmp_path, succeed=False)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1] == (
        "relight-train: error: optimized_metric='val/ssim_bets' names no metric relight-train "
        "logs (did you mean 'val/ssim_best' or 'val/ssim' or 'eval/ssim'?)"
    )
    assert not (tmp_path / "logs").exists()  # no run folder: nothing trained


def test_an_optimized_metric_the_run_did_not_log_is_one_line(train_cfg, capsys):
    """A valid name this run did not log (``train/skipped_items``: only with
    ``data.on_bad_item=skip`` and a bad item) ends in one line after the run, not in a
    KeyError's traceback."""
    from relight.cli.train import main

    with pytest.raises(SystemExit) as ended:
        main(train_cfg("optimized_metric=train/skipped_items", "evaluate=false", "test=false"))
    assert ended.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        "relight-train: error: optimized_metric=train/skipped_items was not logged by this "
        "run (its train/ metrics: train/charbonnier, "
    ), last
