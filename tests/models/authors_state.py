"""A synthetic state dict of the authors' S3Net (``Dehaze3``): every key and shape of their
released ``weight.pkl``, random values (shared by the converter and predict tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

AUTHORS_KEYS = (
    Path(__file__).parents[2] / ".." / "shared" / "data" / "s3net_authors_state_dict.json"
)


def authors_key_list() -> list[tuple[str, list[int], str]]:
    """(key, shape, dtype) of every tensor in the authors' state dict."""
    path = AUTHORS_KEYS.resolve()
    if not path.is_file():  # the repository keeps a copy for clones without shared/
        path = Path(__file__).parent / "data" / "s3net_authors_state_dict.json"
    return [tuple(entry) for entry in json.loads(path.read_text())["keys"]]


def synthetic_authors_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the authors' keys (int64 counters set to 7)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(shape, generator=generator)
        if dtype == "float32"
        else torch.tensor(7, dtype=torch.int64)
        for key, shape, dtype in authors_key_list()
    }
