"""What training does with an unreadable file: ``data.on_bad_item``.

- ``error`` (the default): the :class:`~relight.data.formats.DataFormatError` stops the
  run; it names the file, and rerunning the command resumes from the newest checkpoint.
- ``skip``: a training item that needs an unreadable file is replaced by another draw of
  the same epoch (:meth:`relight.data.sampling.GuideSampler.replacement`, a function of
  ``(seed, epoch, index, attempt)`` only, so a resumed run draws exactly what the first
  one did). The item carries the files it could not read (:data:`UNREADABLE_KEY`); in the
  main process a :class:`BadItemTracker` reports each file once, counts them
  (``train/bad_items``: distinct unreadable files, ``train/skipped_items``: replaced
  draws) and stops the run when more than ``data.max_bad_items`` files were unreadable.

Validation and test items are never skipped: their metrics must cover the whole set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from relight.data.formats import DataFormatError

log = logging.getLogger(__name__)

#: The key of a training item listing, as JSON ``[[path, message], ...]``, the unreadable
#: files of the draws it replaced (a string, so that the default collate keeps it).
UNREADABLE_KEY = "unreadable"


class BadItemPolicy(str, Enum):  # noqa: UP042 - a StrEnum formats differently in messages
    """``data.on_bad_item``: stop at an unreadable training file, or skip its items."""

    error = "error"
    skip = "skip"

    @classmethod
    def parse(cls, value: str | BadItemPolicy) -> BadItemPolicy:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"data.on_bad_item must be one of {[p.value for p in cls]}, got {value!r}"
            ) from None


class TooManyBadItemsError(DataFormatError):
    """More training files were unreadable than ``data.max_bad_items`` allows."""


def encode_unreadable(errors: Iterable[DataFormatError]) -> str:
    """The :data:`UNREADABLE_KEY` value of an item: the file and message of each error."""
    return json.dumps([[str(error.path), str(error)] for error in errors])


class BadItemTracker:
    """The unreadable training files of a run, kept in the main process (and in
    checkpoints, through the DataModule's ``state_dict``)."""

    def __init__(self, max_bad_items: int) -> None:
        if max_bad_items < 0:
            raise ValueError(f"data.max_bad_items must be 0 or more, got {max_bad_items}")
        self.max_bad_items = max_bad_items
        self.files: dict[str, str] = {}  # path -> the first message about it
        self.skipped = 0  # replaced draws

    def update(self, encoded: Sequence[str]) -> None:
        """Count the :data:`UNREADABLE_KEY` values of a batch; report each new file once."""
        for text in encoded:
            for path, message in json.loads(text):
                self.skipped += 1
                if path not in self.files:
                    self.files[path] = message
                    log.warning(
                        "unreadable training file, its items are replaced by other draws "
                        "(data.on_bad_item=skip; %d of at most %d files so far): %s",
                        len(self.files),
                        self.max_bad_items,
                        message,
                    )

    @property
    def exceeded(self) -> bool:
        return len(self.files) > self.max_bad_items

    def error(self) -> TooManyBadItemsError:
        """The error that stops the run, listing the files."""
        listing = "\n".join(f"  {message}" for message in list(self.files.values())[:20])
        more = f"\n  ... and {len(self.files) - 20} more" if len(self.files) > 20 else ""
        first = next(iter(self.files), None)
        return TooManyBadItemsError(
            f"{len(self.files)} training files could not be read, more than "
            f"data.max_bad_items={self.max_bad_items} ({self.skipped} items were replaced "
            f"by other draws):\n{listing}{more}\n`relight-data check <data.root>` lists every "
            "problem of the folder at once; fix or remove these files, or raise "
            "data.max_bad_items, and rerun the same command: it resumes.",
            first,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"files": dict(self.files), "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.files = dict(state.get("files", {}))
        self.skipped = int(state.get("skipped", 0))
