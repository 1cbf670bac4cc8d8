"""Fixtures for the predict/export tests: a small S3Net (ResNet-18 encoder, random
weights) and a relight-style checkpoint of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from relight.models import S3Net


def small_s3net(seed: int = 0, **switches) -> S3Net:
    """S3Net with a ResNet-18 encoder and random weights (fast on a CPU)."""
    torch.manual_seed(seed)
    net = S3Net(encoder="resnet18", encoder_weights="none", allow_random_init=True, **switches)
    return net.eval()


def save_relight_checkpoint(net: S3Net, path: Path) -> Path:
    """What relight-train writes, as far as loading the network needs."""
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"net_config": net.hparams()}}, path)
    return path


@pytest.fixture(scope="session")
def small_net() -> S3Net:
    return small_s3net()


@pytest.fixture(scope="session")
def small_checkpoint(small_net, tmp_path_factory) -> Path:
    return save_relight_checkpoint(small_net, tmp_path_factory.mktemp("ckpt") / "small.ckpt")
