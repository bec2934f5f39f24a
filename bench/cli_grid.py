"""``bench grid``: a visual grid per method (clean photo, mask amplified, protected photo at the budget)
for a few people, from the masks a run stored (what `bench report` draws as
reports/figures/masks-<split>-<source>.png) or crafted here with each method's defaults (no run needed)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from .errors import BenchError
from .validate import Finite
from .validate import budget as budget_check


@click.command("grid")
@click.option("--source", default="mobileface", show_default=True, help="The surrogate the masks come from.")
@click.option("--methods", default="opom-convex,advfaces-plus,advcloak-convex,gap", show_default=True)
@click.option("--split", default="celebrities", show_default=True)
@click.option("--people", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--budget", default=1200.0, show_default=True, type=Finite(check=budget_check))
@click.option("--results", type=click.Path(file_okay=False), help="Show the masks stored in this result store instead of crafting.")
@click.option("--out", type=click.Path(dir_okay=False), default="reports/figures/masks.png", show_default=True)
def grid(source, methods, split, people, budget, results, out):
    """Draw clean / mask / protected panels per method and person (PNG and PDF)."""
    from .reporting.figures import Skipped, draw_mask_grid, grid_columns, save

    # what the figure records as its maker: the options as given, so the grid can be drawn again
    command = shlex.join(["bench", "grid", "--source", source, "--methods", methods, "--split", split, "--people", str(people),
                          "--budget", f"{budget:g}", *(["--results", str(results)] if results else []), "--out", str(out)])
    names = [m for m in methods.split(",") if m]
    if results:
        from .store import ResultStore

        found = grid_columns(ResultStore(results), split, names, source, people, budget)
        if isinstance(found, Skipped):
            raise BenchError(str(found))
        columns = found.by_source.get(source) or next(iter(found.by_source.values()))
    else:
        columns = crafted_columns(split, source, names, people, budget)
    fig = draw_mask_grid(columns, f"masks from {source} ({split} test photos)", budget)
    caption = f"{split}: clean / mask (amplified) / protected at L2 {budget:g}, masks from {source}."
    out = Path(out)
    made = save(fig, out.parent, out.stem, caption, command)
    click.echo(f"wrote {made.png}")


def crafted_columns(split_name: str, source: str, methods: list[str], people: int, budget: float):
    """Craft each method's mask for the first ``people`` identities (default parameters, seed 0)."""
    import torch

    from methods import create_method

    from .budget import protect, scale_to_budget
    from .data import open_dataset, prepare
    from .data.splits import load_split
    from .zoo import create_recognizer, to_canonical

    split = load_split(split_name)
    chosen = split.identities()[:people]
    files = [f for p in chosen for f in split.files(p, "inference") + split.files(p, "test")[:1]]
    faces = prepare(open_dataset(split.dataset), only=sorted(files), progress=False)
    model = create_recognizer(source)
    columns = []
    for name in methods:
        method = create_method(name)
        panels = []
        for person in chosen:
            test = faces.faces(split.files(person, "test")[:1])
            inputs = to_canonical(torch.from_numpy(test)) if method.kind == "image" else \
                to_canonical(torch.from_numpy(faces.faces(split.files(person, "inference"))))
            mask = scale_to_budget(method.craft_mask(inputs, [model], seed=0), budget)
            mask = mask[0] if mask.dim() == 4 else mask
            panels.append((person, test[0], mask.permute(1, 2, 0).numpy(), protect(test, mask)[0]))
        columns.append((name, panels))
    return columns
