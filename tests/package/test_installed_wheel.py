"""relight as a library user installs it: the built wheel, non-editable, used from a folder
outside the repository. `make test-package` builds the wheel, installs it into a fresh
environment at the lowest dependency versions and runs these (with RELIGHT_WHEEL set); in
the editable development install they are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import relight
from relight.paths import PACKAGED_CONF

from ..user_experiment import write_user_experiment

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"
WHEEL = os.environ.get("RELIGHT_WHEEL")
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    WHEEL is None, reason="needs the built wheel installed (make test-package sets RELIGHT_WHEEL)"
)

#: A tiny mini-VIDIT, rendered on first use into ./data/minividit.
DATA = [
    "data.render_size=64",
    "data.image_size=64",
    "data.train_scenes=2",
    "data.val_scenes_rendered=2",
    "data.pairs_per_val_scene=1",
    "data.shifted_scenes_rendered=0",
    "data.spp=2",
    "data.render_workers=1",
]
TINY = [
    *DATA,
    "data.batch_size=2",
    "data.samples_per_scene=1",
    "model.net.encoder=resnet18",
    "model.net.encoder_weights=none",
    "model.metrics.lpips_weights=none",
    "loss.perceptual=0.0",
    "trainer=cpu",
    "trainer.log_every_n_steps=1",
    "+trainer.enable_progress_bar=false",
    "extras.print_config=false",
]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    env.pop("RELIGHT_ROOT", None)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_relight_is_installed_from_the_wheel_not_the_clone():
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert site in Path(relight.__file__).resolve().parents
    assert PACKAGED_CONF.is_dir()


def test_the_wheel_holds_every_config_of_conf():
    expected = {str(p.relative_to(REPO_CONF)) for p in REPO_CONF.rglob("*.yaml")}
    with zipfile.ZipFile(WHEEL) as wheel:
        packaged = {
            name.removeprefix("relight/conf/")
            for name in wheel.namelist()
            if name.startswith("relight/conf/")
        }
        assert packaged == expected
        for name in expected:
            assert wheel.read(f"relight/conf/{name}") == (REPO_CONF / name).read_bytes(), name


def test_the_wheel_admits_the_torch_builds_users_have():
    """A CUDA torch the user already has (the GPU image: 2.11.0+cu130) satisfies the
    requirement, so installing relight does not replace it."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    wanted = {r.name: r.specifier for r in map(Requirement, requires("relight")) if not r.marker}
    for version in ("2.11.0+cu130", "2.14.1"):
        assert wanted["torch"].contains(version), (version, wanted["torch"])
    assert wanted["torchvision"].contains("0.26.0+cu130")


def test_train_eval_and_own_experiment_from_any_folder(tmp_path):
    """relight-train, relight-eval and relight-train --config-dir with a user's experiment
    (own loss term class) work from a folder outside the clone; data and logs land there,
    nothing inside site-packages."""
    package = Path(relight.__file__).parent
    before = sorted(package.rglob("*"))
    work = write_user_experiment(tmp_path / "work")

    run(["relight-train", *TINY, "++trainer.fast_dev_run=true"], cwd=work)
    assert (work / "data" / "minividit" / "train").is_dir()  # rendered under the cwd
    assert (work / "logs" / "train").is_dir()

    own = run(
        [
            "relight-train",
            "--config-dir",
            "my_exps",
            "experiment=foo",
            *TINY,
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
            "evaluate=false",
        ],
        cwd=work,
    )
    runs = sorted((work / "logs" / "train" / "foo").glob("full_*"))
    assert len(runs) == 1, runs
    metrics = (runs[0] / "csv" / "metrics.csv").read_text()
    assert "train/brightness" in metrics.splitlines()[0], own.stdout[-2000:]
    best = runs[0] / "checkpoints" / "best.ckpt"
    assert best.is_file()

    evaluated = run(["relight-eval", f"ckpt_path={best}", *DATA], cwd=work)
    assert "identity" in evaluated.stdout
    assert list((work / "logs" / "eval").rglob("metrics.json"))
    assert sorted(package.rglob("*")) == before  # nothing written into the installed package
