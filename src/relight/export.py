"""``relight-export``: S3Net to ONNX, with dynamic batch, height and width.

    relight-export --checkpoint best.ckpt --output s3net.onnx [--verify]

The ONNX graph is the network's forward pass: input ``input`` (B, 8, H, W) float32 =
[input RGB, guide RGB, input depth, guide depth] in [0, 1] (6 channels for a model
without depth), with H and W **multiples of 16** (at least 32 with the enhancement
module), output ``relit`` (B, 3, H, W) in [-1, 1] (tanh). Padding other sizes (reflect)
and clamping the output to [0, 1] are left to the caller, as in
:mod:`relight.inference`. The export uses torch's ``torch.export``-based exporter
(needs ``onnx`` and ``onnxscript``; ``--verify`` also ``onnxruntime``: ``pip install
'relight[export]'``), and the network config is stored in the model's metadata
(``relight.net_config``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from relight.models import S3Net
from relight.models.s3net import SIZE_MULTIPLE

INPUT_NAME, OUTPUT_NAME = "input", "relit"
DEFAULT_OPSET = 18


def export_onnx(
    net: S3Net,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    example_size: tuple[int, int] = (64, 96),
) -> Path:
    """Write ``net`` as ONNX with dynamic batch and H, W = 16·k (k ≥ min_size / 16).

    Written to a temporary file and renamed: an interrupted export leaves nothing.
    """
    path = Path(path)
    net = net.eval().cpu()
    x = torch.rand(2, net.in_channels, *example_size)
    smallest = net.min_size // SIZE_MULTIPLE
    height = SIZE_MULTIPLE * torch.export.Dim("height_16", min=smallest)
    width = SIZE_MULTIPLE * torch.export.Dim("width_16", min=smallest)
    dynamic = ({0: torch.export.Dim("batch", min=1), 2: height, 3: width},)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
            program = torch.onnx.export(
                net,
                (x,),
                dynamo=True,
                dynamic_shapes=dynamic,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                external_data=False,
                verbose=False,
            )
        program.model.metadata_props["relight.net_config"] = json.dumps(net.hparams())
        program.save(tmp, external_data=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_max_abs_difference(
    net: S3Net, path: str | os.PathLike[str], sizes: Sequence[tuple[int, int, int]], seed: int = 0
) -> float:
    """Largest |ONNX Runtime (CPU) - PyTorch| over random inputs of the (B, H, W) ``sizes``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, height, width in sizes:
        x = torch.rand(batch, net.in_channels, height, width, generator=generator)
        with torch.inference_mode():
            expected = net.eval().cpu()(x).numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        if got.shape != expected.shape:
            raise ValueError(f"{path}: ONNX output {got.shape}, PyTorch {expected.shape}")
        worst = max(worst, float(abs(got - expected).max()))
    return worst
