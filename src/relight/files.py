"""Output files: written atomically (a temporary file in the same folder, then a rename),
into folders checked to be writable before any work starts. A write that fails for lack
of space (a full disk or quota) is an :class:`OutOfSpaceError` naming the folder and the
space needed, and leaves the files already there as they were."""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
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


class OutOfSpaceError(OSError):
    """A write failed because its disk (or a quota) is full: ``folder`` is where, ``needed``
    the bytes it needs (``None`` when unknown), ``free`` the bytes free there."""

    def __init__(
        self, message: str, folder: str | os.PathLike[str], needed: int | None, free: int
    ) -> None:
        super().__init__(errno.ENOSPC, message)
        self.folder, self.needed, self.free = Path(folder), needed, free

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.folder, self.needed, self.free)

    def shortfall(self) -> str:
        """How much to free: ``"at least N MB"``, or ``"space"`` when the need is unknown
        or the disk shows enough (a quota is full, not the disk)."""
        if self.needed is None or self.needed <= self.free:
            return "space"
        return f"at least {byte_size(self.needed - self.free)}"


#: ``errno`` values of a full disk and of an exceeded quota.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _is_out_of_space(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from (``torch.save`` turns the
    ``OSError`` of its file into a ``RuntimeError``), says the disk or quota is full."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def byte_size(nbytes: float) -> str:
    """``nbytes`` for people: ``"4.1 kB"``, ``"49.8 MB"``, ``"12.3 GB"``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def free_space(folder: str | os.PathLike[str]) -> int:
    """Bytes free for this user in ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def require_free_space(folder: str | os.PathLike[str], needed: int, what: str) -> None:
    """Raise :class:`OutOfSpaceError` before writing ``what`` when ``folder`` has less
    than ``needed`` bytes free."""
    free = free_space(folder)
    if free < needed:
        raise OutOfSpaceError(
            f"not enough space in {folder} for {what}: it needs about {byte_size(needed)}, "
            f"{byte_size(free)} are free; free {byte_size(needed - free)} or more there, or "
            "choose another folder",
            folder,
            needed,
            free,
        )


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], None], size_hint: int | None = None
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``:
    readers see the old file or the whole new one, and a failure leaves nothing behind.
    ``size_hint``: the bytes the file will need, for the message of a full disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except Exception as error:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        free = free_space(path.parent)
        if not _is_out_of_space(error) and (size_hint is None or free >= size_hint):
            raise
        needed = f"about {byte_size(size_hint)}" if size_hint else f"more than {byte_size(written)}"
        raise OutOfSpaceError(
            f"no space left in {path.parent} (disk or quota full) while writing {path.name}: "
            f"it needs {needed}, {byte_size(free)} are free. Nothing was replaced: the files "
            "already there are intact and the partial file was removed.",
            path.parent,
            size_hint,
            free,
        ) from error
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


def link(target: Path, link_path: Path) -> None:
    """Point ``link_path`` at ``target`` (a relative symlink), replacing it atomically."""
    link_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = link_path.with_name(f".{link_path.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, link_path.parent))
    os.replace(tmp, link_path)
