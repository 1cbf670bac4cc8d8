"""``relight-report SWEEP_DIR``: a sweep's ablation table and chart (:mod:`relight.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relight import report
from relight.cli.errors import Parser, console_script
from relight.report import write_report


@console_script("relight-report")
def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-report``."""
    parser = Parser(
        prog="relight-report",
        description=report.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sweep_dir", type=Path, help="a multirun folder (logs/train/multiruns/<time>)"
    )
    parser.add_argument("--output", type=Path, help="where to write (default: the sweep folder)")
    args = parser.parse_args(argv)
    write_report(args.sweep_dir, args.output)
    out = args.output or args.sweep_dir
    print((out / "ablation.md").read_text())
    print(f"\nwritten: {out / 'ablation.md'}, {out / 'ablation.csv'}, {out / 'ablation.png'}")


if __name__ == "__main__":
    main()
