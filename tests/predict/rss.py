"""Peak resident memory of a block of code, relative to its start (Linux ``/proc``)."""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss_mib() -> float:
    """This process's resident memory now, in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class PeakRSS:
    """``with PeakRSS() as peak: ...`` then ``peak.increase`` (MiB above the start).

    A thread samples the resident memory every millisecond (torch releases the GIL in its
    kernels); unlike ``ru_maxrss`` this is not hidden by an earlier high-water mark.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.start = self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_mib())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = current_rss_mib()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss_mib())

    @property
    def increase(self) -> float:
        return self.peak - self.start
