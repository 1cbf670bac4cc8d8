"""Reading images and depth maps as VIDIT stores them (and as users bring them).

Images: PNG, JPEG (or any format PIL reads) in RGBA, RGB, greyscale (L, I;16, I), palette
or 16-bit -> float32 RGB tensor (3, H, W) in [0, 1]; alpha is dropped (VIDIT's is constant).
16-bit greyscale keeps its precision; 16-bit colour PNGs are reduced to 8 bits by PIL. A
32-bit integer image (mode ``I``) is always read as 16-bit (``value / 65535``, whatever
its own maximum); a value outside 0..65535 is an error. An
EXIF orientation tag (a phone photo taken upright) is applied: the image is returned as
it is displayed, and :func:`image_size` reports that size.

Depth: ``.npy`` as VIDIT's pickled dict (key ``normalized_depth``) or a plain 2-D array,
or an 8/16-bit greyscale image (scaled to [0, 1]; mode ``I`` as 16-bit, as for images) or
a 32-bit float image such as a float TIFF (used as stored, like a ``.npy``) -> float32
tensor (H, W).
:func:`write_depth` writes a map back in either form (plain ``.npy`` or 16-bit PNG).

Security: VIDIT's dict ``.npy`` files are pickles, and unpickling runs code from the file.
Plain arrays are always read with ``allow_pickle=False``; a pickled file is unpickled only
when ``allow_pickle=True`` (the default, needed for VIDIT) — set it to ``False`` for files
from an untrusted source, and such a file is then refused with a clear error.

Every failure is a :class:`DataFormatError` naming the file and what is wrong.
"""

from __future__ import annotations

import os
import tokenize
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from relight.files import atomic_write

DEPTH_KEY = "normalized_depth"
NPY_MAGIC = b"\x93NUMPY"
PathLike = str | os.PathLike[str]


#: What :class:`DataFormatError` ``reason`` says about a file.
REASONS = ("missing", "empty", "unreadable", "truncated", "mode", "bad_depth", "invalid")


class DataFormatError(ValueError):
    """A data file is missing, unreadable or not what relight expects; the message names it.

    ``path`` is the file to blame (when there is one) and ``reason`` one of :data:`REASONS`:
    ``missing``, ``empty`` (0 bytes or an empty array), ``unreadable`` (not an image or not
    a ``.npy``), ``truncated`` (cut short or corrupt), ``mode`` (an image mode relight
    cannot use), ``bad_depth`` (not a finite 2-D depth map) or ``invalid`` (anything else).
    """

    def __init__(self, message: str, path: PathLike | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.reason = reason

    def __reduce__(self) -> tuple:  # keep path and reason across processes
        return type(self), (str(self), self.path, self.reason)


#: Image modes :func:`read_image` turns into RGB.
READABLE_MODES = {
    "RGB",
    "RGBA",
    "L",
    "LA",
    "P",
    "PA",
    "1",
    "CMYK",
    "YCbCr",
    "I;16",
    "I;16B",
    "I;16L",
    "I",
}


#: The scale of a mode ``I`` (32-bit integer) image: read as 16-bit, whatever its values.
INT_IMAGE_MAX = 65535


def _int_grey(grey: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """The pixels of a 16-bit or mode ``I`` greyscale image as float32 in [0, 1] (``value /
    65535``); a mode ``I`` value outside 0..65535 is a :class:`DataFormatError`."""
    if mode == "I" and grey.size and (grey.min() < 0 or grey.max() > INT_IMAGE_MAX):
        raise DataFormatError(
            f"{path}: 32-bit integer (mode 'I') values must be in 0..{INT_IMAGE_MAX} (read as "
            f"16-bit, value / {INT_IMAGE_MAX}); got {grey.min()}..{grey.max()}",
            path,
            "mode",
        )
    return grey.astype(np.float32) / INT_IMAGE_MAX


def _to_float_rgb(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        grey = _int_grey(np.asarray(image), image.mode, path)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def check_file(path: Path, what: str) -> None:
    """Raise :class:`DataFormatError` when ``path`` is missing or empty (0 bytes)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: {what} file not found", path, "missing")
    if path.stat().st_size == 0:
        raise DataFormatError(
            f"{path}: empty {what} file (0 bytes; an interrupted download or copy?)", path, "empty"
        )


def open_image(path: PathLike, verify: bool = False) -> Image.Image:
    """The decoded PIL image of ``path`` (pixels loaded, any mode), or a
    :class:`DataFormatError`. ``verify`` also checks every chunk's checksum first (PNG),
    which catches corrupt bytes that still decode."""
    path = Path(path)
    check_file(path, "image")
    try:
        if verify:
            with Image.open(path) as image:
                image.verify()
        image = Image.open(path)
        try:
            image.load()
        except BaseException:
            image.close()
            raise
    except UnidentifiedImageError as error:
        raise DataFormatError(
            f"{path}: not an image file PIL can read", path, "unreadable"
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise DataFormatError(
            f"{path}: corrupt or truncated image ({error})", path, "truncated"
        ) from error
    if image.mode == "F":
        image.close()
        raise DataFormatError(
            f"{path}: 32-bit float images are not supported as RGB input", path, "mode"
        )
    if image.mode not in READABLE_MODES:
        image.close()
        raise DataFormatError(f"{path}: unsupported image mode '{image.mode}'", path, "mode")
    return image


def read_image(path: PathLike) -> torch.Tensor:
    """Read an image file as float32 RGB (3, H, W) in [0, 1]."""
    path = Path(path)
    with open_image(path) as image:
        ImageOps.exif_transpose(image, in_place=True)  # a photo as it is shown
        array = _to_float_rgb(image, path)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _swaps_axes(image: Image.Image) -> bool:
    """Whether the EXIF orientation in the header turns the image by 90 degrees."""
    raw = image.info.get("exif")
    if not raw:
        return False
    exif = Image.Exif()
    exif.load(raw)
    return exif.get(ExifTags.Base.Orientation) in {5, 6, 7, 8}


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of an image as :func:`read_image` returns it, from its header only."""
    path = Path(path)
    check_file(path, "image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if _swaps_axes(image):
                width, height = height, width
    except (OSError, SyntaxError, UnidentifiedImageError) as error:
        raise DataFormatError(
            f"{path}: not an image file PIL can read ({error})", path, "unreadable"
        ) from error
    return height, width


def _check_depth_array(array: object, path: Path) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        shape = getattr(array, "shape", type(array).__name__)
        raise DataFormatError(
            f"{path}: depth must be a 2-D array (H, W); got {shape}", path, "bad_depth"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataFormatError(
            f"{path}: depth has non-numeric dtype {array.dtype}", path, "bad_depth"
        )
    if array.size == 0:
        raise DataFormatError(f"{path}: depth array is empty (shape {array.shape})", path, "empty")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise DataFormatError(f"{path}: depth has {bad} NaN or infinite values", path, "bad_depth")
    return array


def _load_plain_npy(path: Path, **kwargs: object) -> np.ndarray:
    """``np.load(path, allow_pickle=False)``; a damaged header (a brace or quote lost makes
    numpy's parser raise tokenize or syntax errors) is a :class:`DataFormatError`."""
    try:
        return np.load(path, allow_pickle=False, **kwargs)
    except (tokenize.TokenError, SyntaxError) as error:
        raise DataFormatError(
            f"{path}: truncated or damaged .npy header ({error})", path, "truncated"
        ) from error


def _load_npy(path: Path, allow_pickle: bool) -> object:
    with open(path, "rb") as handle:
        head = handle.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise DataFormatError(
            f"{path}: not a .npy file (it starts with {head!r}, not {NPY_MAGIC!r})",
            path,
            "unreadable",
        )
    try:
        return _load_plain_npy(path)
    except DataFormatError:
        raise
    except ValueError as error:
        if "pickle" not in str(error).lower():
            raise DataFormatError(
                f"{path}: not a readable .npy file ({error})", path, "truncated"
            ) from error
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFormatError(
            f"{path}: not a readable .npy file ({error})", path, "truncated"
        ) from error
    if not allow_pickle:
        raise DataFormatError(
            f"{path}: this .npy holds a pickled object (VIDIT's dict format), and loading "
            "pickles is disabled (allow_pickle=false). Unpickling runs code from the file: "
            "enable it only for files you trust, or convert the depth to a plain 2-D array.",
            path,
            "bad_depth",
        )
    try:
        loaded = np.load(path, allow_pickle=True)
    except Exception as error:  # a broken pickle raises many types
        raise DataFormatError(
            f"{path}: corrupt or truncated pickled .npy ({error})", path, "truncated"
        ) from error
    if isinstance(loaded, np.ndarray) and loaded.dtype == object and loaded.ndim == 0:
        loaded = loaded.item()
    if isinstance(loaded, dict):
        if DEPTH_KEY not in loaded:
            raise DataFormatError(
                f"{path}: depth dict has no '{DEPTH_KEY}' key (keys: {sorted(map(str, loaded))})",
                path,
                "bad_depth",
            )
        return np.asarray(loaded[DEPTH_KEY])
    return loaded


def read_depth(path: PathLike, allow_pickle: bool = True) -> torch.Tensor:
    """Read a depth map (VIDIT dict ``.npy``, plain ``.npy``, 8/16-bit PNG or float image)
    as float32 (H, W)."""
    path = Path(path)
    check_file(path, "depth")
    if path.suffix.lower() == ".npy":
        array = _check_depth_array(_load_npy(path, allow_pickle), path)
    else:
        try:
            with Image.open(path) as image:
                image.load()
                mode = image.mode
                if mode == "P":  # a palette of greys (indices are not depth): its grey values
                    colours = np.asarray(image.convert("RGB"))
                    mode = "RGB (palette)" if np.ptp(colours, axis=-1).any() else "L"
                    array = colours if mode != "L" else colours[..., 0]
                else:
                    array = np.asarray(image)
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
            reason = "unreadable" if isinstance(error, UnidentifiedImageError) else "truncated"
            raise DataFormatError(
                f"{path}: corrupt or unreadable depth image ({error})", path, reason
            ) from error
        if array.ndim == 3:
            raise DataFormatError(
                f"{path}: depth image must be greyscale, got mode '{mode}'", path, "bad_depth"
            )
        if mode.startswith("I"):  # 16-bit, or 32-bit integer read as 16-bit
            array = _int_grey(array, mode, path)
        elif mode == "F":  # a float image is used as stored, like a .npy
            array = array.astype(np.float32)
        else:  # 8-bit
            array = array.astype(np.float32) / 255.0
        array = _check_depth_array(array, path)
    return torch.from_numpy(np.ascontiguousarray(array))


def depth_shape(path: PathLike, allow_pickle: bool = True) -> tuple[int, int]:
    """(height, width) of a depth file (header only for plain ``.npy`` and PNG)."""
    path = Path(path)
    check_file(path, "depth")
    if path.suffix.lower() == ".npy":
        try:
            array = _load_plain_npy(path, mmap_mode="r")
        except DataFormatError:
            raise
        except ValueError:
            return tuple(read_depth(path, allow_pickle).shape)  # pickled dict
        except (OSError, EOFError) as error:
            raise DataFormatError(
                f"{path}: not a readable .npy file ({error})", path, "truncated"
            ) from error
        if array.ndim != 2:
            raise DataFormatError(
                f"{path}: depth must be a 2-D array (H, W); got {array.shape}", path, "bad_depth"
            )
        return int(array.shape[0]), int(array.shape[1])
    return image_size(path)


def write_depth(depth: torch.Tensor | np.ndarray, path: PathLike) -> Path:
    """Write an (H, W) depth map atomically so that :func:`read_depth` reads it back: a
    ``.npy`` plain float32 array (exact), or a ``.png`` 16-bit greyscale PNG of values in
    [0, 1] (``round(value * 65535)``, for viewing; read back within 1/131070)."""
    path = Path(path)
    array = np.asarray(depth.detach().cpu() if torch.is_tensor(depth) else depth, np.float32)
    if array.ndim != 2:
        raise ValueError(f"{path}: a depth map is (H, W); got shape {array.shape}")
    if path.suffix.lower() == ".npy":

        def write(tmp: Path) -> None:
            with tmp.open("wb") as file:
                np.save(file, array, allow_pickle=False)

        return atomic_write(path, write)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: depth maps are written as .npy or .png")
    if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        raise ValueError(f"{path}: a depth PNG holds values in [0, 1]")
    pixels = Image.fromarray(np.round(array * 65535).astype(np.uint16))
    return atomic_write(path, lambda tmp: pixels.save(tmp, format="PNG"))
