"""Read the history of an offline W&B run from its ``run-*.wandb`` file (test helper).

The file is a LevelDB-style log: a 7-byte header (":W&B", magic, version), then 32 KiB
blocks of records ``crc32 (4) | length (2) | type (1) | payload``, where the payloads
(joined across FIRST/MIDDLE/LAST pieces) are protobuf ``Record`` messages.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

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


def history(path: Path) -> list[dict[str, object]]:
    """Every logged history row (key -> value) of the run, in order."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for payload in payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows
