"""Port the authors' released S3Net checkpoint (``weight.pkl``, class ``Dehaze3``) to S3Net.

Every key of the authors' state dict is mapped by name, every shape checked; the one
module they define but never use (``enhancer.batch1``, an ``InstanceNorm2d(100)``) is
dropped. Any key left over or missing is an error that lists the keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch

from relight.models.weight_files import load_weights, state_dict_from

#: Authors' module prefix -> ours (applied in order, first match wins).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("encoder.", "encoder."),
    ("mid_conv.", "attention16."),
    ("attention1.", "attention8."),
    ("attention2.", "attention4."),
    ("enhancer.", "enhancement."),
    ("tail.1.", "tail."),
)
#: Inside attention blocks and the enhancement module.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"\.calayer\.ca\.0\.", ".channel_attention.reduce."),
    (r"\.calayer\.ca\.2\.", ".channel_attention.expand."),
    (r"\.palayer\.pa\.0\.", ".pixel_attention.reduce."),
    (r"\.palayer\.pa\.2\.", ".pixel_attention.expand."),
    (r"^enhancement\.conv10([1-4])0\.", None),  # pool branch n -> pool_convs.(n-1)
    (r"^enhancement\.refine3\.", "enhancement.fuse."),
)
#: Keys of the authors' model with no counterpart (defined but unused in their forward).
UNUSED_AUTHORS_KEYS = ("enhancer.batch1.weight", "enhancer.batch1.bias")


class CheckpointConversionError(ValueError):
    """The state dict is not the authors' S3Net (``Dehaze3``) checkpoint."""


def map_authors_key(key: str) -> str | None:
    """Our key for one key of the authors' state dict, ``None`` if it is dropped."""
    if key in UNUSED_AUTHORS_KEYS:
        return None
    for theirs, ours in _PREFIXES:
        if key.startswith(theirs):
            key = ours + key[len(theirs) :]
            break
    else:
        raise CheckpointConversionError(f"unexpected key in the authors' checkpoint: '{key}'")
    for pattern, replacement in _RENAMES:
        if replacement is None:
            key = re.sub(pattern, lambda m: f"enhancement.pool_convs.{int(m[1]) - 1}.", key)
        else:
            key = re.sub(pattern, replacement, key)
    return key


def convert_authors_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    reference: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Map the authors' ``Dehaze3`` state dict (a path or a dict) to :class:`S3Net` keys.

    Args:
        source: ``weight.pkl`` or its (``'state_dict'``) contents.
        reference: our model's state dict to check against (defaults to the paper's
            S3Net built without weights). Shapes must match and no key may be left over
            or missing.
    """
    theirs = (
        state_dict_from(source, "state dict")
        if isinstance(source, Mapping)
        else load_weights(source, "authors' checkpoint")
    )
    if reference is None:
        from relight.models.s3net import S3Net

        reference = S3Net(encoder_weights="none").state_dict()
    converted: dict[str, torch.Tensor] = {}
    leftover, wrong_shape = [], []
    for key, value in theirs.items():
        try:
            ours = map_authors_key(key)
        except CheckpointConversionError:
            leftover.append(key)
            continue
        if ours is None:
            continue
        if ours not in reference:
            leftover.append(key)
        elif tuple(reference[ours].shape) != tuple(value.shape):
            wrong_shape.append(
                f"{key} -> {ours}: {tuple(value.shape)} vs {tuple(reference[ours].shape)}"
            )
        else:
            converted[ours] = value
    missing = sorted(set(reference) - set(converted))
    problems = []
    if leftover:
        problems.append(f"{len(leftover)} unexpected keys: {', '.join(leftover[:10])}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches: {'; '.join(wrong_shape[:10])}")
    if missing:
        problems.append(f"{len(missing)} missing keys: {', '.join(missing[:10])}")
    if problems:
        raise CheckpointConversionError(
            "not the authors' S3Net (Dehaze3) checkpoint: " + " | ".join(problems)
        )
    return converted
