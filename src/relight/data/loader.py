"""A training DataLoader whose position inside an epoch survives a crash.

Lightning stores the ``state_dict`` of a train loader that has one in every checkpoint and
hands it back through ``load_state_dict`` before the first batch of a resumed run. The
state is the epoch and the number of batches the training loop had finished; the
:class:`~relight.data.sampling.EpochSampler` then skips the items already trained on, so
a run killed at step ``k`` of an epoch continues with the item of step ``k + 1``. Every
guide draw depends on ``(seed, epoch, index)`` only, so no data RNG needs restoring.

Resumed on another number of ranks (or another batch size), the position becomes the
number of items trained on over all ranks (each rank takes every ``world_size``-th item of
one permutation, so they are a prefix of it); the run continues after them when they make
a whole number of the new global batches, else the epoch starts again from its first item,
with a warning. Checkpoints without ``world_size`` are taken as written on as many ranks.
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
        set_batches_done: sets that count when a resume converts the position (another
            world or batch size) or restarts the epoch, so that the training loop ends the
            epoch when the data does.
        *args, **kwargs: :class:`DataLoader` arguments; ``sampler`` must be an
            :class:`EpochSampler` and ``batch_sampler`` must not be given.
    """

    def __init__(
        self,
        *args: Any,
        batches_done: Callable[[], int],
        set_batches_done: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, EpochSampler):
            raise TypeError("ResumableDataLoader needs an EpochSampler")
        self.batches_done = batches_done
        self.set_batches_done = set_batches_done

    def state_dict(self) -> dict[str, int]:
        """The position: epoch, finished batches and the shape of the epoch."""
        return {
            "epoch": self.sampler.epoch,
            "batches_done": int(self.batches_done()),
            "batch_size": int(self.batch_size),
            "world_size": self.sampler.world_size,
            "items": self.sampler.length,
            "batches": len(self),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after the finished batches (the next epoch when the epoch was complete)."""
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        world = int(state.get("world_size", self.sampler.world_size))
        batch_size = int(state.get("batch_size", self.batch_size))
        if state.get("items") != self.sampler.length:
            self._restart(
                epoch,
                f"the training data changed since the checkpoint ({state.get('items')} items, "
                f"now {self.sampler.length})",
            )
        elif world == self.sampler.world_size and batch_size == self.batch_size:
            if done >= len(self):
                self.sampler.resume(epoch + 1, 0)
            else:
                self.sampler.resume(epoch, done * self.batch_size)
        elif done >= int(state.get("batches", done + 1)):
            self.sampler.resume(epoch + 1, 0)
        else:
            self._convert(epoch, done * batch_size * world, world, batch_size)

    def _convert(self, epoch: int, items_done: int, world: int, batch_size: int) -> None:
        """Resume after ``items_done`` items of the epoch's permutation, trained on
        ``world`` ranks in batches of ``batch_size``, in this loader's world and batch size."""
        global_batch = self.sampler.world_size * int(self.batch_size)
        shape = (
            f"{world} rank(s) x batches of {batch_size}, now {self.sampler.world_size} x "
            f"{self.batch_size}"
        )
        if items_done % global_batch:
            self._restart(
                epoch,
                f"the checkpoint's {items_done} items done this epoch ({shape}) are not a whole "
                f"number of the new global batches of {global_batch}",
            )
            return
        done = items_done // global_batch
        self.sampler.resume(epoch, done * int(self.batch_size))
        if self.set_batches_done is not None:
            self.set_batches_done(done)

    def _restart(self, epoch: int, why: str) -> None:
        warnings.warn(f"{why}: the resumed epoch starts from its first item", stacklevel=3)
        self.sampler.resume(epoch, 0)
        if self.set_batches_done is not None:
            self.set_batches_done(0)
