"""S3Net's forward pass against a stored output: the wiring (skip connections, the
attention blocks' inner residuals, the enhancement module, the input's channel order) is
checked by value, not only by shape and parameter count.

Every weight and buffer is set from a generator seeded by its name, so the output depends
on the forward pass alone, not on timm's or torch's initialisation. The stored output was
made by this code, whose full-size model matched the authors' ``Dehaze3`` to 0.0 max abs
difference on their converted checkpoint. Regenerate it only when the forward pass changes
on purpose: ``python -m tests.models.test_s3net_golden``.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import torch

from relight.models import S3Net

GOLDEN = Path(__file__).parent / "data" / "s3net_resnet18_golden.npy"
SIZE = 32


def deterministic_weights(net: torch.nn.Module) -> torch.nn.Module:
    """Set every floating-point weight and buffer of ``net`` from its name alone."""
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if not tensor.is_floating_point():
                continue
            generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
            if name.endswith("running_var"):
                value = 1 + 0.5 * noise.abs()
            elif name.endswith("running_mean"):
                value = 0.1 * noise
            elif tensor.ndim > 1:
                value = noise / math.sqrt(tensor[0].numel())
            elif name.endswith("weight"):  # normalisation scales
                value = 1 + 0.1 * noise
            else:
                value = 0.1 * noise
            tensor.copy_(value.to(tensor.dtype))
    return net


def golden_output() -> torch.Tensor:
    """The paper's S3Net (attention, enhancement, depth), ResNet-18 encoder, on one input."""
    net = deterministic_weights(S3Net(encoder="resnet18", encoder_weights="none")).eval()
    generator = torch.Generator().manual_seed(2021)
    x = torch.rand(1, 8, SIZE, SIZE, generator=generator)
    with torch.no_grad():
        return net(x)


def test_forward_pass_matches_the_stored_output():
    stored = torch.from_numpy(np.load(GOLDEN))
    output = golden_output()
    assert output.shape == stored.shape == (1, 3, SIZE, SIZE)
    assert output.std() > 0.1  # the stored output is not saturated by the final tanh
    torch.testing.assert_close(output, stored, atol=1e-4, rtol=1e-4)


if __name__ == "__main__":
    np.save(GOLDEN, golden_output().numpy())
    print(f"wrote {GOLDEN}")
