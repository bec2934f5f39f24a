"""``bench run``, ``bench report`` and ``bench methods``."""

from __future__ import annotations

import click

from .errors import BenchError


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    return [int(x) for x in _floats(text)]


def _params(items: tuple[str, ...]) -> dict[str, dict]:
    """METHOD.KEY=VALUE (VALUE parsed as JSON when possible) -> {method: {key: value}}."""
    import json

    out: dict[str, dict] = {}
    for item in items:
        try:
            lhs, value = item.split("=", 1)
            method, key = lhs.split(".", 1)
        except ValueError:
            raise BenchError(f"--param expects METHOD.KEY=VALUE, got {item!r}") from None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method, {})[key] = parsed
    return out


@click.command()
@click.option("--methods", required=True, help="Comma-separated method names (see `bench methods`).")
@click.option("--source", "sources", default="all-white-box", show_default=True,
              help="Surrogate recognizer(s), comma-separated; 'a+b' is an ensemble; default: every differentiable zoo model.")
@click.option("--target", "targets", default="all", show_default=True, help="Target recognizers, comma-separated, or 'all'.")
@click.option("--split", default="celebrities", show_default=True, help="Protocol split: celebrities or commons.")
@click.option("--budget", default="1200", show_default=True, help="L2 budget(s) on 0-255 pixels; a list gives a sweep.")
@click.option("--seed", "seeds", default="0", show_default=True, help="Seed(s), comma-separated.")
@click.option("--n-inference", default="10", show_default=True, help="Inference photos per person (a list gives a sweep).")
@click.option("--backend", type=click.Choice(["faiss", "torch"]), default="faiss", show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available).")
@click.option("--param", "-p", "params", multiple=True, help="Method parameter override METHOD.KEY=VALUE (repeatable).")
@click.option("--results", type=click.Path(file_okay=False), help="Result store folder (default: results/).")
@click.option("--report/--no-report", default=True, show_default=True, help="Write Tables 1-3 to reports/ afterwards.")
def run(methods, sources, targets, split, budget, seeds, n_inference, backend, device, params, results, report):
    """Craft masks, protect test photos and measure 1:N identification against every target."""
    import torch

    import methods as method_pkg
    from .report import write_reports
    from .runner import RunConfig, Runner, default_sources
    from .store import ResultStore
    from .zoo import RECOGNIZERS

    method_names = method_pkg.METHODS.parse_list(methods)
    source_list = default_sources() if sources == "all-white-box" else [s.strip() for s in sources.split(",") if s.strip()]
    for s in source_list:
        for name in s.split("+"):
            RECOGNIZERS.entry(name)
    cfg = RunConfig(
        methods=method_names, sources=source_list, targets=RECOGNIZERS.parse_list(targets), split=split,
        budgets=_floats(budget), seeds=_ints(seeds), n_inference=_ints(n_inference), backend=backend,
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"), params=_params(params),
    )
    store = ResultStore(results) if results else ResultStore()
    rows = Runner(cfg, store).run()
    click.echo(f"{len(rows)} cells in {store.root}")
    if report:
        for path in write_reports(store.rows()):
            click.echo(f"wrote {path}")


@click.command("report")
@click.option("--results", type=click.Path(file_okay=False), help="Result store folder (default: results/).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: reports/).")
@click.option("--budget", default=1200.0, show_default=True)
@click.option("--n-inference", default=10, show_default=True)
def report(results, out, budget, n_inference):
    """Write Tables 1-3 (CSV and LaTeX) from the stored results."""
    from pathlib import Path

    from .report import write_reports
    from .store import ResultStore

    rows = (ResultStore(results) if results else ResultStore()).rows()
    if not rows:
        raise BenchError("the result store is empty: run `bench run` first")
    for path in write_reports(rows, Path(out) if out else None, budget, n_inference):
        click.echo(f"wrote {path}")


@click.command("methods")
@click.option("--json", "as_json", is_flag=True)
def list_methods(as_json):
    """Registered mask methods with their kind and default parameters."""
    import methods as method_pkg
    from .cli import echo_json

    infos = [method_pkg.method_info(n) for n in method_pkg.METHODS.names()]
    if as_json:
        echo_json(infos)
        return
    for info in infos:
        params = ", ".join(f"{k}={v}" for k, v in info["parameters"].items())
        click.echo(f"{info['name']:<18} {info['kind']:<10} {info['description']}")
        if params:
            click.echo(f"{'':<29} {params}")
