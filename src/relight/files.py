"""Output files: written atomically (a temporary file in the same folder, then a rename),
into folders checked to be writable before any work starts."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path


class OutputNotWritableError(PermissionError):
    """An output folder cannot be created or written to."""


def ensure_writable_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``path`` if needed and check a file can be written there, or raise
    :class:`OutputNotWritableError` naming it (before hours of work, not after)."""
    path = Path(path)
    probe = path / f".write-test-{uuid.uuid4().hex}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputNotWritableError(
            f"{what} {path} is not writable ({error.strerror or error}); choose another one"
        ) from error
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``:
    readers see the old file or the whole new one, and a failure leaves nothing behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv_atomic(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    """Write a CSV file atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())
