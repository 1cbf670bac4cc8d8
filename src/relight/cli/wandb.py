"""``relight-wandb``: commands on the W&B runs of relight (the work is done in
:mod:`relight.wandb_sync`).

``relight-wandb sync [FOLDER]`` uploads every offline W&B run under FOLDER (a sweep,
``logs/train/multiruns/<time>``, or one run folder; default ``logs``) with ``wandb sync``,
naming each run first; runs uploaded before are skipped. ``--dry-run`` only lists them and
prints the ``wandb sync`` command it would run.
Exit status: wandb's (0 when everything was uploaded), 1 when the W&B server cannot be
reached, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from relight.cli.errors import Parser, console_script, fail
from relight.wandb_sync import is_synced, offline_runs, sync_command, sync_offline_runs

PROG = "relight-wandb"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sync = commands.add_parser(
        "sync",
        help="upload the offline W&B runs of a sweep (or of every run under logs/)",
        description="Upload every offline W&B run under FOLDER with `wandb sync`.",
    )
    sync.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path("logs"),
        metavar="FOLDER",
        help="a sweep (logs/train/multiruns/<time>), a run folder, or logs (the default)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="list the runs and the wandb command; upload nothing"
    )
    return parser


@console_script(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``relight-wandb``; returns (and exits with) the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"no such folder: {args.folder}")
    runs = offline_runs(args.folder)
    if not runs:
        print(
            f"no offline W&B runs under {args.folder}: runs log to W&B with logger=wandb or "
            "logger=many (the ablation sweeps do), offline unless logger.wandb.offline=false"
        )
        return 0
    print(f"{len(runs)} offline W&B run(s) under {args.folder}:")
    for run in runs:
        print(f"  {run}" + ("  (uploaded before: skipped)" if is_synced(run) else ""))
    if args.dry_run:
        print(f"would run: {shlex.join(sync_command(runs))}")
        return 0
    status = sync_offline_runs(runs)  # ConnectionError: one line, exit status 1
    if status:
        fail(PROG, f"wandb sync failed (exit status {status})", status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
