"""Shared test setup: no network, no user caches, random-init networks."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports huggingface_hub / torch.hub / wandb, which read these once.
_CACHE = tempfile.mkdtemp(prefix="relight-test-cache-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["HF_HOME"] = os.path.join(_CACHE, "hf")
os.environ["TORCH_HOME"] = os.path.join(_CACHE, "torch")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def s3net():
    """The paper's S3Net with random weights (built once per session)."""
    from relight.models import S3Net

    return S3Net(encoder_weights="none").eval()


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
