"""Opt-in cache of decoded, resized data: uint8 RGB images and float16 depth maps.

Decoding three 1024² PNGs per item is the bottleneck of a GPU run. The cache decodes and
resizes every file of a dataset once into two memory-mapped ``.npy`` arrays (one for
images, one for depth) in ``cache_dir/<key>/``, where the key hashes the image size,
``allow_pickle`` (when false) and each source file's name, byte size and modification
time: a changed file, another size or refused pickles is another cache. Arrays are
written to a temporary folder and renamed into place, so a crash never leaves a half
cache. Reads are memory-mapped, cheap in every worker.

Precision: images are stored as 8-bit (a 16-bit PNG loses its low bits), depth as float16
(relative error below 5e-4 on [0, 1]).

Building reads every file, so it reports every unreadable one at once; with
``tolerate_unreadable`` (``data.on_bad_item=skip``) their rows stay empty, the index keeps
their errors, and reading them raises the same :class:`DataFormatError` as the file would.
Such a cache opened again without ``tolerate_unreadable`` reports them as building did.
The free space the arrays need is checked before writing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from relight.data.formats import DataFormatError, read_depth, read_image
from relight.data.transforms import resize_depth, resize_image
from relight.files import require_free_space


class FileReader:
    """Decodes each file on every access (no cache)."""

    def __init__(self, image_size: int | None, allow_pickle: bool = True) -> None:
        self.image_size, self.allow_pickle = image_size, allow_pickle

    def image(self, path: Path) -> torch.Tensor:
        """(3, S, S) float32 RGB in [0, 1]."""
        return resize_image(read_image(path), self.image_size)

    def depth(self, path: Path) -> torch.Tensor:
        """(1, S, S) float32 depth."""
        return resize_depth(read_depth(path, self.allow_pickle), self.image_size)[None]


def cache_key(
    images: Sequence[Path],
    depths: Sequence[Path],
    image_size: int | None,
    allow_pickle: bool = True,
) -> str:
    """Hash of the size, ``allow_pickle`` and every source file's name, byte size and mtime
    (``allow_pickle=True`` adds nothing: the keys of caches built before it stay valid)."""
    pickles = "" if allow_pickle else ";no-pickle"
    digest = hashlib.sha1(f"size={image_size}{pickles};v1".encode())
    for path in [*images, *depths]:
        stat = Path(path).stat()
        digest.update(f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def _refuse_unreadable(unreadable: dict[Path, tuple[str, str]]) -> None:
    """Raise one :class:`DataFormatError` listing every unreadable file (path -> message,
    reason)."""
    listing = "\n".join(f"  {message}" for message, _ in unreadable.values())
    path, (_, reason) = next(iter(unreadable.items()))
    raise DataFormatError(
        f"{len(unreadable)} files cannot be read (the cache reads every file):\n{listing}\n"
        "Fix or remove them, or set data.on_bad_item=skip to train without them",
        path,
        reason,
    )


class CachedReader:
    """Reads from a cache built by :meth:`build` (or reuses an existing one)."""

    def __init__(self, folder: Path, compact: bool = False) -> None:
        self.folder, self.compact = folder, compact
        index = json.loads((folder / "index.json").read_text())
        self.image_rows = {Path(p): i for i, p in enumerate(index["images"])}
        self.depth_rows = {Path(p): i for i, p in enumerate(index["depths"])}
        self.unreadable = {Path(p): tuple(e) for p, e in index.get("unreadable", {}).items()}
        self._images: np.ndarray | None = None
        self._depths: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        cache_dir: str | os.PathLike[str],
        images: Sequence[Path],
        depths: Sequence[Path],
        image_size: int | None,
        allow_pickle: bool = True,
        progress: bool = True,
        compact: bool = False,
        tolerate_unreadable: bool = False,
    ) -> CachedReader:
        """Open the cache of these files at this size, decoding them first if needed.
        ``compact``: read items as stored (see :mod:`relight.data.transport`).
        An unreadable file is a :class:`DataFormatError` listing every unreadable file,
        or, with ``tolerate_unreadable``, a row that raises its error when read."""
        # resolved paths: the same files reached through another path still match
        images = sorted({Path(p).resolve() for p in images})
        depths = sorted({Path(p).resolve() for p in depths})
        folder = Path(cache_dir) / cache_key(images, depths, image_size, allow_pickle)
        if (folder / "index.json").is_file():
            cached = cls(folder, compact)
            if cached.unreadable and not tolerate_unreadable:  # built under skip
                _refuse_unreadable(cached.unreadable)
            return cached
        reader = FileReader(image_size, allow_pickle)
        folder.parent.mkdir(parents=True, exist_ok=True)
        unreadable: dict[Path, DataFormatError] = {}

        def decode(read, path: Path) -> torch.Tensor | None:
            try:
                return read(path)
            except DataFormatError as error:
                unreadable[path] = error
                return None

        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            decoded = (decode(reader.image, p) for p in images)
            first = next((image for image in decoded if image is not None), None)
            if first is None:
                raise DataFormatError(f"none of the {len(images)} images can be read", images[0])
            height, width = first.shape[-2:]
            require_free_space(
                folder.parent,
                (len(images) * 3 + len(depths) * 2) * height * width,
                f"the decoded-data cache ({len(images)} images, {len(depths)} depth maps)",
            )
            image_array = np.lib.format.open_memmap(
                tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(images), height, width, 3)
            )
            for row, path in enumerate(tqdm(images, desc="caching images", disable=not progress)):
                image = decode(reader.image, path)
                if image is None:
                    continue
                if image.shape[-2:] != (height, width):
                    raise ValueError(
                        f"{path}: size {tuple(image.shape[-2:])} differs from {(height, width)}; "
                        "the cache needs one size (set data.image_size)"
                    )
                image_array[row] = (image.permute(1, 2, 0) * 255 + 0.5).clamp(0, 255).byte().numpy()
            image_array.flush()
            depth_array = np.lib.format.open_memmap(
                tmp / "depths.npy", mode="w+", dtype=np.float16, shape=(len(depths), height, width)
            )
            for row, path in enumerate(depths):
                depth = decode(reader.depth, path)
                if depth is not None:
                    depth_array[row] = depth[0].numpy().astype(np.float16)
            depth_array.flush()
            del image_array, depth_array
            if unreadable and not tolerate_unreadable:
                _refuse_unreadable({p: (str(e), e.reason) for p, e in unreadable.items()})
            index = {
                "images": [str(p) for p in images],
                "depths": [str(p) for p in depths],
                "image_size": image_size,
                "unreadable": {str(p): [str(e), e.reason] for p, e in unreadable.items()},
            }
            (tmp / "index.json").write_text(json.dumps(index))
            try:
                os.replace(tmp, folder)
            except OSError:  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(folder, compact)

    def __getstate__(self) -> dict:
        # Workers reopen the memory maps themselves.
        return {**self.__dict__, "_images": None, "_depths": None}

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None or self._depths is None:
            self._images = np.load(self.folder / "images.npy", mmap_mode="r")
            self._depths = np.load(self.folder / "depths.npy", mmap_mode="r")
        return self._images, self._depths

    def image(self, path: Path) -> torch.Tensor:
        """(3, S, S) float32 RGB in [0, 1] (uint8 in [0, 255] when ``compact``)."""
        self._raise_if_unreadable(path)
        images, _ = self._arrays()
        # a contiguous copy out of the read-only map
        array = np.ascontiguousarray(
            images[self.image_rows[Path(path).resolve()]].transpose(2, 0, 1)
        )
        image = torch.from_numpy(array)
        return image if self.compact else image.float().div_(255)

    def depth(self, path: Path) -> torch.Tensor:
        """(1, S, S) float32 depth (float16 when ``compact``)."""
        self._raise_if_unreadable(path)
        _, depths = self._arrays()
        array = np.array(depths[self.depth_rows[Path(path).resolve()]])
        depth = torch.from_numpy(array)[None]
        return depth if self.compact else depth.float()

    def _raise_if_unreadable(self, path: Path) -> None:
        if self.unreadable and (error := self.unreadable.get(Path(path).resolve())):
            message, reason = error
            raise DataFormatError(message, path, reason)
