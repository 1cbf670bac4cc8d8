"""``make bench`` / ``make bench-gpu``: the whole benchmark table in one command.

Every measurement runs in a fresh process (its peak memory is its own); every speed is
printed as a ratio against the eager float32 baseline measured in the same run, and as
achieved GFLOP/s against a GEMM measured in the same run (so the figures survive a noisy
machine); every faster mode reports what it changes in the output.

With ``--output``, the JSON is rewritten after every row (``"complete": false`` until the
end), so a run that is killed keeps what it measured; ``--resume`` then measures only the
rows that file lacks or measured with another ``spec`` (failed rows stay failed unless
``--retry-failed``), on the same machine kind and torch, against the GEMM it recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from relight.bench.measure import NOISY_SPREAD, STEADY_SPREAD, STEADY_WINDOW, run_isolated
from relight.bench.train_step import LOSS_STEP, TRAIN_MODES
from relight.files import write_text_atomic
from relight.models.execution import MODES

PROFILES: dict[str, dict[str, Any]] = {
    "cpu": dict(
        device="cpu",
        sizes=[256, 512, 1024],
        modes=["eager-fp32", "fp32-cl", "bf16", "bf16-cl", "bf16-cl-compile"],
        train_sizes=[256, 512],
        train_modes=["32-true", "bf16-mixed", "bf16-mixed-cl"],
        train_batch=3,
        gemm_n=2048,
        repeats=3,
        warmup=1,
        train_repeats=2,
        checkpointing_size=512,
        data_sizes=[1024],
        data_workers=[0, 1, 2],
        compile_sizes=[256],
    ),
    "gpu": dict(
        device="cuda",
        sizes=[1024],
        modes=["eager-fp32", "fp32-cl", "bf16", "bf16-cl", "bf16-cl-compile", "bf16-cl-graphs"],
        train_sizes=[1024],
        train_modes=[
            "32-true",
            "bf16-mixed",
            "bf16-mixed-cl",
            "bf16-mixed-fused",
            "bf16-mixed-fused-tuned",
            "bf16-mixed-compile",
            "bf16-mixed-graphs",
            "bf16-mixed-graphs-tuned",
        ],
        train_batch=3,
        gemm_n=8192,
        repeats=20,
        warmup=5,
        train_repeats=5,
        checkpointing_size=1024,
        data_sizes=[],
        data_workers=[],
        compile_sizes=[1024],
    ),
}
#: What a training mode leaves out (:data:`relight.bench.train_step.TRAIN_MODES`).
TRAIN_MODE_DEFAULTS = dict(channels_last=False, fused=False, compile=None, checkpointing=False)
#: Activation-checkpointing rows, at ``checkpointing_size`` (their memory saving).
CHECKPOINTING_MODES = ["32-true-ckpt", "bf16-mixed-cl-ckpt"]
BASE_SIZE = 256  # FLOPs are counted here and scaled with the pixel count (S3Net is conv-only)
#: The paper's run (conf/experiment/s3net_paper.yaml): 100 epochs of every VIDIT track-2
#: training input (300 scenes x 40 lightings), batch 3, at 1024².
PAPER_RUN = dict(epochs=100, items_per_epoch=300 * 40, batch=3, size=1024)


#: What must match for ``--resume`` to continue a file: the same machine kind, torch,
#: encoder and reference GEMM.
RESUME_MATCH = ("torch", "machine", "processor", "device", "gpu", "threads", "encoder", "gemm_n")


class ResumeMismatchError(ValueError):
    """``--resume`` of a file measured on another machine kind, torch or encoder."""


def _key(record: dict[str, Any]) -> tuple:
    """What names a row: its bench, size and mode (data rows: cache and workers too)."""
    return tuple(record.get(k) for k in ("bench", "size", "mode", "cache", "workers"))


class Records:
    """The suite's records, printed as they come and, with a ``path``, rewritten there
    after each one. ``saved`` holds the rows of the file being resumed, by :func:`_key`:
    one is taken instead of a measurement when it was asked for with the same ``spec``
    (a failed one too, unless ``retry_failed``). Until the run completes, the saved rows
    it has not reached are written back with every save, so a resumed run that is killed
    loses nothing; the complete file holds what this run asked for."""

    def __init__(
        self,
        path: Path | None,
        meta: dict[str, Any],
        saved: list[dict],
        retry_failed: bool = False,
    ) -> None:
        self.path, self.meta, self.records = path, meta, []
        self.saved = {_key(r): r for r in saved}
        self.retry_failed = retry_failed

    def emit(self, record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)
        self.saved.pop(_key(record), None)
        self.records.append(record)
        self.save(complete=False)

    def save(self, complete: bool) -> None:
        if self.path is not None:
            write_text_atomic(self.path, json.dumps(self.result(complete), indent=2))

    def result(self, complete: bool) -> dict[str, Any]:
        unreached = [] if complete else list(self.saved.values())
        records = self.records + unreached
        set_comparisons(records)
        return {"meta": self.meta, "records": records, "complete": complete}

    def take(self, spec: dict[str, Any]) -> dict | None:
        """The saved row measured with ``spec`` (``None``: measure it)."""
        saved = self.saved.get(_key(spec))
        if saved is None or saved.get("spec") != spec:
            return None
        if "error" in saved and self.retry_failed:
            return None
        return dict(saved)

    def take_all(self, keys: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict] | None:
        """The saved rows named by ``keys`` when every one was measured with ``spec`` (one
        measurement makes them all: the accuracy and data blocks); ``None`` otherwise."""
        rows = [self.saved.get(_key(key)) for key in keys]
        if not all(row is not None and row.get("spec") == spec for row in rows):
            return None
        if self.retry_failed and any("error" in row for row in rows):
            return None
        return [dict(row) for row in rows]

    def block(
        self,
        keys: list[dict[str, Any]],
        spec: dict[str, Any],
        measure: Callable[[], list[dict[str, Any]]],
    ) -> None:
        """Emit the rows of a block one measurement makes (the accuracy and data blocks):
        the saved ones when :meth:`take_all` has them all, else ``measure()``'s, each with
        ``spec``. A failed measurement is recorded as :meth:`row` records one, as an
        ``error`` row per key (kept by ``--resume`` unless ``retry_failed``), and the suite
        goes on."""
        rows = self.take_all(keys, spec)
        if rows is None:
            try:
                rows = measure()
            except (RuntimeError, subprocess.TimeoutExpired) as failure:
                rows = [{**spec, **key, "error": _last_line(failure)} for key in keys]
        for row in rows:
            self.emit({**row, "spec": spec})

    def row(self, spec: dict[str, Any], **extra: Any) -> dict | None:
        """The saved row of ``spec``, or one measurement. A failed one is recorded
        (``error``: the last line of its stderr, printed as ``failed`` in the table) and
        the suite goes on to the next row (``None``)."""
        spec = {**spec, **extra}
        saved = self.take(spec)
        if saved is not None and "error" in saved:
            self.emit(saved)
            return None
        if saved is not None:
            return saved
        try:
            return {
                **run_isolated({k: v for k, v in spec.items() if k not in extra}),
                **extra,
                "spec": spec,
            }
        except (RuntimeError, subprocess.TimeoutExpired) as failure:
            self.emit({**spec, "error": _last_line(failure), "spec": spec})
            return None


def _last_line(failure: BaseException) -> str:
    """What a failed measurement's row says: the last line of its error (its stderr's)."""
    lines = [line for line in str(failure).splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else type(failure).__name__


def resumable(path: Path | None, meta: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """The meta (with its GEMM) and records of the file ``--resume`` continues, or
    ``(meta, [])`` when there is none; :class:`ResumeMismatchError` naming what differs
    when it was measured elsewhere."""
    if path is None or not path.is_file():
        print(f"--resume: no {path} yet: measuring every row", flush=True)
        return meta, []
    saved = json.loads(path.read_text())
    differ = [
        f"{key} {saved['meta'].get(key)!r} there, {meta.get(key)!r} here"
        for key in RESUME_MATCH
        if saved["meta"].get(key) != meta.get(key)
    ]
    if differ:
        raise ResumeMismatchError(
            f"--resume: {path} was measured elsewhere ({'; '.join(differ)}); rerun without "
            "--resume, or give another --output"
        )
    print(f"--resume: {len(saved['records'])} rows in {path}", flush=True)
    return {**saved["meta"], "resumed": True}, saved["records"]


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement (``args.resume``: only those ``args.output`` lacks); returns
    ``{"meta": ..., "records": [...], "complete": True}``."""
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "relight-bench --device cuda (make bench-gpu) needs a CUDA GPU, and torch sees none "
            "(torch.cuda.is_available() is False)"
        )
    common = {"device": args.device, "threads": args.threads, "encoder": args.encoder}
    meta = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "threads": args.threads,
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "encoder": args.encoder,
        "gemm_n": args.gemm_n,
        "date": time.strftime("%Y-%m-%d"),
    }
    saved: list[dict] = []
    output = getattr(args, "output", None)
    if getattr(args, "resume", False):
        meta, saved = resumable(output, meta)
    if "gemm" not in meta:
        gemm_runs = {
            dtype: run_isolated({**common, "bench": "gemm", "n": args.gemm_n, "dtype": dtype})
            for dtype in ("float32", "bfloat16")
        }
        meta.update(gemm_gflops={d: run["gflops"] for d, run in gemm_runs.items()}, gemm=gemm_runs)
    gemm = meta["gemm_gflops"]
    print(f"GEMM {args.gemm_n}²: {_gemm_line(meta['gemm'])}", flush=True)
    if "flops" not in meta:  # counted at BASE_SIZE, batch 1 (a resumed file has them)
        meta["flops"] = {
            bench: run_isolated(
                {**common, "bench": f"{bench}_flops", "size": BASE_SIZE, "batch": 1}
            )["flops"]
            for bench in ("forward", "train")
        }
    base_flops, step_flops = meta["flops"]["forward"], meta["flops"]["train"]
    meta.update(
        forward_gflop_per_megapixel=round(base_flops / 1e9 / (BASE_SIZE**2 / 2**20), 1),
        train_gflop_per_item_1024=round(step_flops * (1024 / BASE_SIZE) ** 2 / 1e9, 1),
    )
    records = Records(output, meta, saved, getattr(args, "retry_failed", False))

    for size in args.sizes:
        for mode in args.modes:
            if MODES[mode].compile and size not in args.compile_sizes:
                continue  # compiling takes about a minute per size on a CPU
            spec = {
                **common,
                "bench": "forward",
                "size": size,
                "mode": mode,
                "batch": 1,
                "repeats": args.repeats,
                "warmup": args.warmup,
            }
            record = records.row(spec)
            if record is None:
                continue
            flops = base_flops * (size / BASE_SIZE) ** 2
            reference = gemm["bfloat16" if mode.startswith("bf16") else "float32"]
            record.update(
                gflop=round(flops / 1e9, 1),
                gflops=round(flops / record["median_s"] / 1e9, 1),
                gemm_ratio=round(flops / record["median_s"] / 1e9 / reference, 3),
            )
            records.emit(record)

    for size in args.train_sizes:
        modes = list(args.train_modes)
        if size == args.checkpointing_size:
            modes += [m for m in CHECKPOINTING_MODES if m not in modes]
        for mode in modes:
            spec = {
                **common,
                **TRAIN_MODE_DEFAULTS,
                **TRAIN_MODES[mode],
                "bench": "train",
                "size": size,
                "batch": args.train_batch,
                "repeats": args.train_repeats,
                "warmup": 2,
            }  # the first steps build kernels and AdamW state
            record = records.row(spec, mode=mode)
            if record is None:
                continue
            flops = step_flops * args.train_batch * (size / BASE_SIZE) ** 2
            reference = gemm["bfloat16" if spec["precision"].startswith("bf16") else "float32"]
            record.update(
                mode=mode,
                gflop=round(flops / 1e9, 1),
                gflops=round(flops / record["median_s"] / 1e9, 1),
                gemm_ratio=round(flops / record["median_s"] / 1e9 / reference, 3),
            )
            records.emit(record)

    if args.accuracy:
        spec = {
            **common,
            "bench": "accuracy",
            "modes": args.modes,
            "image_size": None,
            "minividit": str(args.minividit),
            "checkpoint": _checkpoint(args),
        }
        checkpoint = spec["checkpoint"] and Path(spec["checkpoint"]).stat()
        asked = {  # a checkpoint rewritten in place is other weights
            **spec,
            "checkpoint_file": checkpoint and [checkpoint.st_size, checkpoint.st_mtime_ns],
        }

        def measure_accuracy() -> list[dict[str, Any]]:
            result = run_isolated(spec, timeout=1800)
            return [
                {
                    "bench": "accuracy",
                    "mode": mode,
                    "pairs": result["pairs"],
                    "weights": result["weights"],
                    "device": args.device,
                    **{k: round(v, 6) for k, v in values.items()},
                }
                for mode, values in result["modes"].items()
            ]

        keys = [{"bench": "accuracy", "mode": m} for m in args.modes]
        records.block(keys, asked, measure_accuracy)

    if args.data_sizes:
        from relight.bench.data import data

        data_args = argparse.Namespace(
            source_size=1024,
            sizes=args.data_sizes,
            workers=args.data_workers,
            scenes=8,
            lightings=6,
            items=30,
            threads=args.threads,
        )
        spec = {"bench": "data", **vars(data_args)}
        keys = [
            {"bench": "data", "size": s, "cache": c, "workers": w}
            for s in args.data_sizes
            for c in (False, True)
            for w in args.data_workers
        ]
        records.block(keys, spec, lambda: data(data_args))

    records.save(complete=True)
    return records.result(complete=True)


#: The row each inference or training row's speed-up is against (same bench and size).
REFERENCE_MODES = {"forward": "eager-fp32", "train": "32-true"}


def set_comparisons(records: list[dict[str, Any]]) -> None:
    """Set what each measured inference and training row is against its
    :data:`REFERENCE_MODES` row of the same size (``None`` when that row failed or was not
    asked for): ``speedup``, the reference's median over its own, and for training rows
    with ``losses``, ``loss_change_first`` and ``loss_change_later``, the relative change
    of the composite loss at step 1 and at step :data:`LOSS_STEP`. Set on every save and
    table, so an incomplete file has them for the rows it holds."""
    base = {
        (r["bench"], r["size"]): r
        for r in records
        if r["bench"] in REFERENCE_MODES
        and r["mode"] == REFERENCE_MODES[r["bench"]]
        and "error" not in r
    }
    for row in records:
        if row["bench"] not in REFERENCE_MODES or "error" in row:
            continue
        reference = base.get((row["bench"], row["size"]))
        row["speedup"] = (
            None if reference is None else round(reference["median_s"] / row["median_s"], 2)
        )
        ours, theirs = row.get("losses", []), (reference or {}).get("losses", [])
        for key, step in (("loss_change_first", 1), ("loss_change_later", LOSS_STEP)):
            if len(ours) < LOSS_STEP:  # a row from before losses were recorded
                row.pop(key, None)
            elif len(theirs) >= LOSS_STEP and theirs[step - 1]:
                row[key] = (ours[step - 1] - theirs[step - 1]) / abs(theirs[step - 1])
            else:
                row[key] = None


def _ratio(record: dict[str, Any]) -> str:
    """A row's speed-up for the table (``—`` without its reference)."""
    return "—" if record.get("speedup") is None else f"{record['speedup']:.2f}x"


def _checkpoint(args: argparse.Namespace) -> str | None:
    if args.checkpoint == "none":
        return None
    path = Path(args.checkpoint)
    return str(path.resolve()) if path.is_file() else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _markdown_table(title: str, header: str, rows: list[str]) -> list[str]:
    """A ``## title`` section with a markdown table (cells separated by `` | ``)."""
    columns = header.count("|") + 1
    return ["", f"## {title}", "", f"| {header} |", "|---" * columns + "|"] + [
        f"| {row} |" for row in rows
    ]


def _gemm_line(runs: dict[str, dict[str, Any]]) -> str:
    """``fp32 375 GFLOP/s (peak 390, spread 4%), bf16 ...``."""
    return ", ".join(
        f"{'fp32' if dtype == 'float32' else 'bf16'} {run['gflops']:.0f} GFLOP/s (peak "
        f"{run['peak_gflops']:.0f}, {_spread(run)})"
        for dtype, run in runs.items()
    )


def _spread(record: dict[str, Any]) -> str:
    """How far the median is above the minimum, ``NOISY`` when it is too far to trust."""
    return f"spread {record['spread']:.0%}{' NOISY' if record['noisy'] else ''}"


def _failed(record: dict[str, Any], cells: int) -> str:
    """A table row for a measurement that failed: its error in the first cell after the
    mode, the other cells empty."""
    error = record["error"].replace("|", "/")
    size = f"{record['size']}² | " if "size" in record else ""
    return f"{size}{record.get('mode', '')} | failed: {error}" + " | " * (cells - 1)


class _Unknown(dict):
    """A row for a table's title: ``?`` for what a failed block's rows lack."""

    def __missing__(self, key: str) -> str:
        return "?"


def _paper_run_hours(records: list[dict[str, Any]]) -> list[str]:
    """The line under the training table: the paper's run in hours of training steps alone
    (no data loading or validation) per measured mode, when the suite timed the paper's
    size and batch."""
    rows = [
        r
        for r in records
        if r["bench"] == "train"
        and "error" not in r
        and (r["size"], r["batch"]) == (PAPER_RUN["size"], PAPER_RUN["batch"])
    ]
    if not rows:
        return []
    steps = PAPER_RUN["epochs"] * PAPER_RUN["items_per_epoch"] // PAPER_RUN["batch"]
    hours = ", ".join(f"{r['mode']} {steps * r['median_s'] / 3600:.1f} h" for r in rows)
    return [
        "",
        f"The paper's run ({PAPER_RUN['epochs']} VIDIT epochs of "
        f"{PAPER_RUN['items_per_epoch']:,} inputs: {steps:,} steps of batch "
        f"{PAPER_RUN['batch']} at {PAPER_RUN['size']}²), training steps alone: {hours}.",
    ]


def _change(value: float | None) -> str:
    """A relative change of the loss for the table (``—`` without its reference)."""
    return "—" if value is None else f"{value:+.1e}"


def _training_changes(records: list[dict[str, Any]]) -> list[str]:
    """The section after the training table: what each training mode changes in training,
    from the rows that recorded their ``losses`` (files before them have none)."""
    rows = [r for r in records if "loss_change_first" in r]
    if not rows:
        return []
    return _markdown_table(
        f"What each training mode changes (the composite loss on one fixed batch from the same "
        f"initial weights, against {REFERENCE_MODES['train']})",
        f"size | mode | loss, step 1 | change | loss, step {LOSS_STEP} (after {LOSS_STEP - 1} "
        "updates) | change",
        [
            f"{r['size']}² | {r['mode']} | {r['losses'][0]:.5f} | {_change(r['loss_change_first'])}"
            f" | {r['losses'][LOSS_STEP - 1]:.5f} | {_change(r['loss_change_later'])}"
            for r in rows
        ],
    )


def format_tables(result: dict[str, Any], gpu_tflops: float) -> str:
    """The human-readable tables of a suite run."""
    meta, records = result["meta"], [dict(r) for r in result["records"]]
    set_comparisons(records)  # a file of an older version, killed before its speed-ups
    where = meta["gpu"] or f"{meta['processor']}, {meta['threads']} threads"
    lines = [
        f"# relight benchmarks — {where}, torch {meta['torch']}, {meta.get('date', '')}",
        f"GEMM: {_gemm_line(meta['gemm'])}",
        "",
    ]
    if not result.get("complete", True):
        lines += [
            f"**Incomplete**: {len(records)} rows; `relight-bench suite --resume` with the same "
            "--output measures the rest.",
            "",
        ]
    lines += [
        f"Times are medians after a warm-up that runs until {STEADY_WINDOW} calls agree within "
        f"{STEADY_SPREAD:.0%}; spread = (median - min) / min, NOISY above {NOISY_SPREAD:.0%} "
        "(rerun on a quieter machine before trusting that row).",
    ]
    sections = [
        (
            "forward",
            "Inference (batch 1)",
            "size | mode | median s | min s | spread | speed-up | GFLOP | GFLOP/s | of GEMM | "
            "peak MiB",
            lambda r: (
                f"{r['size']}² | {r['mode']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                f"{_spread(r)[7:]} | "
                f"{_ratio(r)} | {r['gflop']} | {r['gflops']} | {r['gemm_ratio']:.0%} | "
                f"{r['peak_mem_mb']:.0f}"
            ),
        ),
        (
            "train",
            "Training step (batch {batch}, model + full loss + AdamW)",
            "size | mode | median s | min s | spread | speed-up | forward | loss | backward | "
            "optimizer | loss share | GFLOP/s | of GEMM | peak MiB",
            lambda r: (
                f"{r['size']}² | {r['mode']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                f"{_spread(r)[7:]} | "
                f"{_ratio(r)} | {r['forward_s']:.3f} | {r['loss_s']:.3f} | "
                f"{r['backward_s']:.3f} | {r['optimizer_s']:.3f} | {r['loss_share']:.0%} | "
                f"{r['gflops']} | {r['gemm_ratio']:.0%} | {r['peak_mem_mb']:.0f}"
            ),
        ),
        (
            "accuracy",
            "What each mode changes ({pairs} mini-VIDIT pairs, weights: {weights})",
            "mode | max abs diff vs fp32 | PSNR | ΔPSNR dB | SSIM | ΔSSIM",
            lambda r: (
                f"{r['mode']} | {r['max_abs']:.2e} | {r['psnr']:.3f} | "
                f"{r['d_psnr']:+.4f} | {r['ssim']:.4f} | {r['d_ssim']:+.5f}"
            ),
        ),
        (
            "data",
            "Data loader (1024² PNGs, batch 1)",
            "size | cache | workers | items/s | per worker",
            lambda r: (
                f"{r['size']}² | {'yes' if r['cache'] else 'no'} | {r['workers']} | "
                f"{r['items_per_s']} | {r['items_per_s_per_worker']}"
            ),
        ),
    ]
    for bench, title, header, row in sections:
        rows = [r for r in records if r["bench"] == bench]
        if rows:
            cells = header.count("|") - 1  # after size and mode
            lines += _markdown_table(
                title.format_map(_Unknown(next((r for r in rows if "error" not in r), rows[0]))),
                header,
                [_failed(r, cells) if "error" in r else row(r) for r in rows],
            )
            if bench == "train":
                lines += _paper_run_hours(rows) + _training_changes(rows)
    data = [r for r in records if r["bench"] == "data"]
    if data:
        need = gpu_tflops * 1e12 / (meta["train_gflop_per_item_1024"] * 1e9)
        one = [r for r in data if r["cache"] and r["workers"] == 1 and r["size"] == 1024]
        if one:
            workers = math.ceil(need / one[0]["items_per_s"])
            lines += [
                "",
                f"A GPU sustaining {gpu_tflops:.0f} TFLOP/s trains "
                f"{need:.1f} items/s at 1024² ({meta['train_gflop_per_item_1024']:.0f} "
                f"GFLOP per item, forward + backward): {workers} cached loader worker(s) "
                f"at {one[0]['items_per_s']} items/s each feed it (estimate from FLOPs).",
            ]
    return "\n".join(lines)
