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


#: A tiny mini-VIDIT: 3 training scenes, 2 validation and 2 shifted scenes with 4 pairs
#: each, 32², 4 samples per pixel, 2 x 4 lightings.
TINY_RENDER = dict(
    size=32,
    train_scenes=3,
    val_scenes=2,
    pairs_per_val_scene=4,
    shifted_scenes=2,
    pairs_per_shifted_scene=4,
    spp=4,
    temperatures=(2500, 6500),
    directions=("N", "E", "S", "W"),
    workers=1,
    variant="scalar_rgb",
)


@pytest.fixture(scope="session")
def tiny_minividit(tmp_path_factory):
    """``(folder, settings, summary)`` of one tiny mini-VIDIT render (needs mitsuba)."""
    pytest.importorskip("mitsuba")
    from relight.data.synthetic import RenderSettings, render_minividit

    out = tmp_path_factory.mktemp("minividit")
    settings = RenderSettings(**TINY_RENDER)
    return out, settings, render_minividit(out, settings, progress=False)


@pytest.fixture
def no_cxx_compiler():
    """A machine without a working C++ compiler, as torch.compile's CPU backend sees it
    (and nothing taken from its caches)."""
    import torch._inductor.config as inductor

    torch._dynamo.reset()
    with inductor.patch({"cpp.cxx": ("no-such-c++-compiler",), "force_disable_caches": True}):
        yield
    torch._dynamo.reset()
