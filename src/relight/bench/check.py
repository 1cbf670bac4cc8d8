"""``relight-data check`` throughput: files/s, in all and per worker process, for each
worker count, on a given data folder or on a synthetic VIDIT-layout folder of 1024² PNGs
(about the size of VIDIT's renders, see :func:`relight.bench.data.write_bench_vidit`)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from relight.bench.data import write_bench_vidit
from relight.data.check import check_folders, find_folders


def check(args: argparse.Namespace) -> list[dict[str, object]]:
    """One record per worker count (the best of ``args.repeats`` runs)."""
    with tempfile.TemporaryDirectory(prefix="relight-bench-check-") as tmp:
        if args.dir is None:
            root = Path(tmp) / "train"
            write_bench_vidit(root, args.source_size, args.scenes, args.lightings)
        else:
            root = args.dir
        folders = find_folders(root)
        check_folders(folders, workers=0, progress=False)  # warm the page cache
        records = []
        for workers in args.workers:
            runs = [check_folders(folders, workers, progress=False) for _ in range(args.repeats)]
            best = min(runs, key=lambda report: report.seconds)
            record = {
                "bench": "check",
                "folder": str(args.dir) if args.dir else f"synthetic {args.source_size}²",
                "files": best.files,
                "mb": round(best.bytes / 1e6, 1),
                "workers": workers,
                "seconds": round(best.seconds, 6),
                "files_per_s": round(best.files_per_second, 1),
                "files_per_s_per_worker": round(best.files_per_second / max(workers, 1), 1),
                "problems": len(best.problems),
            }
            print(json.dumps(record), flush=True)
            records.append(record)
    return records
