"""``relight-data``: commands on data folders (the work is done in :mod:`relight.data.check`).

``relight-data check DIR [DIR ...]`` decodes every image and depth map of track-2 train
folders and pairs folders (or of a folder holding them, like the mini-VIDIT or an unpacked
VIDIT download) in worker processes and lists every problem at once. Exit status: 0 when
the data is clean, 1 when anything is wrong, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from relight.cli.errors import Parser, console_script
from relight.data.check import KINDS, available_cpus, check_folders, find_folders
from relight.data.formats import DataFormatError
from relight.files import OutputNotWritableError, ensure_writable_dir, write_text_atomic

LAYOUT_NAMES = {"train": "track-2 train folder", "pairs": "pairs folder"}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="relight-data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kinds = "\n".join(
        f"  {kind:<18} ({severity}) {text}" for kind, (severity, text) in KINDS.items()
    )
    check = commands.add_parser(
        "check",
        help="decode every file of a data folder and list every problem",
        description="Decode every image and depth map and list every problem at once.\n\n"
        f"Problems:\n{kinds}\n\nExit status: 0 clean, 1 problems found, 2 usage error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="a track-2 train folder, a pairs folder, or a folder holding them",
    )
    check.add_argument(
        "--gt-dir", type=Path, help="ground truth of a pairs folder, when not DIR/target"
    )
    check.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    check.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"decoding processes (default: one per CPU, here {available_cpus()}; 0: none)",
    )
    check.add_argument(
        "--no-pickle",
        action="store_true",
        help="refuse pickled .npy depth files (VIDIT's dict format; unpickling runs code)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@console_script("relight-data")
def main(argv: list[str] | None = None) -> int:
    """Run ``relight-data``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    try:
        folders = [folder for path in args.dirs for folder in find_folders(path, args.gt_dir)]
        if args.json is not None:
            ensure_writable_dir(args.json.parent, "folder of --json")
    except (DataFormatError, OutputNotWritableError) as error:
        parser.error(str(error))
    for folder in folders:
        truth = f", ground truth in {folder.gt_dir}" if folder.gt_dir else ""
        print(f"{folder.root}: {LAYOUT_NAMES[folder.layout]}{truth}", flush=True)
    report = check_folders(folders, args.workers, not args.no_pickle, progress=not args.quiet)
    if report.problems:
        print(report.listing())
    print(report.summary())
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(report.as_dict(), indent=2) + "\n")
        print(f"report: {args.json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
