"""The NTIRE 2021 challenge submission: the relit images and ``readme.txt`` in one zip."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from relight.files import atomic_write


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
