"""Output helpers shared by the command modules (kept apart so bench.cli can import them all at the top)."""

from __future__ import annotations

import json

import click


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
