"""The best checkpoint of a run, kept across a resume into a new run folder."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from relight.files import atomic_write


class BestCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` that carries the best score and file over to a
    resumed run.

    A resumed run writes into a folder of its own. Lightning's checkpoint then forgets the
    best score (its ``dirpath`` changed), so the resumed run's ``best.ckpt``, its test and
    its evaluation would be the best epoch since the resume, not of the whole run. Here the
    resumed run's best checkpoint is linked (or copied) into the new folder and keeps its
    score: a later epoch replaces it only by scoring better. Carried when the monitored
    metric is the same; ``save_top_k > 1`` carries the best one only.
    """

    @property
    def state_key(self) -> str:
        """Lightning's key for this callback's state in a checkpoint: ModelCheckpoint's, so
        that checkpoints written with either class resume with the other."""
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Lightning's, and when the run folder changed, the best checkpoint carried over."""
        dirpath = state_dict.get("dirpath", self.dirpath)
        score = state_dict.get("best_model_score")
        best = Path(state_dict.get("best_model_path") or "")
        if (
            self.dirpath is None
            or dirpath == self.dirpath
            or score is None
            or state_dict.get("monitor") != self.monitor
        ):
            super().load_state_dict(state_dict)
            return
        if not best.is_file():
            warnings.warn(
                f"the resumed run's best checkpoint {best} is gone: the best is chosen among "
                "the epochs from here on",
                stacklevel=2,
            )
            self.best_model_path = ""
            return
        carried = Path(self.dirpath) / best.name
        if rank_zero_only.rank == 0:  # the other DDP ranks only take the path
            link_or_copy(best, carried)
        self.best_model_path = self.kth_best_model_path = str(carried)
        self.best_model_score = self.kth_value = score
        self.best_k_models = {str(carried): score}


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (instant, no space), or an atomic copy where
    links are not possible (another file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and os.path.samefile(source, target):
        return
    try:
        os.link(source, target)
    except OSError:
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
