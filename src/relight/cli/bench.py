"""``relight-bench suite|table|data|check|profile``: benchmarks, one JSON record per
measurement.

- ``relight-bench suite`` (``make bench``, ``make bench-gpu``): inference latency per
  execution mode and size, training steps with their forward/loss/backward/optimizer
  split, activation checkpointing, GEMM-relative GFLOP/s, speed-ups against eager fp32,
  each mode's output difference, and data-loader items/s. Record schema: docs/performance.md.
- ``relight-bench table FILE``: the tables of a file ``suite --output`` wrote, an
  incomplete one too (a run killed before it printed them).
- ``relight-bench data``: data-loader items/s only.
- ``relight-bench check``: ``relight-data check`` files/s per worker process.
- ``relight-bench profile``: one training step under ``torch.profiler``: the operators
  with the most self time, kernel launches per step, the GPU's idle share
  (:mod:`relight.bench.profile`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from relight.cli.errors import Parser, console_script
from relight.files import write_text_atomic


@console_script("relight-bench")
def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-bench``."""
    from relight.bench.suite import PROFILES, ResumeMismatchError, format_tables, run_suite
    from relight.bench.train_step import TRAIN_MODES
    from relight.models.execution import COMPILE_MODES, MODES

    parser = Parser(
        prog="relight-bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    suite = sub.add_parser("suite", help="the whole table (make bench / make bench-gpu)")
    suite.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="cpu",
        help="defaults for this machine kind (sizes, modes, repeats)",
    )
    for name, kind in (
        ("sizes", int),
        ("modes", str),
        ("train-sizes", int),
        ("train-modes", str),
        ("compile-sizes", int),
        ("data-sizes", int),
        ("data-workers", int),
    ):
        suite.add_argument(f"--{name}", type=kind, nargs="*")
    for name in (
        "repeats",
        "warmup",
        "train-repeats",
        "train-batch",
        "gemm-n",
        "checkpointing-size",
    ):
        suite.add_argument(f"--{name}", type=int)
    suite.add_argument("--device")
    suite.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    suite.add_argument("--encoder", default="res2net101d", help="timm encoder of the model")
    suite.add_argument("--no-accuracy", dest="accuracy", action="store_false")
    suite.add_argument(
        "--minividit",
        type=Path,
        default=Path("data/minividit"),
        help="mini-VIDIT for the accuracy check (rendered small if missing)",
    )
    suite.add_argument(
        "--checkpoint",
        default="logs/train/latest/checkpoints/best.ckpt",
        help="weights for the accuracy check when the file exists ('none': random)",
    )
    suite.add_argument(
        "--gpu-tflops",
        type=float,
        default=100.0,
        help="sustained GPU TFLOP/s assumed for the loader-workers estimate",
    )
    suite.add_argument(
        "--output",
        type=Path,
        help="write {meta, records, complete} JSON here (after every row: a killed run keeps "
        "what it measured)",
    )
    suite.add_argument(
        "--resume",
        action="store_true",
        help="measure only the rows --output lacks or measured otherwise (same machine kind, "
        "torch, encoder and GEMM size; its GEMM kept; failed rows stay failed)",
    )
    suite.add_argument(
        "--retry-failed", action="store_true", help="with --resume: measure failed rows again"
    )
    suite.add_argument("--table", type=Path, help="write the markdown tables here")
    tab = sub.add_parser(
        "table", help="the tables of a saved suite file (an incomplete one too: a killed run)"
    )
    tab.add_argument("file", type=Path, help="the JSON a suite wrote with --output")
    tab.add_argument("--gpu-tflops", type=float, default=100.0, help="as for suite")
    tab.add_argument("--table", type=Path, help="also write the markdown tables here")
    dat = sub.add_parser("data", help="data-loader items/s with and without the cache")
    dat.add_argument("--source-size", type=int, default=1024, help="side of the PNGs on disk")
    dat.add_argument("--sizes", type=int, nargs="+", default=[1024, 256])
    dat.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    dat.add_argument("--scenes", type=int, default=8)
    dat.add_argument("--lightings", type=int, default=6)
    dat.add_argument("--items", type=int, default=30, help="items timed per configuration")
    dat.add_argument("--threads", type=int, default=2)
    dat.add_argument("--output", type=Path, help="also write the records to this JSON file")
    chk = sub.add_parser("check", help="relight-data check files/s for each worker count")
    chk.add_argument("--dir", type=Path, help="a data folder (default: a synthetic one)")
    chk.add_argument("--source-size", type=int, default=1024, help="side of the synthetic PNGs")
    chk.add_argument("--scenes", type=int, default=4)
    chk.add_argument("--lightings", type=int, default=10)
    chk.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    chk.add_argument("--repeats", type=int, default=3, help="runs per worker count (best kept)")
    chk.add_argument("--output", type=Path, help="also write the records to this JSON file")
    prof = sub.add_parser("profile", help="one training step under torch.profiler")
    prof.add_argument("--device", default="cpu", help="cpu or cuda")
    prof.add_argument("--size", type=int, default=256, help="side of the square inputs")
    prof.add_argument("--batch", type=int, default=3)
    prof.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    prof.add_argument("--channels-last", action="store_true")
    prof.add_argument("--fused", action="store_true", help="fused AdamW")
    prof.add_argument(
        "--compile", choices=COMPILE_MODES, help="torch.compile the network and the loss"
    )
    prof.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="cuDNN's autotuner (trainer.benchmark=true); no effect on a CPU",
    )
    prof.add_argument("--encoder", default="res2net101d", help="timm encoder of the model")
    prof.add_argument("--steps", type=int, default=3, help="steps profiled (after warm-up)")
    prof.add_argument("--top", type=int, default=15, help="operators listed")
    prof.add_argument("--output", type=Path, help="also write the record to this JSON file")
    prof.add_argument("--table", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)

    if args.bench == "profile":
        from relight.bench.profile import format_profile, profile_train_step
        from relight.devices import pick_device

        pick_device(args.device)  # a clear error when CUDA is asked for and absent
        record = profile_train_step(vars(args))
        if args.output:
            write_text_atomic(args.output, json.dumps(record, indent=2))
        show(format_profile(record), args.table)
        return
    if args.bench == "table":
        try:
            result = json.loads(args.file.read_text())
            tables = format_tables(result, args.gpu_tflops)
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"{args.file}: not a relight-bench suite file ({error!r})")
        show(tables, args.table)
        return
    if args.bench in ("check", "data"):
        from relight.bench.check import check
        from relight.bench.data import data

        result = {"records": (check if args.bench == "check" else data)(args)}
        if args.output:
            write_text_atomic(args.output, json.dumps(result, indent=2))
        return
    for key, value in PROFILES[args.profile].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.threads is None and args.device == "cpu":
        import os

        args.threads = min(os.cpu_count() or 1, 16)
    for flag, given, known in (
        ("--modes", args.modes, MODES),
        ("--train-modes", args.train_modes, TRAIN_MODES),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"{flag}: unknown {unknown}; choose from {sorted(known)}")
    if args.resume and args.output is None:
        parser.error("--resume continues the file of --output: give --output")
    if args.retry_failed and not args.resume:
        parser.error("--retry-failed goes with --resume")
    try:
        result = run_suite(args)  # writes --output
    except ResumeMismatchError as mismatch:
        parser.error(str(mismatch))
    print()
    show(format_tables(result, args.gpu_tflops), args.table)


def show(tables: str, path: Path | None) -> None:
    """Print markdown tables, and write them to ``path`` when one is given (``--table``)."""
    print(tables)
    if path:
        write_text_atomic(path, tables + "\n")


if __name__ == "__main__":
    main()
