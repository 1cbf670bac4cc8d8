"""The RNG states a checkpoint carries, so that a resumed run draws what this one would."""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch


def rng_states() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states, as ``weights_only``-safe values."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        kind, keys, position, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        # one state per GPU the saving run saw; a run resumed with fewer visible GPUs
        # restores those it has (set_rng_state_all would index past the last one)
        saved, visible = len(states["cuda"]), torch.cuda.device_count()
        if saved > visible:
            warnings.warn(
                f"the checkpoint holds the CUDA random states of {saved} GPUs and {visible} "
                f"are visible: restored the first {visible}, so the resumed run may draw "
                "other random numbers than the saving run would have",
                stacklevel=2,
            )
        for index, state in enumerate(states["cuda"][:visible]):
            torch.cuda.set_rng_state(state, index)
