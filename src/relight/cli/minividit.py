"""``relight-minividit OUT``: render the mini-VIDIT, the embedded default dataset
(:mod:`relight.data.synthetic`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relight.cli.errors import Parser, console_script
from relight.data import synthetic
from relight.data.synthetic import RenderSettings, render_minividit


@console_script("relight-minividit")
def main(argv: list[str] | None = None) -> None:
    """``relight-minividit OUT``: render the mini-VIDIT (the embedded default dataset)."""
    defaults = RenderSettings()
    parser = Parser(
        prog="relight-minividit",
        description=synthetic.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "out", type=Path, help="output folder (train/, validation/, validation_shifted/)"
    )
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--train-scenes", type=int, default=defaults.train_scenes)
    parser.add_argument("--val-scenes", type=int, default=defaults.val_scenes)
    parser.add_argument("--pairs-per-val-scene", type=int, default=defaults.pairs_per_val_scene)
    parser.add_argument(
        "--shifted-scenes",
        type=int,
        default=defaults.shifted_scenes,
        help="scenes of the shifted generator (validation_shifted/); 0: none",
    )
    parser.add_argument(
        "--pairs-per-shifted-scene", type=int, default=defaults.pairs_per_shifted_scene
    )
    parser.add_argument("--spp", type=int, default=defaults.spp)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument(
        "--variant", default=defaults.variant, help="auto, scalar_rgb or llvm_ad_rgb"
    )
    args = parser.parse_args(argv)
    settings = RenderSettings(
        size=args.size,
        train_scenes=args.train_scenes,
        val_scenes=args.val_scenes,
        pairs_per_val_scene=args.pairs_per_val_scene,
        shifted_scenes=args.shifted_scenes,
        pairs_per_shifted_scene=args.pairs_per_shifted_scene,
        spp=args.spp,
        seed=args.seed,
        workers=args.workers,
        variant=args.variant,
    )
    summary = render_minividit(args.out, settings)
    print(
        f"mini-VIDIT in {args.out}: {summary['rendered']} files rendered in {summary['seconds']} s "
        f"({summary['variant']}); contact sheet: {args.out / 'contact_sheet.png'}"
    )


if __name__ == "__main__":
    main()
