"""Activation checkpointing of a timm feature encoder, the same in every timm version.

timm's own ``set_grad_checkpointing`` on a ``features_only`` model checkpoints every module
of the flattened stem too; up to timm 1.0.2x that fails in backward wherever a module
changes its input in place (the stem's ``ReLU(inplace=True)``: "modified by an inplace
operation"). Here only the composite modules (residual blocks, stages) are checkpointed;
the stem's leaf layers run as usual. Recomputing a block in backward would update its
BatchNorm running statistics a second time, so they are restored after the recomputation:
a checkpointed step leaves the same weights *and* buffers as a plain one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def supports_checkpointing(encoder: nn.Module) -> bool:
    """Whether ``encoder`` is a timm feature extractor this module can checkpoint
    (``FeatureListNet``/``FeatureDictNet``: an ordered dict of modules and ``return_layers``)."""
    return isinstance(encoder, nn.ModuleDict) and isinstance(
        getattr(encoder, "return_layers", None), dict
    )


@contextlib.contextmanager
def _buffers_restored(module: nn.Module) -> Iterator[None]:
    """Run the body, then put the module's buffers (BatchNorm statistics) back as they were."""
    saved = [(buffer, buffer.clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    def contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        return contextlib.nullcontext(), _buffers_restored(module)

    return checkpoint(module, x, use_reentrant=False, context_fn=contexts)


def checkpointed_features(encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The features ``encoder(x)`` returns, with its composite modules checkpointed.

    ``encoder`` must satisfy :func:`supports_checkpointing`; modules without children
    (convolutions, norms, activations, pooling of the stem) are not checkpointed.
    """
    features = []
    for name, module in encoder.items():
        x = _run(module, x) if next(module.children(), None) is not None else module(x)
        if name in encoder.return_layers:
            features.append(x)
    return features
