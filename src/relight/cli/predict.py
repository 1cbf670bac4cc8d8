"""``relight-predict``: relight your own images with S3Net, one pair or an NTIRE pairs folder.

Single pair (a depth map that is not given is estimated from its image by a monocular
depth model, :mod:`relight.models.monocular_depth`)::

    relight-predict --input photo.jpg --guide guide.jpg --checkpoint best.ckpt --output relit.png
    relight-predict --input scene.png --input-depth scene_depth.png \\
        --guide guide.png --guide-depth guide.npy --checkpoint best.ckpt --output relit.png

Folder (``DIR/input/PairNNN.{png,npy}``, ``DIR/guide/...``, optional ``DIR/target/``)::

    relight-predict --pairs DIR --checkpoint weight.pkl --output OUT [--submission]

writes ``OUT/PairNNN.png`` (missing ``.npy`` depth maps are estimated); with ground truth
also ``OUT/metrics.json`` (PSNR, SSIM, LPIPS, MPS per image and on average, with the
identity baseline); ``--submission`` writes the NTIRE 2021 challenge zip (the images +
``readme.txt``).

The checkpoint may be a ``relight-train`` checkpoint, a ``relight-convert`` state dict or
the authors' ``weight.pkl`` (converted on the fly). Any image size works (padding to a
multiple of 16, tiles or a reduced size above ``--max-pixels``, see
:mod:`relight.any_size`), and depth maps in any convention (see
:mod:`relight.data.depth_conventions`). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from relight.any_size import LARGE_MODES, SizePolicy
from relight.checkpoints import ANY_CHECKPOINT_HELP, describe_checkpoint, net_from_any_checkpoint
from relight.cli.errors import Parser, console_script
from relight.data.depth_conventions import CONVENTIONS, check_depth_range
from relight.data.pairs import PairFiles, index_pairs
from relight.data.photo_pairs import DepthOptions, check_pair_files
from relight.devices import pick_device
from relight.files import ensure_writable_dir
from relight.models import S3Net
from relight.models.execution import BF16_TOLERANCE_TEXT, MODES
from relight.models.monocular_depth import DEFAULT_DEPTH_MODEL
from relight.prediction import PRECISIONS, Predictor, predict_pairs, predict_single

#: ``--submission`` without a path (not a string: argparse would convert it to a Path).
SUBMISSION_IN_OUTPUT = object()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="relight-predict",
        description="Relight images with S3Net: one pair (--input ... --output OUT.png) or an "
        "NTIRE pairs folder (--pairs DIR --output OUT_DIR).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help=ANY_CHECKPOINT_HELP)
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="the relit PNG (single pair) or the output folder (--pairs)",
    )
    one = parser.add_argument_group("single pair")
    one.add_argument("--input", type=Path, help="the image to relight")
    one.add_argument(
        "--input-depth",
        type=Path,
        help="its depth (.npy or greyscale PNG); without it, estimated (--depth-model)",
    )
    one.add_argument("--guide", type=Path, help="an image lit as wanted (resized to the input)")
    one.add_argument("--guide-depth", type=Path, help="the guide's depth; without it, estimated")
    folder = parser.add_argument_group("pairs folder")
    folder.add_argument("--pairs", type=Path, help="DIR with input/, guide/ (and target/)")
    folder.add_argument("--gt-dir", type=Path, help="ground truth elsewhere than DIR/target")
    folder.add_argument(
        "--submission",
        type=Path,
        nargs="?",
        const=SUBMISSION_IN_OUTPUT,
        help="also write the NTIRE challenge zip here (without a path: OUT_DIR/submission.zip)",
    )
    folder.add_argument("--extra-data", action="store_true", help="readme.txt: extra data used")
    folder.add_argument(
        "--description", default="S3Net (relight)", help="readme.txt: other description"
    )
    folder.add_argument(
        "--lpips-weights",
        default="imagenet",
        help="LPIPS AlexNet weights: imagenet (torch hub cache) or a file; "
        "LPIPS and MPS are n/a without them",
    )
    depth = parser.add_argument_group("depth")
    depth.add_argument(
        "--depth-convention",
        choices=CONVENTIONS,
        default="vidit",
        help="vidit: normalized_depth as stored; distance: near = small, any unit; "
        "disparity: near = large (monocular estimators)",
    )
    depth.add_argument(
        "--depth-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="distance/disparity values of the nearest and farthest point (PNG values on a "
        "0..1 scale); default: each map's own range",
    )
    depth.add_argument(
        "--guide-depth-convention",
        choices=CONVENTIONS,
        help="the guide depth's convention when it differs (default: --depth-convention)",
    )
    depth.add_argument(
        "--guide-depth-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="the guide depth's range (with --guide-depth-convention)",
    )
    depth.add_argument(
        "--depth-model",
        default=DEFAULT_DEPTH_MODEL,
        metavar="NAME|PATH",
        help="monocular depth model for the depth maps not given: a Depth Anything model on "
        "the Hugging Face hub (cache first) or a local folder with its files (needs the "
        "'depth' extra: pip install 'relight[depth]')",
    )
    depth.add_argument(
        "--save-depth",
        type=Path,
        metavar="DIR",
        help="write the estimated maps to DIR/input/ and DIR/guide/: <stem>.npy "
        "(normalized_depth, reusable as --input-depth or in a pairs folder) and "
        "preview/<stem>_depth.png (16-bit)",
    )
    depth.add_argument(
        "--no-pickle",
        action="store_true",
        help="refuse pickled .npy depth (VIDIT's dict format) from untrusted sources",
    )
    size = parser.add_argument_group("size")
    defaults = SizePolicy()
    size.add_argument(
        "--max-pixels",
        type=int,
        default=defaults.max_pixels,
        help="largest forward pass (after padding to a multiple of 16)",
    )
    size.add_argument(
        "--large",
        choices=LARGE_MODES,
        default=defaults.large,
        help="inputs over --max-pixels: overlapping tiles, or one pass at a reduced size "
        "with the input's detail added back",
    )
    size.add_argument("--tile", type=int, default=defaults.tile, help="tile side (x16)")
    size.add_argument("--overlap", type=int, default=defaults.overlap, help="tile overlap")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    run.add_argument(
        "--precision",
        choices=[*PRECISIONS, *MODES],
        default="auto",
        help="auto (on a CUDA GPU: bf16-cl where bfloat16 is native, fp32-cl and fp32 timed "
        "on the first image, the fastest kept if within the tolerance of fp32; fp32 on a "
        "CPU), fp32, or bf16 "
        "(bfloat16 autocast + channels_last, "
        f"~3.5x faster on a CPU with AVX-512 BF16; {BF16_TOLERANCE_TEXT}); or an execution "
        "mode name",
    )
    run.add_argument("--threads", type=int, help="CPU threads for torch")
    run.add_argument("--quiet", action="store_true", help="no progress bar or per-image lines")
    return parser


@console_script("relight-predict")
def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-predict``: every input is checked before the checkpoint is
    loaded; an expected failure ends in one line (``--debug`` for the traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    single = [args.input, args.input_depth, args.guide, args.guide_depth]
    if args.pairs is None and (args.input is None or args.guide is None):
        parser.error("give --pairs DIR, or --input and --guide (depths: given or estimated)")
    if args.pairs is not None and any(v is not None for v in single):
        parser.error("--pairs and the single-pair flags (--input, --guide, ...) exclude each other")
    if args.pairs is None and args.output.suffix.lower() != ".png":
        parser.error(f"--output must be a .png file for a single pair; got {args.output}")
    if args.pairs is None and (folder_only := folder_flags_given(parser, args)):
        parser.error(f"{', '.join(folder_only)} apply to a pairs folder (--pairs DIR) only")
    try:
        if args.guide_depth_range is not None and args.guide_depth_convention is None:
            raise ValueError("--guide-depth-range needs --guide-depth-convention")
        depth = DepthOptions(
            args.depth_convention,
            check_depth_range(args.depth_convention, args.depth_range),
            allow_pickle=not args.no_pickle,
            guide_convention=args.guide_depth_convention,
            guide_range=args.guide_depth_convention
            and check_depth_range(args.guide_depth_convention, args.guide_depth_range),
        )
        policy = SizePolicy(args.max_pixels, args.tile, args.overlap, args.large).check()
    except ValueError as error:
        parser.error(str(error))
    pairs = check_inputs(args, depth.allow_pickle)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    net, _, kind = net_from_any_checkpoint(args.checkpoint)
    check_depth_use(parser, net, args, pairs)
    tile_progress = args.pairs is None and not args.quiet  # folder mode: one bar over pairs
    predictor = Predictor(
        net,
        device,
        args.precision,
        policy,
        tile_progress,
        depth_model=args.depth_model,
        save_depth=args.save_depth,
    )
    switches = ", ".join(
        f"{name} {'on' if getattr(net.config, name) else 'off'}"
        for name in ("attention", "enhancement", "depth", "global_residual")
    )
    print(
        f"{describe_checkpoint(args.checkpoint)}\n  {kind} checkpoint: encoder "
        f"{net.config.encoder}, {switches}; on {predictor.device}, {args.precision}"
        f"{auto_plan(predictor) if args.precision == 'auto' else ''}",
        file=sys.stderr,
    )
    if args.pairs is None:
        took = predict_single(predictor, pairs[0], args.output, depth)
        print_auto_choice(predictor)
        print(f"wrote {args.output} in {took:.2f} s")
        return
    submission = args.submission
    if submission is SUBMISSION_IN_OUTPUT:
        submission = args.output / "submission.zip"
    summary = predict_pairs(
        predictor,
        args.pairs,
        args.output,
        depth,
        args.gt_dir,
        submission,
        args.extra_data,
        args.description,
        args.lpips_weights,
        progress=not args.quiet,
    )
    print_auto_choice(predictor)
    print(
        f"wrote {summary['images']} images to {args.output} "
        f"({summary['runtime_s_per_image']:.2f} s per image)"
    )
    if "table" in summary:
        print(summary["table"])
        print(f"metrics: {args.output / 'metrics.json'}")
    if "submission" in summary:
        print(f"submission: {summary['submission']}")


def auto_plan(predictor: Predictor) -> str:
    """The header's word on ``--precision auto``: the mode, or the modes it will time."""
    if predictor.candidates:
        *others, last = predictor.candidates
        return f" (timing {', '.join(others)} and {last} on the first image)"
    return f" ({predictor.mode})"


def print_auto_choice(predictor: Predictor) -> None:
    """What ``--precision auto`` measured and kept, once it has chosen."""
    if predictor.auto_choice is not None:
        print(predictor.auto_choice, file=sys.stderr)


def check_inputs(args: argparse.Namespace, allow_pickle: bool) -> list[PairFiles]:
    """What can be checked in seconds, before a checkpoint of hundreds of MB loads: every
    file of the pair (or of each pair of the folder) is there and readable, each depth map
    frames its image, the outputs (the submission zip too) can be written. Returns the
    pairs."""
    if args.pairs is None:
        pair = PairFiles("single", args.input, args.input_depth, args.guide, args.guide_depth, None)
        check_pair_files(pair, allow_pickle)
        ensure_writable_dir(args.output.parent)
        return [pair]
    pairs = index_pairs(
        args.pairs, args.gt_dir, check_sizes=False, allow_pickle=allow_pickle, require_depth=False
    )
    for pair in pairs:
        check_pair_files(pair, allow_pickle)
    ensure_writable_dir(args.output)
    if args.submission is not None and args.submission is not SUBMISSION_IN_OUTPUT:
        if args.submission.suffix.lower() != ".zip" or args.submission.is_dir():
            raise ValueError(f"--submission must name a .zip file; got {args.submission}")
        ensure_writable_dir(args.submission.parent, "--submission folder")
    return pairs


#: The flags of a pairs folder, which a single pair does not use.
FOLDER_FLAGS = ("gt_dir", "submission", "extra_data", "description", "lpips_weights")


def folder_flags_given(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The pairs-folder flags given with other values than their defaults (``--gt-dir``)."""
    return [
        "--" + name.replace("_", "-")
        for name in FOLDER_FLAGS
        if getattr(args, name) != parser.get_default(name)
    ]


def check_depth_use(
    parser: argparse.ArgumentParser, net: S3Net, args: argparse.Namespace, pairs: list[PairFiles]
) -> None:
    """Depth given to a model that takes none is an error (single pair) or a warning (a
    pairs folder holds them anyway); a model that takes depth says which maps it estimates."""
    given = [p for pair in pairs for p in (pair.input_depth, pair.guide_depth) if p is not None]
    if not net.config.depth:
        if args.save_depth is not None:
            parser.error("--save-depth: this checkpoint's model takes no depth; none is estimated")
        if given and args.pairs is None:
            parser.error(
                "this checkpoint's model takes no depth (trained with depth=false): "
                "--input-depth/--guide-depth would be ignored; leave them out"
            )
        if given:
            print(
                f"note: this checkpoint's model takes no depth: the {len(given)} depth maps "
                f"in {args.pairs} are not used",
                file=sys.stderr,
            )
        return
    missing = 2 * len(pairs) - len(given)
    if missing:
        print(
            f"note: {missing} depth map(s) not given: estimated with {args.depth_model}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
