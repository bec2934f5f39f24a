"""``bench run``, ``bench report`` and ``bench methods``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .errors import BenchError
from .validate import Finite
from .validate import budget as budget_check


SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes 64-bit seeds


def _refuse(option: str, valid: str, got: str) -> BenchError:
    return BenchError(f"{option} takes {valid}, comma-separated; got {got!r}")


def _tokens(text: str, option: str, valid: str) -> list[str]:
    tokens = [x.strip() for x in text.split(",") if x.strip()]
    if not tokens:
        raise _refuse(option, valid, text)
    return tokens


def _budgets(text: str) -> list[float]:
    """L2 budgets: a NaN budget matches no stored cell, a negative one flips the mask, inf saturates every photo."""
    from .validate import MAX_BUDGET, budget

    valid = f"finite numbers > 0 and <= {MAX_BUDGET:.1f} (L2 on 0-255 pixels)"
    out = []
    for token in _tokens(text, "--budget", valid):
        try:
            out.append(budget(token))  # the one check every command's budgets go through
        except BenchError:
            raise _refuse("--budget", valid, token) from None
    return out


def _integers(text: str, option: str, low: int, high: int | None = None) -> list[int]:
    """Whole numbers in [low, high): '1.5' is refused, not truncated to 1."""
    valid = f"integers >= {low}" if high is None else f"integers from {low} to {high - 1}"
    out = []
    for token in _tokens(text, option, valid):
        try:
            value = int(token)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value >= high):
            raise _refuse(option, valid, token)
        out.append(value)
    return out


def _json_or_text(value: str):
    """VALUE as JSON (8, 1.5, true), else as a float ('nan', 'inf' are then refused as non-finite), else text."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _params(items: tuple[str, ...], run_methods: list[str]) -> dict[str, dict]:
    """METHOD.KEY=VALUE -> {method: {key: value}}, every method one of this run's and every value checked
    against that method's Params (type, finite, range), before anything is loaded."""
    from methods import METHODS
    from methods.base import validate_overrides

    out: dict[str, dict] = {}
    for item in items:
        try:
            lhs, value = item.split("=", 1)
            method, key = lhs.split(".", 1)
        except ValueError:
            raise BenchError(f"--param expects METHOD.KEY=VALUE, got {item!r}") from None
        if method not in run_methods:
            raise BenchError(f"--param {item!r}: {method!r} is not a method of this run; "
                             f"this run's methods: {', '.join(run_methods)}")
        out.setdefault(method, {})[key] = _json_or_text(value)
    return {m: validate_overrides(METHODS.entry(m).factory, overrides) for m, overrides in out.items()}


def _device(text: str | None) -> str:
    """A torch device that exists here: 'cpu', or 'cuda[:N]' with CUDA available and N < device_count()."""
    import torch

    has_cuda = torch.cuda.is_available()
    if text is None:
        return "cuda" if has_cuda else "cpu"
    count = torch.cuda.device_count() if has_cuda else 0
    available = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(count)] if count else [])
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    usable = device is not None and (
        (device.type == "cpu" and device.index in (None, 0))
        or (device.type == "cuda" and count > 0 and (device.index is None or device.index < count))
    )
    if not usable:
        why = "" if has_cuda else " (torch.cuda.is_available() is False)"
        raise BenchError(f"--device {text!r} is not a device here; available: {', '.join(available)}{why}")
    return str(device)


def _report_folder(report: bool | None, out: str | None) -> Path | None:
    """Where to write Tables 1-3, or None: only when asked (--report, or --out DIR), so a trial run
    never overwrites the committed reports/."""
    from .paths import reports_dir

    if report is False and out:
        raise BenchError("--out names a folder for the reports, but --no-report says not to write them")
    if not (report or out):
        return None
    return Path(out) if out else reports_dir()


@click.command()
@click.option("--methods", required=True, help="Comma-separated method names (see `bench methods`).")
@click.option("--source", "sources", default="all-white-box", show_default=True,
              help="Surrogate recognizer(s), comma-separated; 'a+b' is an ensemble; default: every differentiable zoo model.")
@click.option("--target", "targets", default="all", show_default=True, help="Target recognizers, comma-separated, or 'all'.")
@click.option("--split", default="celebrities", show_default=True, help="Protocol split: celebrities or commons.")
@click.option("--gallery", default="distractors", show_default=True,
              help="Split whose photos are the 1:N gallery's distractors (may come from another dataset than --split's people).")
@click.option("--transform", "transforms", multiple=True,
              help="Transform chain applied to protected photos before recognition, e.g. jpeg:75 or jpeg:75+resize:0.5, "
                   "or realistic / realistic:jpeg75 (the mask put into the original photo, saved, re-detected by the "
                   "attacker) (repeatable: each chain gets its own cells; default: photos as saved). Known: see `bench methods`.")
@click.option("--protocol", "protocols", default="identification", show_default=True,
              help="Scoring protocol(s), comma-separated.")
@click.option("--budget", default="1200", show_default=True, help="L2 budget(s) > 0 on 0-255 pixels; a list gives a sweep.")
@click.option("--seed", "seeds", default="0", show_default=True, help="Seed(s): integers >= 0, comma-separated.")
@click.option("--n-inference", default="10", show_default=True,
              help="Inference photos per person: integers >= 1 (a list gives a sweep).")
@click.option("--backend", type=click.Choice(["faiss", "torch"]), default="faiss", show_default=True)
@click.option("--index", "index", type=click.Choice(["flat", "ivf", "hnsw"]), default="flat", show_default=True,
              help="Gallery search: flat is exhaustive and exact; ivf and hnsw are approximate FAISS indexes for large "
                   "galleries (their cells are stored apart from exact ones; recall: python -m bench.gallery_cost).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available).")
@click.option("--craft-batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="People whose person masks are crafted in one batched forward/backward (FI-UAP, OPOM); masks agree "
                   "with one-at-a-time crafting to float rounding. Larger is faster on a GPU.")
@click.option("--executor", type=click.Choice(["serial", "ray"]), default="serial", show_default=True,
              help="serial: one process; ray: mask jobs and their cells as Ray tasks (pip install -e '.[ray]').")
@click.option("--address", default=None,
              help="With --executor ray: the cluster to join ('auto', or the head's host:port); default: a local one.")
@click.option("--param", "-p", "params", multiple=True,
              help="Parameter override METHOD.KEY=VALUE for a method of this run (repeatable; see `bench methods`).")
@click.option("--results", type=click.Path(file_okay=False), help="Result store folder (default: results/ or BENCH_RESULTS).")
@click.option("--report/--no-report", default=None,
              help="Write Tables 1-3 afterwards (default: no; `make run` passes --report).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for the reports (implies --report; default: reports/ or BENCH_REPORTS).")
def run(methods, sources, targets, split, gallery, transforms, protocols, budget, seeds, n_inference, backend, index, device,
        craft_batch, executor, address, params, results, report, out):
    """Craft masks, protect test photos and measure 1:N identification against every target."""
    import methods as method_pkg
    from .reporting import write_reports
    from .runner import RunConfig, Runner, default_sources
    from .stages.protocols import PROTOCOLS
    from .stages.transforms import parse_chain
    from .store import ResultStore
    from .zoo import RECOGNIZERS

    # everything is checked before the Runner loads a split, a model or a photo
    if address is not None and executor != "ray":
        raise BenchError(f"--address {address!r} names a Ray cluster, but --executor is {executor!r}; add --executor ray")
    if executor == "ray":
        from .executor_ray import import_ray

        import_ray()  # not installed: one line naming the extra, before any work
    method_names = method_pkg.METHODS.parse_list(methods)
    if not method_names:
        raise BenchError(f"--methods needs at least one method name, got {methods!r}; see `bench methods`")
    source_list = default_sources() if sources == "all-white-box" else [s.strip() for s in sources.split(",") if s.strip()]
    for s in source_list:
        for name in s.split("+"):
            RECOGNIZERS.entry(name)
    chains = [parse_chain(t).spec for t in transforms] or [""]  # checked (names, values) before any work
    cfg = RunConfig(
        methods=method_names, sources=source_list, targets=RECOGNIZERS.parse_list(targets), split=split,
        gallery_split=gallery, transforms=list(dict.fromkeys(chains)), protocols=PROTOCOLS.parse_list(protocols),
        budgets=_budgets(budget), seeds=_integers(seeds, "--seed", 0, SEED_LIMIT),
        n_inference=_integers(n_inference, "--n-inference", 1), backend=backend, index=index,
        device=_device(device), params=_params(params, method_names), craft_batch=craft_batch,
    )
    report_folder = _report_folder(report, out)
    store = ResultStore(results) if results else ResultStore()
    if executor == "ray":
        from .executor_ray import RayRunner

        runner = RayRunner(cfg, store, address=address)
        rows = runner.run()
        click.echo(f"ray: {len(runner.nodes)} node(s) ran this run's tasks")
    else:
        runner = Runner(cfg, store)
        rows = runner.run()
    profile = getattr(runner, "profile_path", None)  # a stand-in runner (tests) keeps no profile
    click.echo(f"{len(rows)} cells in {store.root}" + (f"; where the time went: {profile}" if profile else ""))
    if report_folder is None:
        return
    if not rows:  # nothing measured: the reports on disk stay as they are
        click.echo("no cells, so no reports written")
        return
    from .reporting import PAGE_HTML

    paths = write_reports(store.rows(), report_folder, results=store, log=click.echo)  # profile.csv included
    for path in paths:
        click.echo(f"wrote {path}")
    page = next((p for p in paths if p.name == PAGE_HTML), None)
    if page is not None:
        click.echo(f"report page: {page}")


@click.command("report")
@click.option("--from", "origin", type=click.Choice(["records", "results"]), default=None,
              help="Rows to report: the committed records (results/records) or a result store; default: the store "
                   "when it holds cells, else the records. The command says which it used.")
@click.option("--results", type=click.Path(file_okay=False), help="Result store folder (default: results/ or BENCH_RESULTS).")
@click.option("--records", type=click.Path(file_okay=False),
              help="Records folder (default: results/records or BENCH_RECORDS).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: reports/ or BENCH_REPORTS).")
@click.option("--budget", default=1200.0, show_default=True, type=Finite(check=budget_check),
              help="The budget the tables show (a finite L2 > 0 on 0-255 pixels).")
@click.option("--n-inference", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--check", is_flag=True,
              help="Write nothing: rebuild the reports from the records in a temporary folder and fail, naming the file "
                   "and its first differing line, where the committed reports (reports/ or BENCH_REPORTS) or the "
                   "README/docs tables differ.")
@click.option("--open", "open_page", is_flag=True, help="Open the report page (index.html) in a browser afterwards.")
def report(origin, results, records, out, budget, n_inference, check, open_page):
    """Write Tables 1-3 (CSV, LaTeX, Markdown with intervals), claims, paper vs ours, figures, the time
    profile and the report page (index.md, index.html) from the result store or the committed records."""
    from .paths import reports_dir, work_dir
    from .reporting import PAGE_HTML
    from .reporting import open_page as open_in_browser
    from .reporting.figures import GRID_MANIFEST
    from .reproduce import check as check_reports
    from .reproduce import choose, documents, generate

    if check:
        if origin == "results" or results or out:
            raise BenchError("--check compares the committed reports with the records: it takes no --from results, "
                             "--results or --out (BENCH_REPORTS names another reports folder to check)")
        found = check_reports(records, budget=budget, n_inference=n_inference, log=click.echo)
        if found:
            raise BenchError(f"{found[0]}\n{len(found)} file(s) differ from what the records give; "
                             "`bench report --from records` rewrites them")
        if found is not None:
            click.echo("the committed reports and document tables agree with the records")
        return
    source = choose(origin, results, records)
    click.echo(source.describe())
    folder = Path(out) if out else reports_dir()
    # the README's and docs' tables show the records: filled when the committed reports are written
    committed = source.origin == "records" and folder.resolve() == (work_dir() / "reports").resolve()
    paths = generate(source, folder, budget, n_inference, docs=documents() if committed else [], log=click.echo)
    if source.origin == "records" and not any(source.store.masks.glob("*.safetensors")) \
            and (folder / "figures" / GRID_MANIFEST).exists():
        click.echo(f"visual grids: no masks in {source.store.masks} (records keep rates, not masks); "
                   f"left as {folder / 'figures'} has them")
    for path in paths:
        click.echo(f"wrote {path}")
    page = next((p for p in paths if p.name == PAGE_HTML), None)
    if page is not None:
        click.echo(f"report page: {page}")
        if open_page:
            click.echo(open_in_browser(page))


@click.command("methods")
@click.option("--json", "as_json", is_flag=True)
def list_methods(as_json):
    """Registered mask methods with their kind and default parameters."""
    import methods as method_pkg
    from .cli_output import echo_json

    infos = [method_pkg.method_info(n) for n in method_pkg.METHODS.names()]
    if as_json:
        echo_json(infos)
        return
    for info in infos:
        params = ", ".join(f"{k}={v}" for k, v in info["parameters"].items())
        click.echo(f"{info['name']:<18} {info['kind']:<10} {info['description']}")
        if params:
            click.echo(f"{'':<29} {params}")
    from .stages.protocols import PROTOCOLS
    from .stages.transforms import TRANSFORMS

    click.echo("\ntransforms (bench run --transform NAME:VALUE[+NAME:VALUE...]):")
    for entry in TRANSFORMS:
        click.echo(f"  {entry.name:<16} {entry.info['valid']}")
    click.echo("protocols (bench run --protocol NAME):")
    for entry in PROTOCOLS:
        click.echo(f"  {entry.name:<16} {entry.info['version']}: {entry.info['description']}")
