"""``relight-data check``: every planted fault of a folder is listed in one run, and
nothing else (a clean folder has no problem)."""

from __future__ import annotations

import configparser
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from relight.cli.data import main
from relight.data.check import KINDS, DataFolder, check_folders, find_folders
from relight.data.formats import DataFormatError
from relight.data.vidit import index_vidit

from .vidit_factory import lit_image, lose_header_brace, write_pairs, write_vidit

LIGHTS = [(2500, "N"), (6500, "E"), (4500, "W")]


def save_depth(path: Path, depth: np.ndarray) -> None:
    np.save(path, {"normalized_depth": depth.astype(np.float32)}, allow_pickle=True)


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def planted_train(root: Path) -> dict[tuple[str, str], str]:
    """A track-2 train folder with 14 scenes, all but scene 13 broken in their own way;
    returns the expected problems: (file name, kind) -> text the message must hold."""
    write_vidit(root, scenes=range(14), size=16, lightings=LIGHTS)
    cut(root / "Image000_2500_N.png")
    (root / "Image001_2500_N.png").write_text("<html>Rate limit exceeded</html>")
    Image.fromarray(lit_image(2, 2500, "N", 16)[..., 0]).save(root / "Image002_2500_N.png")
    save_depth(root / "Image003.npy", np.ones((8, 16)))
    (root / "Image004.npy").unlink()
    nan = np.ones((16, 16))
    nan[2, 3] = np.nan
    save_depth(root / "Image005.npy", nan)
    (root / "Image006_6500_E.png").write_bytes(b"")
    (root / "Image007.npy").write_bytes(b"")
    (root / "Image008_4500_W.png").unlink()
    shutil.copy(root / "Image009_2500_N.png", root / "Image009_2500_N (1).png")
    Image.fromarray(lit_image(9, 6500, "E", 16)[..., :3]).save(root / "Image9_6500_E.png")
    Image.fromarray(lit_image(10, 4500, "W", 16)[..., :3]).save(
        root / "Image010_4500_W.png", format="JPEG"
    )
    cut(root / "Image011.npy")
    Image.fromarray(lit_image(12, 6500, "E", 8), "RGBA").save(root / "Image012_6500_E.png")
    (root / "notes.txt").write_text("downloaded from ...")
    (root / "Image013_2500_N.png.part").write_bytes(b"\x89PNG")
    (root / "__MACOSX").mkdir()
    return {
        ("Image000_2500_N.png", "truncated"): "corrupt or truncated image",
        ("Image001_2500_N.png", "unreadable"): "not an image file",
        ("Image002_2500_N.png", "mode"): "image mode 'L'",
        ("Image003.npy", "size_mismatch"): "depth is (8, 16) but all 3 images",
        ("Image004.npy", "missing_depth"): "missing; the 3 images of scene Image004",
        ("Image005.npy", "bad_depth"): "1 NaN or infinite",
        ("Image006_6500_E.png", "empty"): "empty image file (0 bytes",
        ("Image007.npy", "empty"): "empty depth file (0 bytes",
        ("Image008_*.png", "missing_lightings"): "has 2 of the 3 lightings of this "
        "folder; missing Image008_4500_W.png",
        ("Image009_2500_N (1).png", "duplicate"): "a copy of Image009_2500_N.png",
        ("Image009_6500_E.png", "duplicate"): "another file for scene Image009 under 6500_E",
        ("Image010_4500_W.png", "format"): "JPEG data in a .png file",
        ("Image011.npy", "truncated"): "truncated pickled .npy",
        ("Image012_6500_E.png", "size_mismatch"): "image is (8, 8) but its depth Image012.npy",
        ("notes.txt", "stray"): "not a track-2 train file",
        ("Image013_2500_N.png.part", "stray"): "a partial download of Image013_2500_N.png",
        ("__MACOSX", "stray"): "a folder here",
    }


def planted_pairs(root: Path) -> dict[tuple[str, str], str]:
    write_pairs(root, count=5, size=16)
    (root / "guide" / "Pair000.npy").unlink()
    cut(root / "guide" / "Pair001.png")
    Image.fromarray(lit_image(1, 6500, "E", 32)).save(root / "target" / "Pair002.png")
    inf = np.ones((16, 16))
    inf[0, 0] = np.inf
    save_depth(root / "input" / "Pair003.npy", inf)
    Image.fromarray(lit_image(4, 2500, "N", 16)[..., :3]).convert("P").save(
        root / "input" / "Pair004.png"
    )
    Image.fromarray(lit_image(5, 2500, "N", 16)).save(root / "target" / "Pair099.png")
    (root / "input" / "readme.md").write_text("pairs")
    return {
        ("guide/Pair000.npy", "missing_depth"): "guide depth of pair 'Pair000' is missing",
        ("guide/Pair001.png", "truncated"): "corrupt or truncated image",
        ("target/Pair002.png", "size_mismatch"): "the files of pair 'Pair002' differ in size",
        ("input/Pair003.npy", "bad_depth"): "1 NaN or infinite",
        ("input/Pair004.png", "mode"): "image mode 'P'",
        ("target/Pair099.png", "stray"): "not a file of any pair",
        ("input/readme.md", "stray"): "not a file of any pair",
    }


def found(report, root: Path) -> dict[tuple[str, str], str]:
    return {(str(Path(p.path).relative_to(root)), p.kind): p.message for p in report.problems}


def test_every_planted_fault_of_a_train_folder_is_listed_at_once(tmp_path):
    expected = planted_train(tmp_path / "train")
    report = check_folders([DataFolder(tmp_path / "train", "train")], workers=0, progress=False)
    got = found(report, tmp_path / "train")
    assert set(got) == set(expected)  # every fault, and no false alarm on the good files
    for key, text in expected.items():
        assert key[0] in got[key] and text in got[key], key
    assert len({kind for _, kind in got}) >= 10
    assert report.files == 14 * 3 + 14 - 1 - 1 + 1  # images (+ the copy by name) and depths
    assert not report.ok and report.count("error") == 10 and report.count("warning") == 7


def test_every_planted_fault_of_a_pairs_folder_is_listed_at_once(tmp_path):
    expected = planted_pairs(tmp_path / "pairs")
    (report_folder,) = find_folders(tmp_path / "pairs")
    assert report_folder == DataFolder(tmp_path / "pairs", "pairs")
    report = check_folders([report_folder], workers=0, progress=False)
    got = found(report, tmp_path / "pairs")
    assert set(got) == set(expected)
    for key, text in expected.items():
        assert text in got[key], key


def test_clean_folders_have_no_problem_and_workers_agree(tmp_path):
    write_vidit(tmp_path / "train", scenes=range(6), size=16, lightings=LIGHTS)
    write_pairs(tmp_path / "validation", count=2, size=16)
    folders = find_folders(tmp_path)  # a folder holding both, as the mini-VIDIT
    assert [(f.root.name, f.layout) for f in folders] == [
        ("train", "train"),
        ("validation", "pairs"),
    ]
    report = check_folders(folders, workers=0, progress=False)
    assert report.ok and report.files == 6 * 4 + 2 * 5
    planted_train(tmp_path / "train")
    serial = check_folders(folders, workers=0, progress=False)
    parallel = check_folders(folders, workers=2, progress=False)
    assert parallel.problems == serial.problems and len(serial.problems) == 17


def test_vidit_ground_truth_folder_beside_the_pairs_is_found(tmp_path):
    vidit = tmp_path / "VIDIT"  # validation/ and validation_gt/, as VIDIT's zips unpack
    write_pairs(vidit / "validation", count=2, size=16, target=False)
    write_pairs(tmp_path / "scratch", count=2, size=16)
    (tmp_path / "scratch" / "target").rename(vidit / "validation_gt")
    (vidit / "validation_gt" / "Pair001.png").unlink()
    (folder,) = find_folders(vidit)
    assert folder == DataFolder(vidit / "validation", "pairs", vidit / "validation_gt")
    report = check_folders([folder], workers=0, progress=False)
    assert [(Path(p.path).name, p.kind) for p in report.problems] == [
        ("Pair001.png", "missing_file")
    ]


def test_command_line_lists_problems_writes_json_and_sets_the_exit_status(tmp_path, capsys):
    expected = planted_train(tmp_path / "train")
    out = tmp_path / "reports" / "problems.json"
    args = ["check", str(tmp_path / "train"), "--workers", "0", "--quiet", "--json", str(out)]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert "17 problems (10 errors, 7 warnings)" in printed
    assert all(name in printed for name, _ in expected)
    report = json.loads(out.read_text())
    assert not report["ok"] and report["errors"] == 10 and report["files"] == 55
    assert {(Path(p["path"]).name, p["kind"]) for p in report["problems"]} == set(expected)
    assert all(p["severity"] == KINDS[p["kind"]][0] for p in report["problems"])

    write_vidit(tmp_path / "clean", scenes=range(3), size=16, lightings=LIGHTS)
    assert main(["check", str(tmp_path / "clean"), "--workers", "0", "--quiet"]) == 0
    assert "no problems" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [["check", "{tmp}/nowhere"], ["check", "{tmp}"], ["check", "{tmp}", "--workers", "-1"], []],
    ids=["missing folder", "no data layout", "negative workers", "no command"],
)
def test_command_line_usage_errors_exit_with_2(tmp_path, args, capsys):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    with pytest.raises(SystemExit) as exit_info:
        main([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_console_script_is_declared():
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    assert "relight-data = relight.cli.data:main" in scripts.splitlines()


def test_damaged_npy_header_is_reported_not_raised(tmp_path):
    """A .npy whose header lost its closing brace is a problem of the check and an error
    of the index that names it (numpy raises a tokenize error for it)."""
    root = write_vidit(tmp_path / "train", scenes=range(3), size=16, lightings=LIGHTS)
    lose_header_brace(root / "Image001.npy")
    report = check_folders([DataFolder(root, "train")], workers=0, progress=False)
    assert [(Path(p.path).name, p.kind) for p in report.problems] == [("Image001.npy", "truncated")]
    assert "truncated or damaged .npy header" in report.problems[0].message
    with pytest.raises(DataFormatError, match=r"Image001\.npy: truncated or damaged"):
        index_vidit(root)


def test_a_lighting_that_is_not_vidits_is_its_own_problem(tmp_path):
    """A typo'd name is reported as such, not as a lighting every other scene lacks."""
    root = write_vidit(tmp_path / "train", scenes=range(3), size=16, lightings=LIGHTS)
    shutil.copy(root / "Image001_2500_N.png", root / "Image001_4550_N.png")
    report = check_folders([DataFolder(root, "train")], workers=0, progress=False)
    assert [(Path(p.path).name, p.kind, p.severity) for p in report.problems] == [
        ("Image001_4550_N.png", "unknown_lighting", "error")
    ]
    assert (
        "lighting '4550_N' is not one of VIDIT's 40 (temperatures 2500"
        in report.problems[0].message
    )


@pytest.mark.parametrize(
    ("low", "high"), [(0, 255), (0, 0), (-1, 1)], ids=["0..255", "zeros", "negative"]
)
def test_depth_that_is_not_normalized_depth_is_a_warning(tmp_path, low, high):
    """A plain .npy in 0..255 (or all 0, or negative) decodes fine; the check says so."""
    root = write_vidit(tmp_path / "train", scenes=range(3), size=16, lightings=LIGHTS)
    np.save(root / "Image001.npy", np.linspace(low, high, 256, dtype=np.float32).reshape(16, 16))
    report = check_folders([DataFolder(root, "train")], workers=0, progress=False)
    assert [(Path(p.path).name, p.kind, p.severity) for p in report.problems] == [
        ("Image001.npy", "depth_range", "warning")
    ]
    assert f"Image001.npy: depth values in [{low}, {high}]" in report.problems[0].message


def test_scenes_and_pairs_of_another_size_are_listed(tmp_path):
    root = write_vidit(tmp_path / "train", scenes=range(3), size=16, lightings=LIGHTS)
    write_vidit(root, scenes=(3,), size=32, lightings=LIGHTS)
    pairs = write_pairs(tmp_path / "validation", count=3, size=16)
    write_pairs(tmp_path / "scratch" / "big", count=3, size=32)
    for folder in ("input", "guide", "target"):
        for path in (tmp_path / "scratch" / "big" / folder).glob("Pair002.*"):
            path.replace(pairs / folder / path.name)
    report = check_folders(find_folders(tmp_path), workers=0, progress=False)
    assert [(Path(p.path).relative_to(tmp_path), p.kind) for p in report.problems] == [
        (Path("train/Image003_2500_N.png"), "mixed_sizes"),
        (Path("validation/input/Pair002.png"), "mixed_sizes"),
    ]
    assert "scene Image003 is (32, 32) but 3 others of this folder are (16, 16)" in (
        report.problems[0].message
    )
    assert report.problems[1].severity == "warning"


def test_ground_truth_folder_with_a_folder_of_folders_is_refused(tmp_path, capsys):
    write_vidit(tmp_path / "VIDIT" / "train", scenes=range(3), size=16, lightings=LIGHTS)
    write_pairs(tmp_path / "VIDIT" / "validation", count=2, size=16, target=False)
    gt = write_pairs(tmp_path / "gt", count=2, size=16) / "target"
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(tmp_path / "VIDIT"), "--gt-dir", str(gt), "--quiet"])
    assert exit_info.value.code == 2
    assert "VIDIT: holds data folders, and a ground-truth folder" in capsys.readouterr().err
    args = ["check", str(tmp_path / "VIDIT" / "validation"), "--gt-dir", str(gt), "--quiet"]
    assert main([*args, "--workers", "0"]) == 0  # given with the pairs folder, it is used
