"""Build hook: the built-in split files (``datasets/splits/``, committed beside the code) ship inside the
wheel as ``bench/shipped_splits/``, so an installed ``bench`` finds them (``bench.paths.shipped_splits_dir``).
Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSplits(build_py):
    def run(self):
        super().run()
        source = Path(__file__).parent / "datasets" / "splits"
        target = Path(self.build_lib) / "bench" / "shipped_splits"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.glob("*.csv")) + [source / "manifest.json"]:
            shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildWithSplits})
