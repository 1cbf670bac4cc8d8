"""Build hook: the wheel carries the Hydra configs of the top-level ``conf/`` as package data.

``conf/`` stays the one source of truth in the repository; a built wheel (``pip install .``,
``pip install git+...``, ``python -m build``) gets a copy at ``relight/conf`` that
:func:`relight.paths.config_dir` finds. An editable install reads ``conf/`` in place.
Everything else is declared in ``setup.cfg``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildWithConfigs(build_py):
    """``build_py`` that also copies ``conf/**/*.yaml`` into ``relight/conf``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads conf/ from the source tree
        target = Path(self.build_lib) / "relight" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        for source in sorted(CONF.rglob("*.yaml")):
            destination = target / source.relative_to(CONF)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithConfigs})
