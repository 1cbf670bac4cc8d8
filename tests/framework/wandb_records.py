"""Read an offline W&B run from its ``run-*.wandb`` file (test helper): its history, its
run settings (group, name, job type, tags) and config, and the tables it logged.

The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB
blocks of records ``crc32 (4) | length (2) | type (1) | payload``, where the payloads
(joined across FIRST/MIDDLE/LAST pieces) are protobuf ``Record`` messages.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def payloads(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B datastore file"
    out, pending, offset = [], b"", HEADER
    while offset + 7 <= len(data):
        block_left = BLOCK - (offset % BLOCK)
        if block_left < 7:  # zero padding at the end of a block
            offset += block_left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        if length == 0 and kind == 0:
            offset += block_left
            continue
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
    return out


def records(path: Path) -> Iterator[tuple[str, Any]]:
    """Every protobuf ``Record`` of the run with its kind (``run``, ``config``, ``history``...)."""
    from wandb.proto import wandb_internal_pb2

    for payload in payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind is not None:
            yield kind, getattr(record, kind)


def key_of(entry: Any) -> str:
    """A history/config item's key, nested keys joined by ``/``."""
    return entry.key or "/".join(entry.nested_key)


def items(entries: Any) -> dict[str, Any]:
    """Key -> decoded value of history/config items."""
    return {key_of(e): json.loads(e.value_json) for e in entries}


def history(path: Path) -> list[dict[str, object]]:
    """Every logged history row (key -> value) of the run, in order."""
    return [items(record.item) for kind, record in records(path) if kind == "history"]


@dataclass
class RunSettings:
    """What W&B's run table shows of a run besides its metrics."""

    run_id: str
    group: str
    name: str
    job_type: str
    tags: list[str]
    config: dict[str, Any]


def run_settings(path: Path) -> RunSettings:
    """The run's settings and its config (``wandb.init``'s, then every update) as W&B has it."""
    found: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for kind, record in records(path):
        if kind == "run":
            found = {
                "run_id": record.run_id,
                "group": record.run_group,
                "name": record.display_name,
                "job_type": record.job_type,
                "tags": list(record.tags),
            }
        if kind in ("run", "config"):
            updates = record.config if kind == "run" else record
            config.update(items(updates.update))
            for removed in updates.remove:
                config.pop(key_of(removed), None)
    assert found, f"{path} has no run record"
    return RunSettings(**found, config=config)


def datastore(run_dir: Path) -> Path:
    """The ``run-*.wandb`` file of an ``offline-run-*`` folder."""
    (path,) = run_dir.glob("run-*.wandb")
    return path


def logged_table(run_dir: Path, key: str) -> dict[str, list]:
    """The ``wandb.Table`` logged once under ``key`` by the run of ``run_dir`` (an
    ``offline-run-*`` folder): ``{"columns": [...], "data": [[...], ...]}``."""
    rows = [r for r in history(datastore(run_dir)) if r.get(f"{key}/_type") == "table-file"]
    assert len(rows) == 1, f"{key}: logged {len(rows)} times"
    table = json.loads((run_dir / "files" / rows[0][f"{key}/path"]).read_text())
    return {"columns": table["columns"], "data": table["data"]}
