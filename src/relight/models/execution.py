"""Execution modes of a network at inference: precision, memory layout, compilation.

One name per mode, shared by the benchmarks, evaluation and prediction, so that a speed
measured by ``make bench`` is the speed a user gets by naming the same mode:

==================  ===========================================================
``eager-fp32``      the reference: float32, NCHW, eager
``fp32-cl``         float32, channels_last memory layout
``bf16``            bfloat16 autocast (weights stay float32), NCHW
``bf16-cl``         bfloat16 autocast + channels_last (the fastest eager mode on a CPU;
                    on an H200 at batch 1, slower than fp32 with TF32)
``bf16-cl-compile`` ``bf16-cl`` + ``torch.compile`` (pays off on GPU; slow to compile)
``bf16-cl-graphs``  ``bf16-cl-compile`` with CUDA graphs (``reduce-overhead``): one
                    launch per call instead of about 1,500 kernels, one graph per
                    input shape (on a CPU the same as ``bf16-cl-compile``)
==================  ===========================================================

Every mode runs under :func:`torch.inference_mode` and returns float32 outputs (of its
own: a graph's next replay does not overwrite them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class ExecutionMode:
    """How to run a network: autocast dtype (``None``: float32), layout, and
    ``torch.compile``'s mode (``None``: eager)."""

    name: str
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: str | None = None


MODES: dict[str, ExecutionMode] = {
    mode.name: mode
    for mode in (
        ExecutionMode("eager-fp32"),
        ExecutionMode("fp32-cl", channels_last=True),
        ExecutionMode("bf16", autocast_dtype=torch.bfloat16),
        ExecutionMode("bf16-cl", autocast_dtype=torch.bfloat16, channels_last=True),
        ExecutionMode(
            "bf16-cl-compile", autocast_dtype=torch.bfloat16, channels_last=True, compile="default"
        ),
        ExecutionMode(
            "bf16-cl-graphs",
            autocast_dtype=torch.bfloat16,
            channels_last=True,
            compile="reduce-overhead",
        ),
    )
}


#: How far a bf16 mode may move results from ``eager-fp32`` (what the tests hold it to):
#: the mean absolute difference of the relit pixels (in [0, 1]) and of the mean metrics.
BF16_TOLERANCE = {"mean_abs": 0.02, "psnr_db": 0.05, "ssim": 0.002}
#: The same, in words: ``relight-predict --help``, ``relight-eval``'s config and
#: docs/predict.md say it in exactly these words (tested).
BF16_TOLERANCE_TEXT = (
    f"bf16 output within {BF16_TOLERANCE['mean_abs']} mean absolute difference of fp32 "
    f"(pixels in [0, 1]); mean metrics within {BF16_TOLERANCE['psnr_db']} dB PSNR and "
    f"{BF16_TOLERANCE['ssim']} SSIM"
)


def get_mode(name: str) -> ExecutionMode:
    """The mode called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in MODES:
        raise ValueError(f"unknown execution mode {name!r}; choose one of {sorted(MODES)}")
    return MODES[name]


def prepare(
    net: nn.Module, mode: str | ExecutionMode, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Move ``net`` to ``device`` in eval mode with the mode's layout and return a function
    ``run(x) -> float32 output`` that applies the mode (the net is modified in place)."""
    mode = get_mode(mode) if isinstance(mode, str) else mode
    device = torch.device(device)
    net = net.to(device).eval()
    layout = torch.channels_last if mode.channels_last else torch.contiguous_format
    net = net.to(memory_format=layout)
    module: Callable[[torch.Tensor], torch.Tensor] = (
        torch.compile(net, mode=mode.compile) if mode.compile else net
    )
    # what a compile failure suggests: the same mode without compile (bf16-cl-compile: bf16-cl)
    eager = next(
        (f"mode {m.name}" for m in MODES.values() if m == replace(mode, name=m.name, compile=None)),
        "a mode without compile",
    )

    compiled = f"execution mode {mode.name}" if mode.compile else None

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
        begin_compiled_step(mode.compile)
        with (
            explain_compile_failure(compiled, f"{eager} (the same arithmetic, eager)"),
            torch.inference_mode(),
            torch.autocast(
                device.type,
                dtype=mode.autocast_dtype or torch.float32,
                enabled=mode.autocast_dtype is not None,
            ),
        ):
            out = module(x)
            # a float32 output of a CUDA graph is its memory, until the next replay
            replayed = mode.compile in CUDA_GRAPH_MODES and out.dtype == torch.float32
            return out.clone() if replayed else out.float()

    return run


#: ``torch.compile`` modes (``model.compile_mode``).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes that record CUDA graphs (Inductor's ``triton.cudagraphs``).
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def check_compile_mode(mode: str) -> None:
    """A ``ValueError`` unless ``mode`` is one of :data:`COMPILE_MODES`."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"model.compile_mode={mode!r}: choose one of {list(COMPILE_MODES)}")


class CompileFailedError(RuntimeError):
    """``torch.compile`` failed on this machine (no working C++ compiler or Triton, an
    operation it cannot compile); the message names the settings that run without it."""


#: What torch.compile raises when it cannot compile (not errors of the traced code itself):
#: the backend failed (Inductor: no C++ compiler, Triton), dynamo failed internally, or an
#: operation it cannot trace where it must.
COMPILE_FAILURES = ("BackendCompilerFailed", "InternalTorchDynamoError", "Unsupported")


def explain_compile_failure(compiled: str | None, instead: str) -> AbstractContextManager[None]:
    """Re-raise a ``torch.compile`` failure (:data:`COMPILE_FAILURES`) inside the block as
    :class:`CompileFailedError` naming what was compiled (``compiled``: the switches that
    turned it on), its cause, and what runs without it (``instead``); other errors pass
    unchanged. ``compiled=None`` (nothing was compiled): a context that does nothing."""
    return nullcontext() if compiled is None else _explained(compiled, instead)


@contextmanager
def _explained(compiled: str, instead: str) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        dynamo = sys.modules.get("torch._dynamo.exc")  # imported by any torch.compile
        failures = tuple(getattr(dynamo, name) for name in COMPILE_FAILURES if dynamo)
        if not failures or not isinstance(error, failures):
            raise
        cause = getattr(error, "inner_exception", None) or error  # the backend's own error
        headline = next((line for line in str(cause).splitlines() if line.strip()), "")
        raise CompileFailedError(
            f"torch.compile failed ({compiled}): {type(cause).__name__}: {headline.strip()[:400]}"
            f". Run without it: {instead}. --debug or RELIGHT_DEBUG=1 shows the traceback"
        ) from error


def begin_compiled_step(compile_mode: str | None) -> None:
    """Before each training or evaluation step of modules compiled in ``compile_mode``
    (``None``: not compiled): with CUDA graphs (:data:`CUDA_GRAPH_MODES`), start a new
    iteration, so the graphs may reuse the previous iteration's output memory."""
    if compile_mode in CUDA_GRAPH_MODES:
        torch.compiler.cudagraph_mark_step_begin()
