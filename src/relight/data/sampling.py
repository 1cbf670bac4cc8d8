"""Guide sampling: input = scene A under L1, guide = scene B != A under L2, target = A under L2.

Every draw comes from a generator seeded by ``(seed, epoch, index)`` only, so an item is
the same whatever the worker count, process or rank that loads it, and a new guide is
drawn each epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from relight.data.vidit import Lighting, Scene

# domain tags: item draws, epoch orders, replacement draws and augmentations never share a
# stream
_ITEM, _ORDER, _REPLACE, _AUGMENT = 0, 1, 2, 3


@dataclass(frozen=True)
class Triplet:
    """A training example: relight ``input_scene`` from ``input_light`` to ``guide_light``."""

    input_scene: int
    input_light: Lighting
    guide_scene: int
    guide_light: Lighting

    @property
    def name(self) -> str:
        """E.g. ``Image003_4500_E-to-Image011_2500_N``."""
        return (
            f"Image{self.input_scene:03d}_{self.input_light}-to-"
            f"Image{self.guide_scene:03d}_{self.guide_light}"
        )


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item, independent of everything but its three integers."""
    return np.random.default_rng(np.random.SeedSequence([_ITEM, seed, epoch, index]))


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item's augmentation (see :mod:`relight.data.augment`)."""
    return np.random.default_rng(np.random.SeedSequence([_AUGMENT, seed, epoch, index]))


def order_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch's shuffle."""
    return np.random.default_rng(np.random.SeedSequence([_ORDER, seed, epoch]))


class GuideSampler:
    """Draws :class:`Triplet` s over a set of scenes.

    Args:
        scenes: the index (see :func:`relight.data.vidit.index_vidit`).
        scene_ids: the scenes of this split.
        seed: base seed of every draw.
        samples_per_scene: ``None``: an epoch visits every (scene, lighting) input image
            once; ``k``: an epoch has ``k`` items per scene with a random input lighting.
        allow_same_lighting: let the guide lighting equal the input lighting.
    """

    def __init__(
        self,
        scenes: dict[int, Scene],
        scene_ids: Sequence[int],
        seed: int = 0,
        samples_per_scene: int | None = None,
        allow_same_lighting: bool = False,
    ) -> None:
        self.seed = seed
        self.allow_same_lighting = allow_same_lighting
        usable = []
        for sid in sorted(scene_ids):
            if len(scenes[sid].images) < 2 and not allow_same_lighting:
                warnings.warn(
                    f"scene {scenes[sid].name} has a single lighting and is skipped (its target "
                    "would equal its input; set allow_same_lighting=true to keep it)",
                    stacklevel=2,
                )
            else:
                usable.append(sid)
        if len(usable) < 2:
            raise ValueError(
                f"guide sampling needs at least 2 usable scenes (the guide comes from another "
                f"scene); this split has {len(usable)}: {usable}"
            )
        self.scene_ids = usable
        self.lightings = {sid: sorted(scenes[sid].images) for sid in usable}
        self.scenes_with: dict[Lighting, list[int]] = {}
        for sid in usable:
            for light in self.lightings[sid]:
                self.scenes_with.setdefault(light, []).append(sid)
        if samples_per_scene is not None and samples_per_scene < 1:
            raise ValueError(
                f"data.samples_per_scene must be >= 1 or null, got {samples_per_scene}"
            )
        self.samples_per_scene = samples_per_scene
        self.inputs = (
            [(sid, light) for sid in usable for light in self.lightings[sid]]
            if samples_per_scene is None
            else None
        )

    def __len__(self) -> int:
        if self.inputs is not None:
            return len(self.inputs)
        return len(self.scene_ids) * int(self.samples_per_scene or 1)

    def replacement(self, epoch: int, index: int, attempt: int) -> int:
        """The index drawn instead of item ``index`` of ``epoch`` after ``attempt`` draws
        failed (``attempt`` 0: the item itself): another item of the same epoch, from a
        generator seeded by ``(seed, epoch, index)`` only, so it is the same in every run."""
        if attempt == 0 or len(self) < 2:
            return index
        rng = np.random.default_rng(np.random.SeedSequence([_REPLACE, self.seed, epoch, index]))
        other = int(rng.integers(len(self) - 1, size=attempt)[-1])
        return other + (other >= index)  # never the item itself

    def triplet(self, epoch: int, index: int) -> Triplet:
        """The item ``index`` of ``epoch`` (``0 <= index < len(self)``)."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        rng = item_rng(self.seed, epoch, index)
        if self.inputs is not None:
            scene, light = self.inputs[index]
        else:
            scene = self.scene_ids[index // int(self.samples_per_scene or 1)]
            options = self.lightings[scene]
            light = options[rng.integers(len(options))]
        candidates = [l2 for l2 in self.lightings[scene] if self.allow_same_lighting or l2 != light]
        for position in rng.permutation(len(candidates)):
            guide_light = candidates[position]
            others = [sid for sid in self.scenes_with[guide_light] if sid != scene]
            if others:
                guide_scene = others[rng.integers(len(others))]
                return Triplet(scene, light, guide_scene, guide_light)
        raise ValueError(
            f"no other scene has any lighting of Image{scene:03d} besides {light}: cannot "
            "draw a guide"
        )


class EpochSampler(Sampler[int]):
    """Yields ``epoch * length + i`` keys, shuffled per epoch and sharded per rank.

    Datasets decode the key with ``divmod(key, length)`` into (epoch, index), so the epoch
    reaches the workers without shared state. Lightning calls :meth:`set_epoch` each epoch.
    Under DDP each rank takes every ``world_size``-th item of the same permutation (the
    list is padded to a multiple of ``world_size``, as ``DistributedSampler`` does); the
    trainer must then run with ``use_distributed_sampler=False``.
    """

    def __init__(
        self,
        length: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self._rank, self._world_size = rank, world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        """Start the next pass over ``epoch`` after this rank's first ``skip`` items (a run
        restarted in the middle of an epoch continues where it stopped)."""
        self.epoch = epoch
        self._resume = (epoch, skip)

    def _dist(self) -> tuple[int, int]:
        if self._rank is not None and self._world_size is not None:
            return self._rank, self._world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    @property
    def world_size(self) -> int:
        """How many ranks share each epoch."""
        return self._dist()[1]

    def __len__(self) -> int:
        _, world = self._dist()
        return -(-self.length // world)

    def __iter__(self) -> Iterator[int]:
        rank, world = self._dist()
        if self.shuffle:
            order = order_rng(self.seed, self.epoch).permutation(self.length).tolist()
        else:
            order = list(range(self.length))
        total = -(-self.length // world) * world
        order = (order * -(-total // max(self.length, 1)))[:total]  # pad by cycling
        skip = 0
        if self._resume is not None:
            if self._resume[0] == self.epoch:
                skip = self._resume[1]
            self._resume = None
        for index in order[rank::world][skip:]:
            yield self.epoch * self.length + index
