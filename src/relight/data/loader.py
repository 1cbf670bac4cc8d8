"""A training DataLoader whose position inside an epoch survives a crash.

Lightning stores the ``state_dict`` of a train loader that has one in every checkpoint and
hands it back through ``load_state_dict`` before the first batch of a resumed run. The
state is the epoch and the number of batches the training loop had finished; the
:class:`~relight.data.sampling.EpochSampler` then skips the items already trained on, so
a run killed at step ``k`` of an epoch continues with the item of step ``k + 1``. Every
guide draw depends on ``(seed, epoch, index)`` only, so no data RNG needs restoring.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from relight.data.sampling import EpochSampler


class ResumableDataLoader(DataLoader):
    """A :class:`DataLoader` over an :class:`EpochSampler` with a resumable position.

    Args:
        batches_done: returns how many batches of the current epoch the training loop
            has finished (asked when a checkpoint is written).
        *args, **kwargs: :class:`DataLoader` arguments; ``sampler`` must be an
            :class:`EpochSampler` and ``batch_sampler`` must not be given.
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, EpochSampler):
            raise TypeError("ResumableDataLoader needs an EpochSampler")
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        """The position: epoch, finished batches and the shape of the epoch."""
        return {
            "epoch": self.sampler.epoch,
            "batches_done": int(self.batches_done()),
            "batch_size": int(self.batch_size),
            "items": self.sampler.length,
            "batches": len(self),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after the finished batches (the next epoch when the epoch was complete)."""
        if state.get("items") != self.sampler.length or state.get("batch_size") != self.batch_size:
            warnings.warn(
                f"the training data changed since the checkpoint ({state.get('items')} items in "
                f"batches of {state.get('batch_size')}, now {self.sampler.length} in batches of "
                f"{self.batch_size}): the resumed epoch starts from its first item",
                stacklevel=2,
            )
            self.sampler.resume(int(state["epoch"]), 0)
            return
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if done >= len(self):
            self.sampler.resume(epoch + 1, 0)
        else:
            self.sampler.resume(epoch, done * self.batch_size)
