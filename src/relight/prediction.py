"""Relight your own images: a :class:`Predictor` (S3Net on a device, at a precision, under
a size policy) and the two ways to run it, one pair of files or an NTIRE pairs folder
(``DIR/input/PairNNN.{png,npy}``, ``DIR/guide/...``, optional ``DIR/target/``), with
metrics against the ground truth when there is one and the challenge zip. The command is
``relight-predict`` (:mod:`relight.cli.predict`)."""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from relight.any_size import SizePolicy, relight_any_size
from relight.data.pairs import PairFiles, index_pairs
from relight.data.photo_pairs import DepthOptions, read_pair
from relight.evaluation import format_table, mean_results, score_rows
from relight.files import ensure_writable_dir, write_text_atomic
from relight.metrics import RelightMetrics
from relight.models import S3Net
from relight.models.execution import BF16_TOLERANCE, prepare
from relight.models.monocular_depth import DEFAULT_DEPTH_MODEL, MonocularDepth, load_depth_model
from relight.models.s3net import batch_input
from relight.panels import save_png
from relight.submission import submission_readme, write_submission

#: ``--precision`` picks the fastest execution mode of that precision (relight.models.execution);
#: ``auto`` is resolved on the first image (:func:`auto_candidates`, :class:`AutoChoice`)
PRECISIONS = {"fp32": "eager-fp32", "bf16": "bf16-cl", "auto": "auto"}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively (tensor cores): CUDA GPUs from Ampere
    (compute capability 8) on. ``torch.cuda.is_bf16_supported()`` also says yes where bf16
    is only emulated (a V100 or T4), and asks the current GPU, not ``device``. A CPU may
    run bf16 natively too (AVX-512 BF16, AMX), but there ``auto`` stays fp32: bf16 on a
    CPU is asked for by name (``--precision bf16``)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def auto_candidates(device: torch.device) -> tuple[str, ...]:
    """The modes ``--precision auto`` times on the first image, the reference (eager fp32)
    last: on a CUDA GPU ``fp32-cl`` too, and ``bf16-cl`` where bfloat16 is native. Which is
    fastest depends on the GPU, the size and the host's launch speed: on an H200 at 1024²,
    batch 1, one session measured bf16-cl 18.4 ms and eager fp32 (TF32 convolutions)
    14.7 ms, the next 36.7, 32.9 and fp32-cl 20.3 ms (docs/performance.md). Compiled modes
    are left out: they compile for 30-50 s."""
    bf16 = ("bf16-cl",) if native_bf16(device) else ()
    channels_last = ("fp32-cl",) if device.type == "cuda" else ()
    return (*bf16, *channels_last, "eager-fp32")


#: Timed rounds of the candidates on the first image under ``--precision auto``, after
#: a warm-up round; the candidates take turns, so a GPU still raising its clocks or a busy
#: moment does not favour one of them
AUTO_ROUNDS = 2


@dataclass(frozen=True)
class AutoChoice:
    """What ``--precision auto`` measured on the first image and kept: per candidate mode,
    the seconds of its fastest timed run and its mean absolute difference from fp32."""

    mode: str
    seconds: dict[str, float]
    mean_abs: dict[str, float]

    def __str__(self) -> str:
        timed = ", ".join(
            f"{mode} {1000 * s:.1f} ms ({self.mean_abs[mode]:.4f} from fp32)"
            for mode, s in self.seconds.items()
        )
        return f"--precision auto: {self.mode}, timed on the first image: {timed}"


@dataclass
class Predictor:
    """S3Net on a device, at a precision, under a size policy; call it on an item.

    ``precision``: ``fp32``, ``bf16`` (bfloat16 autocast with channels_last, the fastest
    bf16 mode), ``auto``, or any execution mode name of :mod:`relight.models.execution`.
    ``auto`` times each of :func:`auto_candidates` on the first image and keeps the
    fastest whose output is within
    :data:`~relight.models.execution.BF16_TOLERANCE` of fp32's (:attr:`auto_choice`). Depth
    maps a pair lacks are estimated with ``depth_model`` (a name or folder for
    :func:`~relight.models.monocular_depth.load_depth_model`, or a loaded model) and
    written to ``save_depth`` when given.
    """

    net: S3Net
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    policy: SizePolicy = field(default_factory=SizePolicy)
    tile_progress: bool = False
    depth_model: str | MonocularDepth = DEFAULT_DEPTH_MODEL
    save_depth: Path | None = None

    def __post_init__(self) -> None:
        self.mode = PRECISIONS.get(self.precision, self.precision)
        #: modes still to be timed on the first image (``auto`` with more than one)
        self.candidates: tuple[str, ...] = ()
        #: what ``auto`` measured and kept, once it has chosen
        self.auto_choice: AutoChoice | None = None
        if self.mode == "auto":
            *others, self.mode = auto_candidates(self.device)
            self.candidates = (*others, self.mode) if others else ()
        self.policy.check(self.net.min_size)
        self.forward = prepare(self.net, self.mode, self.device)  # ValueError for unknown modes

    @torch.inference_mode()
    def __call__(self, item: dict[str, Any]) -> tuple[torch.Tensor, float]:
        """The relit (3, H, W) image in [0, 1] on the CPU, and the seconds it took from the
        copy to the device on (for the first image under ``auto``: the copy and the kept
        mode's fastest timed run)."""
        start = time.perf_counter()
        batch = {k: v[None].to(self.device) for k, v in item.items() if torch.is_tensor(v)}
        x = batch_input(batch, self.net.config.depth)
        if self.candidates:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            copy_s = time.perf_counter() - start
            out, seconds = self._choose_auto(x)
            return out, copy_s + seconds
        out = self._relight(self.forward, x, self.tile_progress)
        return out, time.perf_counter() - start  # .cpu() waited for the device

    def _relight(
        self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        return relight_any_size(forward, x, self.policy, self.net.min_size, progress)[0].cpu()

    def _timed(
        self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
    ) -> tuple[torch.Tensor, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = self._relight(forward, x, progress=False)
        return out, time.perf_counter() - start  # .cpu() waited for the device

    def _choose_auto(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Run the candidates in turn on ``x``, :data:`AUTO_ROUNDS` timed rounds after a
        warm-up round; keep the fastest (its fastest run) within the tolerance of fp32 (the
        last candidate), warn when a mode is over it. Returns its output and seconds."""
        candidates, self.candidates = self.candidates, ()
        outputs: dict[str, torch.Tensor] = {}
        runs: dict[str, list[float]] = {mode: [] for mode in candidates}
        for round_ in range(AUTO_ROUNDS + 1):
            for mode in candidates:
                outputs[mode], seconds = self._timed(prepare(self.net, mode, self.device), x)
                if round_:
                    runs[mode].append(seconds)
        fastest = {mode: min(times) for mode, times in runs.items()}
        reference = outputs[candidates[-1]]
        mean_abs = {m: (out - reference).abs().mean().item() for m, out in outputs.items()}
        tolerance = BF16_TOLERANCE["mean_abs"]
        for mode in candidates:
            if mean_abs[mode] > tolerance:
                warnings.warn(
                    f"--precision auto: {mode} moved the first image by {mean_abs[mode]:.4f} "
                    f"(mean abs) from fp32, over the {tolerance} tolerance: not using it",
                    stacklevel=3,
                )
        self.mode = min((m for m in candidates if mean_abs[m] <= tolerance), key=fastest.get)
        self.auto_choice = AutoChoice(self.mode, fastest, mean_abs)
        self.forward = prepare(self.net, self.mode, self.device)  # its layout back
        return outputs[self.mode], fastest[self.mode]

    def depth_estimator(self, pairs: Sequence[PairFiles]) -> MonocularDepth | None:
        """The monocular depth model (loaded once, before any work) when the network takes
        depth and some pair lacks a depth map; ``None`` otherwise. Checks ``save_depth`` is
        writable."""
        missing = [p for p in pairs if p.input_depth is None or p.guide_depth is None]
        if not self.net.config.depth or not missing:
            return None
        if self.save_depth is not None:
            ensure_writable_dir(self.save_depth, "--save-depth folder")
        if isinstance(self.depth_model, MonocularDepth):
            return self.depth_model
        return load_depth_model(self.depth_model, self.device)

    def read(self, pair: PairFiles, depth: DepthOptions, estimator: MonocularDepth | None):
        """The item of a pair of files (:func:`relight.data.photo_pairs.read_pair`)."""
        return read_pair(pair, depth, self.net.config.depth, estimator, self.save_depth)


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
) -> dict[str, Any]:
    """Relight every pair of a pairs folder into ``output_dir/<name>.png``; see the module doc.

    Depth files the pairs lack are estimated (see :class:`Predictor`). Returns the summary
    (also ``metrics.json`` when there is ground truth).
    """
    pairs = index_pairs(
        pairs_dir, gt_dir, check_sizes=False, allow_pickle=depth.allow_pickle, require_depth=False
    )
    ensure_writable_dir(output_dir)
    estimator = predictor.depth_estimator(pairs)
    has_target = pairs[0].target is not None
    metrics = RelightMetrics(lpips_weights=lpips_weights) if has_target else None
    identity = metrics.fresh() if metrics is not None else None
    rows: list[dict[str, Any]] = []
    written, seconds = [], []
    bar = tqdm(pairs, desc="relighting", unit="pair", disable=not progress, file=sys.stderr)
    for pair in bar:
        item = predictor.read(pair, depth, estimator)
        relit, took = predictor(item)
        written.append(save_png(relit, output_dir / f"{pair.name}.png"))
        seconds.append(took)
        bar.set_postfix_str(f"{pair.name} {took:.2f} s")
        if progress:
            tqdm.write(f"{pair.name}: {took:.2f} s ({relit.shape[-1]}x{relit.shape[-2]})")
        if metrics is not None:
            batch = {"input": item["input"][None], "target": item["target"][None]}
            rows += score_rows([pair.name], relit[None], batch, metrics, identity)
            rows[-1]["seconds"] = took
    runtime = statistics.fmean(seconds)
    summary: dict[str, Any] = {
        "images": len(written),
        "runtime_s_per_image": runtime,
        "device": str(predictor.device),
        "precision": predictor.precision,
        "mode": predictor.mode,
    }
    if predictor.auto_choice is not None:
        choice = predictor.auto_choice
        summary["auto"] = {"seconds": choice.seconds, "mean_abs_from_fp32": choice.mean_abs}
    if metrics is not None:
        results = mean_results(metrics, identity)
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
    predictor: Predictor, pair: PairFiles, output: Path, depth: DepthOptions = DepthOptions()
) -> float:
    """Relight one pair of files into ``output`` (a PNG), estimating a depth map it lacks
    (see :class:`Predictor`); returns the seconds the relighting took."""
    ensure_writable_dir(output.parent)
    relit, took = predictor(predictor.read(pair, depth, predictor.depth_estimator([pair])))
    save_png(relit, output)
    return took
