"""The ``bench`` command line: data preparation, the model zoo, runs and reports."""

from __future__ import annotations

import os
import sys

import click

from .cli_cloak import cloak, verify_cloak
from .cli_data import data
from .cli_evaluate import evaluate
from .cli_grid import grid
from .cli_records import records
from .cli_output import echo_json  # noqa: F401 (kept importable as bench.cli.echo_json)
from .cli_regress import regress
from .cli_run import list_methods, report, run
from .cli_train import train
from .cli_zoo import zoo
from .errors import BenchError
from .paths import ALIGN_AUTO_ENV


class BenchGroup(click.Group):
    """Turns BenchError (bad names, missing files, bad input) into a one-line error, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=BenchGroup)
@click.version_option(package_name="cloakbench")
def main() -> None:
    """Benchmark person-specific face-privacy masks under 1:N face identification."""
    # a command line has the main guard spawned workers need: align large batches on every core (an environment
    # flag, not an import of the aligner: commands that align nothing should not load it at start-up)
    os.environ.setdefault(ALIGN_AUTO_ENV, "1")


for command in (data, zoo, run, report, records, list_methods, train, regress, cloak, verify_cloak, evaluate, grid):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
