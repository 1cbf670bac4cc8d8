"""The console scripts as users run them (subprocesses): every expected failure is one line
``<prog>: error: <message>`` on stderr with exit status 1 (data, files, device) or 2
(usage, config), ``--debug`` shows the traceback; config mistakes fail at composition
(``--cfg job``; each mistake's message is checked in this process, two through the console
script); ``--help`` lists what users choose; paths resolve against one root; the tools that
do not train start without Lightning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from relight.cli.validation import check_command_line, compose_app, jobs
from relight.models.execution import BF16_TOLERANCE_TEXT
from relight.paths import config_dir, project_root

from .predict.conftest import save_relight_checkpoint, small_s3net

BIN = Path(sys.executable).parent
EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def console(prog: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    """Run the console script ``prog`` (as installed next to this Python) like a user."""
    environment = dict(os.environ if env is None else env, HF_HUB_OFFLINE="1")
    if env is None:
        environment.pop("RELIGHT_DEBUG", None)
    return subprocess.run(
        [str(BIN / prog), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess, prog: str, status: int) -> str:
    """Assert ``result`` failed with ``status`` and exactly one line on stderr (no
    traceback) starting ``prog: error:``; returns that line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == status, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert lines[-1] == errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 64x64 input and guide with depth maps, checkpoints with and without depth."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for name in ("input", "guide"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
        np.save(folder / f"{name}_depth.npy", rng.random((64, 64), dtype=np.float32))
    np.save(folder / "wide_depth.npy", rng.random((64, 128), dtype=np.float32))
    (folder / "notes.txt").write_text("a text file, not a checkpoint\n" * 50)
    (folder / "a_file").write_text("")
    depth = save_relight_checkpoint(small_s3net(), folder / "depth.ckpt")
    no_depth = save_relight_checkpoint(small_s3net(depth=False), folder / "no_depth.ckpt")
    return {
        "dir": folder,
        "input": folder / "input.png",
        "input_depth": folder / "input_depth.npy",
        "guide": folder / "guide.png",
        "guide_depth": folder / "guide_depth.npy",
        "wide_depth": folder / "wide_depth.npy",
        "text": folder / "notes.txt",
        "a_file": folder / "a_file",
        "ckpt": depth,
        "no_depth_ckpt": no_depth,
    }


def predict_args(files: dict[str, Path], **changes: str | None) -> list[str]:
    """A relight-predict single-pair command line, with ``changes`` to its flags
    (``None`` leaves a flag out)."""
    flags = {
        "--checkpoint": str(files["ckpt"]),
        "--input": str(files["input"]),
        "--input-depth": str(files["input_depth"]),
        "--guide": str(files["guide"]),
        "--guide-depth": str(files["guide_depth"]),
        "--output": str(files["dir"] / "out" / "relit.png"),
        "--quiet": "",
    }
    flags.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
    return [
        part
        for flag, value in flags.items()
        if value is not None
        for part in ((flag, value) if value else (flag,))
    ]


PREDICT_FAILURES = {
    # what is changed -> (exit status, what the message must say)
    "missing input": (dict(input="{dir}/nowhere.png"), 1, "nowhere.png"),
    "missing checkpoint": (dict(checkpoint="{dir}/nowhere.ckpt"), 1, "nowhere.ckpt"),
    "text file as checkpoint": (
        dict(checkpoint="{dir}/notes.txt"),
        1,
        "not a file torch.save or safetensors wrote",
    ),
    "unwritable output": (dict(output="{dir}/a_file/relit.png"), 1, "a_file"),
    "depth of another aspect": (dict(input_depth="{dir}/wide_depth.npy"), 1, "wide_depth.npy"),
    "depth for a no-depth model": (dict(checkpoint="{dir}/no_depth.ckpt"), 2, "takes no depth"),
    "no guide": (dict(guide=None, guide_depth=None), 2, "--guide"),
    "output not a png": (dict(output="{dir}/out/relit.jpg"), 2, ".png"),
    "unknown flag": (dict(colour="red"), 2, "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(PREDICT_FAILURES), ids=list(PREDICT_FAILURES))
def test_predict_failures_are_one_line(files, case):
    changes, status, needle = PREDICT_FAILURES[case]
    changes = {k: v and v.format(dir=files["dir"]) for k, v in changes.items()}
    result = console("relight-predict", *predict_args(files, **changes), cwd=files["dir"])
    assert needle in one_line_error(result, "relight-predict", status)
    assert not (files["dir"] / "out" / "relit.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_predict_on_cuda_without_cuda_is_one_line(files):
    result = console("relight-predict", *predict_args(files, device="cuda"), cwd=files["dir"])
    assert "CUDA" in one_line_error(result, "relight-predict", 1)


def test_inputs_are_checked_before_the_checkpoint_loads(files):
    """A missing input is named even when the checkpoint is not one (it never loads)."""
    args = predict_args(
        files, input=str(files["dir"] / "nowhere.png"), checkpoint=str(files["text"])
    )
    line = one_line_error(console("relight-predict", *args, cwd=files["dir"]), "relight-predict", 1)
    assert "nowhere.png" in line and "checkpoint" not in line


def test_debug_shows_the_traceback(files):
    args = predict_args(files, input=str(files["dir"] / "nowhere.png"))
    for run in (
        console("relight-predict", *args, "--debug", cwd=files["dir"]),
        console(
            "relight-predict", *args, cwd=files["dir"], env=dict(os.environ, RELIGHT_DEBUG="1")
        ),
    ):
        assert run.returncode == 1 and "Traceback" in run.stderr and "nowhere.png" in run.stderr


def test_predict_names_the_checkpoints_run_and_variant(files, tmp_path):
    """A checkpoint inside a run folder is described by its run, variant and epoch."""
    run = tmp_path / "logs" / "train" / "s3net" / "no_depth_2026"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    OmegaConf.save({"run_name": "s3net", "variant": "no_depth"}, run / ".hydra" / "config.yaml")
    ckpt = run / "checkpoints" / "epoch_007.ckpt"
    ckpt.write_bytes(files["no_depth_ckpt"].read_bytes())
    (run / "checkpoints" / "best.ckpt").symlink_to("epoch_007.ckpt")
    args = predict_args(files, checkpoint=str(run / "checkpoints" / "best.ckpt"))
    args = [a for a in args if a not in ("--input-depth", "--guide-depth")]
    args = [a for a in args if not a.endswith("_depth.npy")]
    result = console("relight-predict", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "run s3net, variant no_depth, epoch 7" in result.stderr
    assert "depth off" in result.stderr


@pytest.mark.parametrize(
    ("prog", "args", "status", "needle"),
    [
        ("relight-eval", ["ckpt_path={dir}/nowhere.ckpt", "pairs_dir={dir}"], 1, "nowhere.ckpt"),
        (
            "relight-export",
            ["--checkpoint", "{dir}/notes.txt", "--output", "{dir}/m.onnx"],
            1,
            "not a file torch.save",
        ),
        ("relight-report", ["{dir}/no_sweep"], 1, "no_sweep"),
        ("relight-data", ["check", "{dir}/no_data"], 2, "no_data"),  # a usage error here
        ("relight-convert", ["{dir}/nowhere.pkl", "{dir}/out.ckpt"], 1, "nowhere.pkl"),
        ("relight-wandb", ["sync", "--colour"], 2, "unrecognized arguments"),
        ("relight-data", ["check"], 2, "required"),
        ("relight-minividit", ["--size", "x"], 2, "--size"),
    ],
)
def test_every_console_script_fails_in_one_line(files, prog, args, status, needle):
    args = [a.format(dir=files["dir"]) for a in args]
    shown = f"{prog} check" if args == ["check"] else prog  # the subcommand's own parser
    assert needle in one_line_error(console(prog, *args, cwd=files["dir"]), shown, status)


# --- relight-train / relight-eval: the config, checked when it is composed ----------------

CONFIG_MISTAKES = {
    "+data.imag_size=3": "did you mean 'image_size'",
    "data.image_size=3": "multiple of 16",
    "loss.wssim=-1 model.optimizer.lr=0": "loss weights must be >= 0, got {'wssim': -1.0}; "
    "model.optimizer.lr must be > 0",
    "trainer.max_epoch=3": "did you mean 'max_epochs'",
    "experiment=s3net_papr": "Could not find 'experiment/s3net_papr'",
    "-m ablation=full,no_atention": "Could not find 'ablation/no_atention'",
    "-m data.image_size=64,48,50": "got 50",
    # a top-level key a schema does not know (the root is TrainConfig, like any group)
    "+optimised_metric=val/ssim": "invalid config: optimised_metric: not a key here (did you "
    "mean 'optimized_metric'?)",
    "sed=3": "Could not override 'sed': Key 'sed' not in 'TrainConfig': no such key (did you "
    "mean 'seed'?)",
    # an augmentation key JointAugmentation does not take: refused, not passed to it
    "+data.augment.hfilp=0.5": "invalid config: data.augment.hfilp: not a key here (did you "
    "mean 'hflip'?)",
    "+data.augment.vflip=0.5": "data.augment.vflip: not a key here",
    # trainer values against the annotations of Lightning's Trainer
    "trainer.max_epochs=abc": "invalid config: trainer.max_epochs: expected int or null, got 'abc'",
    "trainer.devices=1.5": "trainer.devices: expected one of: list[int], str, int, got 1.5",
    "trainer.precision=fp8": "trainer.precision: expected one of: 64, 32, 16,",
    "trainer.max_epochs=1.5": "trainer.max_epochs: expected int or null, got 1.5",
    # Hydra's error keeps its cause; "no such key" only for a key its parent lacks
    "data.augment={hflip:0.5,crop_sise:32}": "Could not override 'data.augment': Key "
    "'crop_sise' not in 'AugmentConfig': no such key (did you mean 'crop_size'?)",
    "model.net={atention:false}": "Key 'atention' not in 'NetConfig': no such key (did you "
    "mean 'attention'?)",
    "data.on_bad_item=skp": "Error merging override data.on_bad_item=skp: Invalid value "
    "'skp', expected one of [error, skip]",
    "loss.wssim=heavy": "Error merging override loss.wssim=heavy: Value 'heavy' of type 'str' "
    "could not be converted to Float",
    "trainer.limit_train_batches=3": "Could not override 'trainer.limit_train_batches': Key "
    "'limit_train_batches' is not in struct. To append to your config use "
    "+trainer.limit_train_batches=3",
}


def config_command_line(mistake: str) -> list[str]:
    """A sweep as written; anything else under ``--cfg job`` (which runs nothing)."""
    return mistake.split() if mistake.startswith("-m") else ["--cfg", "job", *mistake.split()]


@pytest.mark.parametrize("mistake", list(CONFIG_MISTAKES), ids=list(CONFIG_MISTAKES))
def test_config_mistakes_fail_at_composition(mistake):
    """The check relight-train runs before Hydra, in this process: the error it prints."""
    with pytest.raises((HydraException, OmegaConfBaseException, ValueError)) as raised:
        check_command_line("train", config_command_line(mistake))
    assert CONFIG_MISTAKES[mistake] in " ".join(str(raised.value).split())


EVAL_MISTAKES = {
    "ckpt_path=x +splt=test": "invalid config: splt: not a key here (did you mean 'split'?)",
    "ckpt_path=x splt=test": "Could not override 'splt': Key 'splt' not in 'EvalConfig': no "
    "such key (did you mean 'split'?)",
    # relight-eval's own image_size, not the data config's
    "ckpt_path=x image_size=50": "invalid config: image_size must be a positive multiple of 16",
    "": "invalid config: ckpt_path is required (set ckpt_path=...)",
}


@pytest.mark.parametrize("mistake", list(EVAL_MISTAKES), ids=list(EVAL_MISTAKES))
def test_eval_config_mistakes_fail_at_composition(mistake):
    with pytest.raises((HydraException, OmegaConfBaseException, ValueError)) as raised:
        check_command_line("eval", mistake.split())
    message = " ".join(str(raised.value).split())
    assert EVAL_MISTAKES[mistake] in message and "data.image_size" not in message


def test_a_key_hydra_can_add_keeps_its_hint():
    """``trainer.limit_train_batches=3``: a Trainer argument the config does not set (+ adds
    it); a misspelt one is no key of the Trainer."""
    with pytest.raises(HydraException) as raised:
        check_command_line("train", ["--cfg", "job", "trainer.limit_train_batches=3"])
    assert "no such key" not in str(raised.value)
    check_command_line("train", ["--cfg", "job", "+trainer.limit_train_batches=3"])


def test_required_values_are_checked_before_anything_runs(tmp_path):
    """``data.root: ???`` unset: one line naming it before a run folder exists; a sweep
    that sets it per job runs; ``--cfg job`` (which runs nothing) prints it as ``???``."""
    result = console("relight-train", "experiment=s3net_paper", cwd=tmp_path)
    line = one_line_error(result, "relight-train", 2)
    assert line.endswith("invalid config: data.root is required (set data.root=...)")
    assert "Seed set" not in result.stdout + result.stderr
    assert not (tmp_path / "logs").exists()
    check_command_line("train", ["-m", "experiment=s3net_paper", "data.root=/a,/b"])
    check_command_line("train", ["--cfg", "job", "experiment=s3net_paper"])
    with pytest.raises(ValueError, match=r"data\.root is required"):
        check_command_line("train", ["-m", "experiment=s3net_paper", "seed=1,2"])


@pytest.mark.parametrize("mistake", ["+data.imag_size=3", "-m ablation=full,no_atention"])
def test_a_config_mistake_is_one_line_and_runs_nothing(mistake, tmp_path):
    """The same check through the console script: one line, exit status 2, no run folder
    (for a sweep: before its first job)."""
    result = console("relight-train", *config_command_line(mistake), cwd=tmp_path)
    assert CONFIG_MISTAKES[mistake] in one_line_error(result, "relight-train", 2)
    assert not (tmp_path / "logs").exists() and not (tmp_path / "data").exists()


def test_resolve_works_for_every_experiment(tmp_path):
    result = console(
        "relight-train", "--cfg", "job", "experiment=s3net_paper", "--resolve", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "run_name: s3net_paper" in result.stdout
    # what relight-train checks before every job: each experiment composed, resolved, valid
    check_command_line("train", [f"experiment={','.join(EXPERIMENTS)}", "data.root=/x"])
    assert len(list(jobs([f"experiment={','.join(EXPERIMENTS)}"]))) == len(EXPERIMENTS) >= 10
    cfg = compose_app("train", ["experiment=s3net_no_depth"], resolve=True)
    assert cfg.group == "s3net_paper" and cfg.model.net.depth is False


def test_help_lists_what_users_choose(tmp_path):
    train = console("relight-train", "--help", cwd=tmp_path)
    assert train.returncode == 0 and "schema" not in train.stdout
    for experiment in EXPERIMENTS:  # each with its description
        assert any(
            line.split()[:1] == [experiment] and len(line.split()) > 3
            for line in train.stdout.splitlines()
        ), experiment
    assert "ablation: full, no_attention" in train.stdout
    evaluation = console("relight-eval", "--help", cwd=tmp_path)
    assert evaluation.returncode == 0 and "schema" not in evaluation.stdout
    assert "ckpt_path" in evaluation.stdout and "data: minividit, vidit" in evaluation.stdout
    assert "experiment" not in evaluation.stdout and "logger" not in evaluation.stdout


# --- one root for data and logs -----------------------------------------------------------


def fake_clone(folder: Path) -> Path:
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "train.yaml").write_text("")
    (folder / "src" / "relight").mkdir(parents=True)
    (folder / "notebooks" / "deep").mkdir(parents=True)
    return folder


def test_project_root(tmp_path, monkeypatch):
    clone = fake_clone(tmp_path / "clone")
    monkeypatch.delenv("RELIGHT_ROOT", raising=False)
    assert project_root(clone / "notebooks" / "deep") == clone.resolve()
    assert project_root(clone) == clone.resolve()
    (tmp_path / "elsewhere").mkdir()
    assert project_root(tmp_path / "elsewhere") == (tmp_path / "elsewhere").resolve()
    monkeypatch.setenv("RELIGHT_ROOT", str(tmp_path / "mine"))
    assert project_root(clone / "notebooks") == (tmp_path / "mine").resolve()


@pytest.mark.parametrize("where", ["clone subfolder", "RELIGHT_ROOT", "elsewhere"])
def test_relight_train_puts_data_and_logs_under_the_root(tmp_path, where):
    clone = fake_clone(tmp_path / "clone")
    env = dict(os.environ)
    env.pop("RELIGHT_ROOT", None)
    cwd, root = clone / "notebooks" / "deep", clone
    if where == "RELIGHT_ROOT":
        env["RELIGHT_ROOT"] = str(tmp_path / "mine")
        root = tmp_path / "mine"
    elif where == "elsewhere":
        cwd = root = tmp_path / "elsewhere"
        cwd.mkdir()
    result = console(
        "relight-train", "--cfg", "job", "--resolve", "--package", "paths", cwd=cwd, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    paths = OmegaConf.create(result.stdout)  # "# @package paths", then its keys
    assert Path(paths.data_dir).resolve() == (root / "data").resolve()
    assert Path(paths.log_dir).resolve() == (root / "logs").resolve()


def test_the_bf16_tolerance_is_said_once(tmp_path):
    """``relight-predict --help``, relight-eval's config and docs/predict.md state the
    tolerance the tests hold bf16 to, in the same words."""
    said = " ".join(BF16_TOLERANCE_TEXT.split())
    help_text = console("relight-predict", "--help", cwd=tmp_path).stdout
    docs = (Path(__file__).parents[1] / "docs" / "predict.md").read_text()
    for text in (help_text, docs, (config_dir() / "eval.yaml").read_text().replace("#", "")):
        assert said in " ".join(text.split())


#: What each console script that does not train may not import just to start: each costs
#: seconds (Lightning and torchmetrics about 3 s together, timm about 1 s).
NOT_AT_START_UP = ("lightning", "torchmetrics", "timm")


@pytest.mark.parametrize("module", ["predict", "data", "report", "wandb", "export", "bench"])
def test_tools_that_do_not_train_start_without_lightning(module):
    code = (
        f"import sys, relight.cli.{module}; "
        f"print(' '.join(m for m in {NOT_AT_START_UP!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"relight.cli.{module} imports {result.stdout.strip()}"


def test_lazy_exports_are_the_classes_and_unknown_names_still_fail():
    import relight.checkpoints
    import relight.data
    from relight.checkpoints.atomic_io import AtomicCheckpointIO
    from relight.data.datamodule import VIDITDataModule

    assert relight.data.VIDITDataModule is VIDITDataModule
    assert relight.checkpoints.AtomicCheckpointIO is AtomicCheckpointIO
    with pytest.raises(AttributeError, match="relight.data.*VIDITDatamodule"):
        relight.data.VIDITDatamodule  # noqa: B018 - the lookup is the test


# --- expected errors raised inside a config's _target_ or a worker pool -------------------


def test_missing_imagenet_weights_end_in_one_line_from_relight_train(tmp_path):
    """hydra.utils.instantiate wraps what S3Net raised in an InstantiationException, which
    Hydra printed as a repr with literal \\n; the user's error is its cause."""
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"))
    env.pop("RELIGHT_DEBUG", None)
    result = console(
        "relight-train", "debug=fdr", f"paths.root_dir={tmp_path}", cwd=tmp_path, env=env
    )
    line = one_line_error(result, "relight-train", 1)
    assert "ImageNet weights for the S3Net encoder 'res2net101d' are not available" in line
    assert "Error in call to target" not in result.stderr


def test_rendering_without_mitsuba_is_one_line_not_a_pool_restarting_workers(tmp_path):
    """A mitsuba that cannot be imported (here a stand-in that raises, as when the render
    extra is not installed): each spawned render worker failed in its initializer and the
    pool started new ones for ever."""
    stand_in = tmp_path / "site" / "mitsuba"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mitsuba'\", name='mitsuba')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(stand_in.parent), *sys.path]))
    env.pop("RELIGHT_DEBUG", None)
    args = ["--train-scenes", "2", "--val-scenes", "2", "--shifted-scenes", "0", "--size", "32"]
    result = subprocess.run(
        [str(BIN / "relight-minividit"), str(tmp_path / "out"), *args, "--workers", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = one_line_error(result, "relight-minividit", 1)
    assert "needs Mitsuba 3" in line and "pip install 'relight[render]'" in line
