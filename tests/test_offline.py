"""No command hangs without network. Each library that could download or connect is tried
in a fresh process on a machine without network (every host it asks for resolves to
nothing; ``HF_HUB_OFFLINE`` and ``WANDB_MODE`` unset, empty caches, no credentials): it
must answer within a wall-clock bound and say what it needs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

#: A host name that never resolves (RFC 2606), whatever network the test machine has.
BLACKHOLE = "relight-test.invalid"
BOUND_S = 10.0

PRELUDE = f"""
import time, warnings
import relight.models.weights as weights
_real = weights.host_reachable
# every probe of relight's goes to the unresolvable host, whatever host it asked for
weights.host_reachable = lambda host, port=443, timeout=3.0: _real("{BLACKHOLE}", port, timeout)
start = time.monotonic()
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    print("RESULT", result, *[str(w.message).splitlines()[0] for w in caught], sep="\\n")
except Exception as error:
    print("ERROR", type(error).__name__, error)
print("ELAPSED", time.monotonic() - start)
"""

CASES = {
    "timm encoder weights (Hugging Face hub)": (
        """def run():
            from relight.models import S3Net
            return S3Net(encoder="resnet18", encoder_weights="imagenet")""",
        ["ERROR WeightsUnavailableError", "timm/resnet18", "unreachable"],
    ),
    "timm VGG19 of the perceptual loss": (
        """def run():
            from relight.losses.perceptual import PerceptualLoss
            return PerceptualLoss(weights="imagenet")""",
        ["ERROR WeightsUnavailableError", "vgg19", "unreachable"],
    ),
    "torchvision backbone of LPIPS": (
        """def run():
            from relight.metrics.lpips import build_lpips
            return build_lpips("alex")""",
        [
            "ERROR WeightsUnavailableError",
            "alexnet-owt-7be5be79.pth",
            "cannot be reached",
            "three ways",
        ],
    ),
    "LPIPS in the training metrics (switched off)": (
        """def run():
            from relight.metrics import RelightMetrics
            return RelightMetrics(lpips_weights="imagenet").lpips_network""",
        ["RESULT\nNone", "LPIPS and MPS are OFF"],
    ),
    "monocular depth model of relight-predict (Hugging Face hub)": (
        """import numpy as np, torch
        from PIL import Image
        from relight.models import S3Net
        from relight.cli.predict import main
        net = S3Net(encoder="resnet18", encoder_weights="none")  # set-up, not timed
        state = {f"net.{k}": v for k, v in net.state_dict().items()}
        torch.save({"state_dict": state, "hyper_parameters": {"net_config": net.hparams()}},
                   "s3net.ckpt")
        Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save("photo.jpg")
        def run():  # the one command, two photos without depth
            return main(["--input", "photo.jpg", "--guide", "photo.jpg", "--debug",
                         "--checkpoint", "s3net.ckpt", "--output", "relit.png"])""",
        [
            "ERROR WeightsUnavailableError",
            "'depth-anything/Depth-Anything-V2-Small-hf'",
            f"hub.{BLACKHOLE} is unreachable",
            "three ways",
            "--depth-model /path/to/folder",
            "--input-depth and --guide-depth",
        ],
    ),
    "W&B online logging": (
        """def run():
            from omegaconf import OmegaConf
            from relight.train import instantiate_loggers
            node = {"_target_": "lightning.pytorch.loggers.wandb.WandbLogger", "offline": False,
                    "project": "relight", "save_dir": "."}
            return instantiate_loggers(OmegaConf.create({"wandb": node}), None)""",
        ["ERROR ConnectionError", f"api.{BLACKHOLE}", "logger.wandb.offline=true", "wandb sync"],
    ),
    "W&B offline logging (the default)": (
        """def run():
            from lightning.pytorch.loggers import WandbLogger
            logger = WandbLogger(project="relight", offline=True, save_dir=".")
            logger.log_metrics({"x": 1.0})
            run_id = logger.experiment.id
            import wandb; wandb.finish()
            return bool(run_id)""",
        ["RESULT\nTrue"],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_no_network_no_hang(case: str, tmp_path) -> None:
    body, expected = CASES[case]
    script = textwrap.dedent(body.replace("\n        ", "\n")) + PRELUDE
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "WANDB_MODE"}}
    env.update(
        HF_HOME=str(tmp_path / "hf"),
        TORCH_HOME=str(tmp_path / "torch"),
        HF_ENDPOINT=f"https://hub.{BLACKHOLE}",
        WANDB_BASE_URL=f"https://api.{BLACKHOLE}",
        WANDB_DIR=str(tmp_path),
        WANDB_SILENT="true",
        HOME=str(tmp_path),  # no W&B or HF credentials of the user
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout
    assert "ELAPSED" in output, result.stderr[-3000:]
    elapsed = float(output.rsplit("ELAPSED", 1)[1])
    assert elapsed < BOUND_S, f"{case}: {elapsed:.1f} s"
    for text in expected:
        assert text in output, output[-2000:]


def test_failed_torchvision_download_is_a_clear_error(monkeypatch, tmp_path) -> None:
    """A host that answers the probe but fails the download (a proxy, a captive portal)."""
    import urllib.error
    import urllib.request

    import torch

    from relight.metrics.lpips import build_lpips
    from relight.models import weights
    from relight.models.weights import WeightsUnavailableError

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(weights, "host_reachable", lambda *a, **k: True)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache
    with pytest.raises(
        WeightsUnavailableError, match=r"(?s)download failed \(URLError.*three ways"
    ):
        build_lpips("alex")
    assert not list(tmp_path.rglob("*.pth")) and not list(tmp_path.rglob("*.tmp"))
