"""Where relight finds its Hydra configs, installed or run from a clone."""

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


def use_working_directory() -> None:
    """What the Hydra console scripts do first: data and logs go under ``RELIGHT_ROOT``,
    by default the working directory (never site-packages), and modules there are
    importable (a user's own ``_target_`` classes), as with ``python -m relight.train``."""
    cwd = os.getcwd()
    os.environ.setdefault("RELIGHT_ROOT", cwd)
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
