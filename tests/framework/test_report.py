"""``relight-report`` on fabricated sweep folders (the layout ``relight-train -m`` writes:
``<sweep>/<job number>_<run>_<variant>/.hydra/config.yaml`` and ``eval/metrics.json``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from relight.cli.report import main
from relight.evaluation import IDENTITY

IDENTITY_SCORES = {"psnr": 11.0, "ssim": 0.5}


def job(sweep: Path, number: int, variant: str, psnr: float | None, finished: bool = False) -> Path:
    """A job folder; ``psnr=None``: no ``eval/metrics.json`` (failed, unfinished, or with
    ``finished`` a run without an evaluation)."""
    folder = sweep / f"{number}_study_{variant}"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"run_name: study\nvariant: {variant}\n")
    if finished:
        (folder / "FINISHED").write_text("")
    if psnr is not None:
        (folder / "eval").mkdir()
        results = {"S3Net": {"psnr": psnr, "ssim": 0.6}, IDENTITY: IDENTITY_SCORES}
        summary = {"results": results, "convention": "sRGB, [0, 1]"}
        (folder / "eval" / "metrics.json").write_text(json.dumps(summary))
    return folder


def report(folder: Path, capsys) -> tuple[str, list[dict[str, str]]]:
    main([str(folder)])
    with open(folder / "ablation.csv", newline="") as handle:
        return capsys.readouterr().out, list(csv.DictReader(handle))


def test_every_job_of_several_sweeps_is_a_row(tmp_path, capsys):
    """Three sweeps in one folder: each job a row, whatever its number and variant."""
    multiruns = tmp_path / "multiruns"
    a, b, c = (multiruns / f"2026-01-0{day}_00-00-00" for day in (1, 2, 3))
    job(a, 0, "full", 15.0)
    job(a, 1, "no_attention", 14.0)
    job(b, 0, "full", 15.5)
    job(b, 1, "no_attention", 14.5)
    job(c, 0, "full", 16.0)
    out, rows = report(multiruns, capsys)
    assert "(5 jobs)" in out
    assert [(r["variant"], float(r["psnr"])) for r in rows] == [
        (f"{a.name}/0_study_full", 15.0),
        (f"{a.name}/1_study_no_attention", 14.0),
        (f"{b.name}/0_study_full", 15.5),
        (f"{b.name}/1_study_no_attention", 14.5),
        (f"{c.name}/0_study_full", 16.0),
        (IDENTITY, 11.0),
    ]
    printed = [line for line in out.splitlines() if line.startswith(f"| {a.name[:4]}")]
    assert len(printed) == 5  # the printed table's rows, named by folder


@pytest.mark.parametrize(
    ("variants", "names"),
    [
        (["full", "ssim"], ["full", "ssim"]),  # a sweep's variants: by name, as before
        (["full", "full"], ["0_full", "1_full"]),  # the same variant twice: with job numbers
    ],
)
def test_rows_of_one_sweep_keep_their_short_names(variants, names, tmp_path, capsys):
    for number, variant in enumerate(variants):
        job(tmp_path, number, variant, 15.0 + number)
    _, rows = report(tmp_path, capsys)
    assert [r["variant"] for r in rows] == [*names, IDENTITY]


def test_jobs_without_metrics_are_listed_not_dropped(tmp_path, capsys):
    job(tmp_path, 0, "full", 15.0)
    job(tmp_path, 1, "no_attention", None)  # failed (or still running)
    job(tmp_path, 2, "ssim", None, finished=True)  # finished with evaluate=false
    out, rows = report(tmp_path, capsys)
    assert [r["variant"] for r in rows] == ["full", IDENTITY]
    assert "# Ablation: study (3 jobs: 1 evaluated, 2 without eval/metrics.json)" in out
    assert "Not in the table: 2 job(s) without eval/metrics.json" in out
    assert "| 0 | full | 0_study_full | evaluated |" in out
    assert "| 1 | no_attention | 1_study_no_attention | failed or unfinished" in out
    assert "| 2 | ssim | 2_study_ssim | finished, not evaluated (evaluate=false?) |" in out
    assert (tmp_path / "ablation.md").read_text() in out


def test_a_sweep_whose_jobs_all_failed_says_how_many(tmp_path, capsys):
    job(tmp_path, 0, "full", None)
    job(tmp_path, 1, "ssim", None)
    with pytest.raises(SystemExit) as ended:
        main([str(tmp_path)])
    assert ended.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.endswith("; 2 job folder(s) without eval/metrics.json"), error
