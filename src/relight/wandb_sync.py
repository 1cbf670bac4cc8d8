"""Offline W&B runs: find those of a sweep (or of every run under ``logs/``) and upload them
with ``wandb sync`` (``relight-wandb sync``, ``make wandb-sync``).

Runs log offline by default (no account, no network); each keeps its datastore in
``<run folder>/wandb/offline-run-*``, where ``wandb sync`` finds what to upload.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse


def unreachable_wandb_server() -> str | None:
    """The W&B server's host name when it cannot be reached within seconds, else ``None``
    (``WANDB_BASE_URL``, default W&B's cloud)."""
    import wandb

    from relight.models.weights import host_reachable  # not at import: timm is slow to load

    url = os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    return None if host_reachable(host, port) else host


def offline_runs(folder: str | os.PathLike[str]) -> list[Path]:
    """Every offline W&B run under ``folder`` (a sweep, a run, or ``logs/``): the
    ``wandb/offline-run-*`` folders that hold a ``run-*.wandb`` datastore, by path."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    return sorted(
        run
        for run in root.glob("**/wandb/offline-run-*")
        if run.is_dir() and any(run.glob("run-*.wandb"))
    )


def is_synced(run: Path) -> bool:
    """Whether ``wandb sync`` uploaded this run already (it leaves ``run-*.wandb.synced``)."""
    return any(run.glob("run-*.wandb.synced"))


def sync_command(runs: Sequence[Path]) -> list[str]:
    """``wandb sync RUN...`` with this Python's wandb (it skips runs uploaded before)."""
    return [sys.executable, "-m", "wandb", "sync", *map(str, runs)]


def sync_offline_runs(runs: Sequence[Path]) -> int:
    """Upload ``runs`` with ``wandb sync``; returns its exit status. Raises
    ``ConnectionError`` within seconds when the W&B server cannot be reached (instead of
    wandb's minutes of retries)."""
    host = unreachable_wandb_server()
    if host is not None:
        raise ConnectionError(
            f"the W&B server {host} cannot be reached: nothing uploaded. The runs stay "
            "offline on disk; sync again when it can be reached (or fix the network/"
            "WANDB_BASE_URL)."
        )
    return subprocess.run(sync_command(runs), check=False).returncode
