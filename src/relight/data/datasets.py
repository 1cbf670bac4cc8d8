"""Datasets: training triplets drawn from the VIDIT index, and fixed pairs.

Every item is a dict with ``input``, ``guide`` (3, S, S), ``input_depth``,
``guide_depth`` (1, S, S), ``target`` (3, S, S, when known) and ``name``, so the module,
evaluation and prediction share one collate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from relight.data.augment import JointAugmentation
from relight.data.bad_items import UNREADABLE_KEY, BadItemPolicy, encode_unreadable
from relight.data.cache import CachedReader, FileReader
from relight.data.formats import DataFormatError
from relight.data.pairs import PairFiles
from relight.data.sampling import GuideSampler, Triplet, augment_rng
from relight.data.vidit import Scene

Reader = FileReader | CachedReader
Item = dict[str, torch.Tensor | str]


class TripletDataset(Dataset[Item]):
    """Training items drawn by a :class:`GuideSampler`.

    Keys from :class:`relight.data.sampling.EpochSampler` encode (epoch, index); a plain
    integer below ``len(self)`` is item ``index`` of epoch 0. ``on_bad_item="skip"``
    replaces an item that needs an unreadable file by another draw of the same epoch
    (see :mod:`relight.data.bad_items`); the item then lists what it could not read.
    ``augment`` transforms the five tensors of each item together, drawn from ``(seed,
    epoch, index)`` (:mod:`relight.data.augment`).
    """

    #: Draws tried for one item before giving up (with most files unreadable).
    MAX_DRAWS = 16

    def __init__(
        self,
        scenes: dict[int, Scene],
        sampler: GuideSampler,
        reader: Reader,
        on_bad_item: str | BadItemPolicy = BadItemPolicy.error,
        augment: JointAugmentation | None = None,
    ) -> None:
        self.scenes, self.sampler, self.reader = scenes, sampler, reader
        self.on_bad_item = BadItemPolicy.parse(on_bad_item)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.sampler)

    def triplet(self, key: int) -> Triplet:
        epoch, index = divmod(int(key), len(self))
        return self.sampler.triplet(epoch, index)

    def __getitem__(self, key: int) -> Item:
        item = self._item(key)
        if self.augment is None:
            return item
        epoch, index = divmod(int(key), len(self))
        return self.augment(item, augment_rng(self.sampler.seed, epoch, index))

    def _item(self, key: int) -> Item:
        """The item of ``key`` before augmentation (a replacement draw under ``skip``)."""
        if self.on_bad_item is BadItemPolicy.error:
            return self.read(self.triplet(key))
        epoch, index = divmod(int(key), len(self))
        unreadable: list[DataFormatError] = []
        for attempt in range(self.MAX_DRAWS):
            drawn = self.sampler.replacement(epoch, index, attempt)
            try:
                item = self.read(self.sampler.triplet(epoch, drawn))
            except DataFormatError as error:
                unreadable.append(error)
                continue
            item[UNREADABLE_KEY] = encode_unreadable(unreadable)
            return item
        raise DataFormatError(
            f"item {index} of epoch {epoch}: {self.MAX_DRAWS} draws in a row needed unreadable "
            f"files (the last: {unreadable[-1]}); most of the data cannot be read: "
            "`relight-data check <data.root>` lists every problem",
            unreadable[-1].path,
            unreadable[-1].reason,
        )

    def read(self, t: Triplet) -> Item:
        """The tensors of a triplet."""
        source, guide = self.scenes[t.input_scene], self.scenes[t.guide_scene]
        return {
            "input": self.reader.image(source.images[t.input_light]),
            "guide": self.reader.image(guide.images[t.guide_light]),
            "input_depth": self.reader.depth(source.depth),
            "guide_depth": self.reader.depth(guide.depth),
            "target": self.reader.image(source.images[t.guide_light]),
            "name": t.name,
        }


class FixedTripletDataset(TripletDataset):
    """A fixed, seeded set of cross-scene triplets (validation without a pairs folder)."""

    def __init__(self, scenes: dict[int, Scene], sampler: GuideSampler, reader: Reader) -> None:
        super().__init__(scenes, sampler, reader)  # never augmented
        self.triplets = [sampler.triplet(0, i) for i in range(len(sampler))]

    def triplet(self, key: int) -> Triplet:
        return self.triplets[int(key) % len(self.triplets)]


class PairsDataset(Dataset[Item]):
    """Items of an NTIRE pairs folder (see :mod:`relight.data.pairs`)."""

    def __init__(self, pairs: Sequence[PairFiles], reader: Reader) -> None:
        self.pairs, self.reader = list(pairs), reader

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int) -> Item:
        pair = self.pairs[int(key) % len(self.pairs)]
        item: Item = {
            "input": self.reader.image(pair.input),
            "guide": self.reader.image(pair.guide),
            "input_depth": self.reader.depth(pair.input_depth),
            "guide_depth": self.reader.depth(pair.guide_depth),
            "name": pair.name,
        }
        if pair.target is not None:
            item["target"] = self.reader.image(pair.target)
        return item
