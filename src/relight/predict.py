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
:mod:`relight.inference`), and depth maps in any convention (see
:mod:`relight.data.depth_conventions`). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from relight.checkpoints import ANY_CHECKPOINT_HELP, net_from_any_checkpoint
from relight.data.depth_conventions import CONVENTIONS, check_depth_range, normalise_depth
from relight.data.formats import DataFormatError, read_depth, read_image, write_depth
from relight.data.pairs import PairFiles, index_pairs
from relight.data.transforms import resize_depth, resize_image
from relight.evaluation import format_table, mean_results, pick_device, score_rows
from relight.files import atomic_write, ensure_writable_dir, write_text_atomic
from relight.inference import LARGE_MODES, SizePolicy, relight_any_size
from relight.metrics import RelightMetrics
from relight.models import S3Net
from relight.models.execution import MODES, prepare
from relight.models.monocular_depth import DEFAULT_DEPTH_MODEL, MonocularDepth, load_depth_model
from relight.models.s3net import batch_input
from relight.panels import save_png

#: ``--precision`` picks the fastest execution mode of that precision (relight.models.execution)
PRECISIONS = {"fp32": "eager-fp32", "bf16": "bf16-cl"}
#: ``--submission`` without a path (not a string: argparse would convert it to a Path).
SUBMISSION_IN_OUTPUT = object()
#: A depth map whose aspect ratio differs from its image's by more than this is refused.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class DepthOptions:
    """How depth files are read: their convention, value range and whether pickles load;
    ``guide_convention`` and ``guide_range`` for the guide's depth when it differs (e.g. a
    VIDIT guide for your own photo), by default the same as the input's."""

    convention: str = "vidit"
    depth_range: tuple[float, float] | None = None
    allow_pickle: bool = True
    guide_convention: str | None = None
    guide_range: tuple[float, float] | None = None

    def for_guide(self) -> DepthOptions:
        """The options of the guide's depth."""
        if self.guide_convention is None:
            return self
        return DepthOptions(self.guide_convention, self.guide_range, self.allow_pickle)


def read_depth_as(path: Path, size: tuple[int, int], options: DepthOptions) -> torch.Tensor:
    """A depth file as VIDIT ``normalized_depth`` of its image's (H, W) ``size``.

    A depth map of another resolution (a monocular estimate often is) is resized when its
    aspect ratio matches the image's; otherwise a :class:`DataFormatError` names the file.
    """
    depth = read_depth(path, options.allow_pickle)
    depth = normalise_depth(depth, options.convention, options.depth_range, origin=str(path))
    if tuple(depth.shape) != size:
        h, w = depth.shape
        if abs((h / w) / (size[0] / size[1]) - 1) > ASPECT_TOLERANCE:
            raise DataFormatError(
                f"{path}: depth of {h}x{w} does not match its image's aspect ratio "
                f"({size[0]}x{size[1]})"
            )
        depth = resize_depth(depth, size)
    return depth


def depth_of(
    image: torch.Tensor,
    image_path: Path,
    depth_path: Path | None,
    options: DepthOptions,
    estimator: MonocularDepth | None = None,
    save_dir: Path | None = None,
) -> torch.Tensor:
    """The ``normalized_depth`` of an image at its size: read from ``depth_path``, or, when
    there is none, estimated by ``estimator`` and, with ``save_dir``, saved there as
    ``<stem>.npy`` (exact, reusable as a depth file) and ``<stem>_depth.png`` (16-bit)."""
    size = (image.shape[-2], image.shape[-1])
    if depth_path is not None:
        return read_depth_as(depth_path, size, options)
    if estimator is None:
        raise DataFormatError(f"{image_path}: no depth map given and no depth model to estimate it")
    depth = estimator(image, origin=str(image_path))
    if save_dir is not None:
        write_depth(depth, save_dir / f"{image_path.stem}.npy")
        write_depth(depth, save_dir / f"{image_path.stem}_depth.png")
    return depth


def read_pair(
    pair: PairFiles,
    options: DepthOptions,
    depth: bool = True,
    estimator: MonocularDepth | None = None,
    save_depth: Path | None = None,
) -> dict[str, Any]:
    """One item (``input``, ``guide``, depths, ``target`` when known, ``name``) from files.

    The guide only carries the lighting: one of another size is resized to the input's,
    and so is its depth (read, or estimated from the guide at its own size). Depth maps the
    pair lacks are estimated by ``estimator`` (and saved in ``save_depth/input/`` and
    ``save_depth/guide/``, see :func:`depth_of`).
    """
    image = read_image(pair.input)
    size = (image.shape[-2], image.shape[-1])
    guide = read_image(pair.guide)
    item: dict[str, Any] = {"name": pair.name, "input": image, "guide": resize_image(guide, size)}
    if depth:
        input_dir, guide_dir = (
            (save_depth / "input", save_depth / "guide") if save_depth else (None, None)
        )
        input_depth = depth_of(image, pair.input, pair.input_depth, options, estimator, input_dir)
        guide_depth = depth_of(
            guide, pair.guide, pair.guide_depth, options.for_guide(), estimator, guide_dir
        )
        item["input_depth"] = input_depth[None]
        item["guide_depth"] = resize_depth(guide_depth, size)[None]
    if pair.target is not None:
        target = read_image(pair.target)
        if target.shape != image.shape:
            raise DataFormatError(
                f"{pair.target}: target of {tuple(target.shape[-2:])} differs from the input "
                f"{pair.input} of {size}"
            )
        item["target"] = target
    return item


@dataclass
class Predictor:
    """S3Net on a device, at a precision, under a size policy; call it on an item.

    ``precision``: ``fp32`` or ``bf16`` (bfloat16 autocast with channels_last, the fastest
    bf16 mode), or any execution mode name of :mod:`relight.models.execution`.
    """

    net: S3Net
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    policy: SizePolicy = field(default_factory=SizePolicy)
    tile_progress: bool = False

    def __post_init__(self) -> None:
        self.mode = PRECISIONS.get(self.precision, self.precision)
        self.policy.check(self.net.min_size)
        self.forward = prepare(self.net, self.mode, self.device)  # ValueError for unknown modes

    @torch.inference_mode()
    def __call__(self, item: dict[str, Any]) -> tuple[torch.Tensor, float]:
        """The relit (3, H, W) image in [0, 1] on the CPU, and the seconds it took."""
        start = time.perf_counter()
        batch = {k: v[None].to(self.device) for k, v in item.items() if torch.is_tensor(v)}
        x = batch_input(batch, self.net.config.depth)
        out = relight_any_size(self.forward, x, self.policy, self.net.min_size, self.tile_progress)[
            0
        ].cpu()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out, time.perf_counter() - start


def submission_readme(
    runtime: float, cpu: bool, extra_data: bool = False, description: str = ""
) -> str:
    """The ``readme.txt`` of an NTIRE 2021 submission."""
    return (
        f"Runtime per image [s] : {runtime:.2f}\n"
        f"CPU[1] / GPU[0] : {int(cpu)}\n"
        f"Extra Data [1] / No Extra Data [0] : {int(extra_data)}\n"
        f"Other description : {description}\n"
    )


def write_submission(zip_path: Path, images: Sequence[Path], readme: str) -> Path:
    """The challenge zip: the images at its root and ``readme.txt``, written atomically."""

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for image in images:
                archive.write(image, arcname=image.name)
            archive.writestr("readme.txt", readme)

    return atomic_write(zip_path, write)


def depth_estimator_for(
    pairs: Sequence[PairFiles],
    takes_depth: bool,
    depth_model: str | MonocularDepth,
    device: torch.device,
    save_depth: Path | None = None,
) -> MonocularDepth | None:
    """The monocular depth model (loaded once, before any work) when the network takes depth
    and some pair lacks a depth map; ``None`` otherwise. Checks ``save_depth`` is writable."""
    missing = [p for p in pairs if p.input_depth is None or p.guide_depth is None]
    if not takes_depth or not missing:
        return None
    if save_depth is not None:
        ensure_writable_dir(save_depth, "--save-depth folder")
    if isinstance(depth_model, MonocularDepth):
        return depth_model
    return load_depth_model(depth_model, device)


def predict_pairs(
    predictor: Predictor,
    pairs_dir: Path,
    output_dir: Path,
    depth: DepthOptions = DepthOptions(),
    gt_dir: Path | None = None,
    submission: Path | None = None,
    extra_data: bool = False,
    description: str = "",
    lpips_weights: str = "imagenet",
    progress: bool = True,
    depth_model: str | MonocularDepth = DEFAULT_DEPTH_MODEL,
    save_depth: Path | None = None,
) -> dict[str, Any]:
    """Relight every pair of a pairs folder into ``output_dir/<name>.png``; see the module doc.

    Depth files the pairs lack are estimated with ``depth_model`` (a name or folder for
    :func:`~relight.models.monocular_depth.load_depth_model`, or a loaded model) and
    written to ``save_depth`` when given. Returns the summary (also ``metrics.json`` when
    there is ground truth).
    """
    pairs = index_pairs(
        pairs_dir, gt_dir, check_sizes=False, allow_pickle=depth.allow_pickle, require_depth=False
    )
    ensure_writable_dir(output_dir)
    takes_depth = predictor.net.config.depth
    estimator = depth_estimator_for(pairs, takes_depth, depth_model, predictor.device, save_depth)
    has_target = pairs[0].target is not None
    metrics = RelightMetrics(lpips_weights=lpips_weights) if has_target else None
    rows: list[dict[str, Any]] = []
    written, seconds = [], []
    bar = tqdm(pairs, desc="relighting", unit="pair", disable=not progress, file=sys.stderr)
    for pair in bar:
        item = read_pair(pair, depth, takes_depth, estimator, save_depth)
        relit, took = predictor(item)
        written.append(save_png(relit, output_dir / f"{pair.name}.png"))
        seconds.append(took)
        bar.set_postfix_str(f"{pair.name} {took:.2f} s")
        if progress:
            tqdm.write(f"{pair.name}: {took:.2f} s ({relit.shape[-1]}x{relit.shape[-2]})")
        if metrics is not None:
            batch = {"input": item["input"][None], "target": item["target"][None]}
            rows += score_rows([pair.name], relit[None], batch, metrics)
            rows[-1]["seconds"] = took
    runtime = statistics.fmean(seconds)
    summary: dict[str, Any] = {
        "images": len(written),
        "runtime_s_per_image": runtime,
        "device": str(predictor.device),
        "precision": predictor.precision,
        "mode": predictor.mode,
    }
    if metrics is not None:
        results = mean_results(rows)
        summary.update(
            convention=metrics.convention,
            results=results,
            table=format_table(results, metrics.convention),
            per_image=rows,
        )
        write_text_atomic(output_dir / "metrics.json", json.dumps(summary, indent=2))
    if submission is not None:
        readme = submission_readme(runtime, predictor.device.type == "cpu", extra_data, description)
        summary["submission"] = str(write_submission(submission, written, readme))
    return summary


def predict_single(
    predictor: Predictor,
    pair: PairFiles,
    output: Path,
    depth: DepthOptions = DepthOptions(),
    depth_model: str | MonocularDepth = DEFAULT_DEPTH_MODEL,
    save_depth: Path | None = None,
) -> float:
    """Relight one pair of files into ``output`` (a PNG), estimating a depth map it lacks
    (as :func:`predict_pairs`); returns the seconds the relighting took."""
    ensure_writable_dir(output.parent)
    takes_depth = predictor.net.config.depth
    estimator = depth_estimator_for([pair], takes_depth, depth_model, predictor.device, save_depth)
    relit, took = predictor(read_pair(pair, depth, takes_depth, estimator, save_depth))
    save_png(relit, output)
    return took


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        "(normalized_depth, reusable as --input-depth) and <stem>_depth.png (16-bit)",
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
        "--precision", choices=[*PRECISIONS, *MODES], default="fp32",
        help="fp32, or bf16 (bfloat16 autocast + channels_last, ~3.5x faster on a CPU with "
        "AVX-512 BF16, output within ~1e-3); or an execution mode name",
    )  # fmt: skip
    run.add_argument("--threads", type=int, help="CPU threads for torch")
    run.add_argument("--quiet", action="store_true", help="no progress bar or per-image lines")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-predict``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    single = [args.input, args.input_depth, args.guide, args.guide_depth]
    if args.pairs is None and (args.input is None or args.guide is None):
        parser.error("give --pairs DIR, or --input and --guide (depths: given or estimated)")
    if args.pairs is not None and any(v is not None for v in single):
        parser.error("--pairs and the single-pair flags (--input, --guide, ...) exclude each other")
    if args.pairs is None and args.output.suffix.lower() != ".png":
        parser.error(f"--output must be a .png file for a single pair; got {args.output}")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    net, _, kind = net_from_any_checkpoint(args.checkpoint)
    if args.save_depth is not None and not net.config.depth:
        parser.error("--save-depth: this checkpoint's model takes no depth; none is estimated")
    tile_progress = args.pairs is None and not args.quiet  # folder mode: one bar over pairs
    predictor = Predictor(net, pick_device(args.device), args.precision, policy, tile_progress)
    print(
        f"{args.checkpoint} ({kind} checkpoint, encoder {net.config.encoder}) on "
        f"{predictor.device}, {args.precision}",
        file=sys.stderr,
    )
    if args.pairs is None:
        pair = PairFiles("single", args.input, args.input_depth, args.guide, args.guide_depth, None)
        took = predict_single(
            predictor, pair, args.output, depth, args.depth_model, args.save_depth
        )
        print(f"wrote {args.output} in {took:.2f} s")
        return
    submission = args.submission
    if submission is SUBMISSION_IN_OUTPUT:
        submission = args.output / "submission.zip"
    summary = predict_pairs(
        predictor, args.pairs, args.output, depth, args.gt_dir, submission,
        args.extra_data, args.description, args.lpips_weights, progress=not args.quiet,
        depth_model=args.depth_model, save_depth=args.save_depth,
    )  # fmt: skip
    print(
        f"wrote {summary['images']} images to {args.output} "
        f"({summary['runtime_s_per_image']:.2f} s per image)"
    )
    if "table" in summary:
        print(summary["table"])
        print(f"metrics: {args.output / 'metrics.json'}")
    if "submission" in summary:
        print(f"submission: {summary['submission']}")


if __name__ == "__main__":
    main()
