"""Where relight finds its Hydra configs (installed or in a clone) and where its data and
logs go (the project root)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The configs inside an installed wheel (copied there from ``conf/`` by ``setup.py``).
PACKAGED_CONF = Path(__file__).resolve().parent / "conf"
#: The configs of a source checkout (editable install, or ``src/`` on ``PYTHONPATH``).
SOURCE_CONF = Path(__file__).resolve().parents[2] / "conf"


def config_dir() -> Path:
    """The folder holding ``train.yaml`` and the config groups: the wheel's copy when
    relight is installed, the repository's ``conf/`` when it runs from a checkout."""
    for folder in (PACKAGED_CONF, SOURCE_CONF):
        if (folder / "train.yaml").is_file():
            return folder
    raise FileNotFoundError(
        f"relight's configs are missing: neither {PACKAGED_CONF} (an installed wheel) nor "
        f"{SOURCE_CONF} (a source checkout) holds train.yaml. Reinstall relight "
        "(pip install relight, or pip install -e . in a clone)."
    )


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Where data (``data/``) and logs (``logs/``) go: ``RELIGHT_ROOT`` when it is set; else
    the root of the relight clone that ``start`` (default: the working directory) is in,
    from any of its subfolders; else ``start`` itself (an installed package)."""
    if os.environ.get("RELIGHT_ROOT"):
        return Path(os.environ["RELIGHT_ROOT"]).expanduser().resolve()
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if is_clone(folder):
            return folder
    return here


def is_clone(folder: Path) -> bool:
    """Whether ``folder`` is the root of a relight source checkout."""
    return (folder / "conf" / "train.yaml").is_file() and (folder / "src" / "relight").is_dir()


def use_project_root() -> None:
    """What the Hydra console scripts do first: set ``RELIGHT_ROOT`` to
    :func:`project_root` (``paths.root_dir`` reads it) and make modules in the working
    directory importable (a user's own ``_target_`` classes), as with ``python -m``."""
    os.environ["RELIGHT_ROOT"] = str(project_root())
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
