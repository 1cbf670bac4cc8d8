"""What a faster execution mode costs in accuracy: its outputs against the float32
reference (max abs difference) and against the ground truth (change in PSNR and SSIM), on
mini-VIDIT validation pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from relight.bench.forward import build_net
from relight.checkpoints import net_from_checkpoint
from relight.data.cache import FileReader
from relight.data.datasets import PairsDataset
from relight.data.pairs import index_pairs
from relight.data.synthetic import RenderSettings
from relight.metrics import psnr, ssim
from relight.models.execution import prepare
from relight.models.s3net import batch_input

#: Rendered when the ``--minividit`` folder holds no pairs: a small validation-only
#: mini-VIDIT.
FALLBACK_RENDER = dict(
    size=128, train_scenes=2, val_scenes=4, pairs_per_val_scene=2, shifted_scenes=0, spp=8
)


def render_needed(root: Path) -> RenderSettings | None:
    """What to render into ``root`` before its validation pairs are measured (``None``:
    nothing). A complete render is used whatever its settings or renderer version (which
    :func:`relight.data.synthetic.is_rendered` also compares); a stopped one is resumed with
    the settings its ``minividit.json`` names; a folder without ``minividit.json`` is used
    when it has input pictures (pairs the renderer did not make), else it gets
    :data:`FALLBACK_RENDER` (a render stopped before it wrote its summary left empty
    folders: measuring them failed with "no .png inputs")."""
    summary = root / "minividit.json"
    if summary.is_file():
        saved = json.loads(summary.read_text())
        if saved.get("complete"):
            return None
        return RenderSettings(**saved.get("settings", FALLBACK_RENDER))
    if any((root / "validation" / "input").glob("*.png")):
        return None
    return RenderSettings(**FALLBACK_RENDER)


def minividit_pairs(root: Path) -> Path:
    """``root/validation`` of a mini-VIDIT, rendered first when :func:`render_needed`
    says so."""
    settings = render_needed(root)
    if settings is not None:
        from relight.data.synthetic import render_minividit

        render_minividit(root, settings, progress=False)
    return root / "validation"


def measure_accuracy(spec: dict[str, Any]) -> dict[str, Any]:
    """Per mode: max |output - float32 output|, mean PSNR/SSIM and their change."""
    device = torch.device(spec["device"])
    if spec.get("checkpoint"):
        net, _ = net_from_checkpoint(spec["checkpoint"])
    else:
        net = build_net(spec, global_residual=True)
    pairs = index_pairs(minividit_pairs(Path(spec["minividit"])))
    loader = DataLoader(PairsDataset(pairs, FileReader(spec.get("image_size"))), batch_size=4)
    batches = list(loader)
    scores: dict[str, dict[str, Any]] = {}
    reference: list[torch.Tensor] = []
    for mode in spec["modes"]:
        run = prepare(net, mode, device)
        outputs = [run(batch_input(b, net.config.depth)).clamp(0, 1).cpu() for b in batches]
        if not reference:
            reference = outputs
        targets = [b["target"] for b in batches]
        scores[mode] = {
            "psnr": torch.cat([psnr(o, t) for o, t in zip(outputs, targets, strict=True)])
            .mean()
            .item(),
            "ssim": torch.cat(
                [ssim(o.double(), t.double()) for o, t in zip(outputs, targets, strict=True)]
            )
            .mean()
            .item(),
            "max_abs": max(
                (o - r).abs().max().item() for o, r in zip(outputs, reference, strict=True)
            ),
        }
    base = scores[spec["modes"][0]]
    for values in scores.values():
        values["d_psnr"] = values["psnr"] - base["psnr"]
        values["d_ssim"] = values["ssim"] - base["ssim"]
    return {
        "pairs": len(pairs),
        "weights": spec.get("checkpoint") or "random (global residual)",
        "modes": scores,
    }
