"""The ``bench`` command line: data preparation, the model zoo, runs and reports."""

from __future__ import annotations

import json
import sys

import click

from .errors import BenchError


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


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


from .cli_data import data  # noqa: E402
from .cli_run import list_methods, report, run  # noqa: E402
from .cli_train import train  # noqa: E402
from .cli_zoo import zoo  # noqa: E402

for command in (data, zoo, run, report, list_methods, train):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
