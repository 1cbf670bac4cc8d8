"""Package exports imported on first use (PEP 562 ``__getattr__``).

``relight.data`` and ``relight.checkpoints`` export a few classes built on Lightning, whose
import takes seconds; the data tools and ``relight-predict`` never need them, so those
packages import them only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that imports each name in ``exports``
    (name -> module) when it is first looked up; other names raise AttributeError."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
