"""``bench train``: train (or resume) the generator of AdvFaces / AdvCloak / GAP against one zoo model."""

from __future__ import annotations

import click

from .errors import BenchError
from .validate import Finite
from .validate import minutes as minutes_check


def _option_overrides(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise BenchError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


@click.command("run")
@click.argument("methods_", metavar="[METHODS]", required=False)
@click.option("--source", help="The differentiable zoo model the generator is trained against; a+b: their mean-cosine ensemble.")
@click.option("--profile", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
              help="cpu: narrow networks that train in minutes on 2 cores; paper: the paper's widths and settings.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Total steps of the run (default: the profile's).")
@click.option("--minutes", type=Finite(check=minutes_check), default=None,
              help="Stop after this much training time (counted across resumes): a finite number > 0.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available).")
@click.option("--set", "sets", multiple=True, help="Override a training option KEY=VALUE (repeatable), e.g. --set stage2_lr=1e-4.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A TOML experiment file (bench/training/experiment.py): methods, source, options; flags given here win.")
@click.pass_context
def train(ctx, methods_, source, profile, steps, minutes, device, sets, config_file):
    """Train METHODS (comma-separated, in order: advfaces before any advcloak*) against --source.

    advfaces / advfaces-plus share the stage-I generator; advcloak, advcloak-center, advcloak-affine and
    advcloak-convex start from it (stage II); gap trains its own. Killed runs continue when rerun.
    `bench train select --help`: choose among checkpoints on the held-back identities.
    """
    import methods as method_pkg
    from .cli_run import _device
    from .training import make_config
    from .training.experiment import load_experiment
    from .training.trainer import train as train_one
    from .zoo import RECOGNIZERS

    options = _option_overrides(sets)
    if config_file:
        exp = load_experiment(config_file)
        given = lambda name: ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT  # noqa: E731
        methods_ = methods_ or ",".join(exp.methods)
        source = source or exp.source
        profile = profile if given("profile") else exp.profile
        steps = steps if given("steps") else exp.steps
        minutes = minutes if given("minutes") else exp.minutes
        device = device or exp.device
        options = {**exp.options, **options}
    if not methods_ or not source:
        raise BenchError("give METHODS and --source, or a --config file that names them (see `bench train --help`)")
    names = method_pkg.METHODS.parse_list(methods_)
    for member in source.split("+"):  # "a+b": an ensemble of zoo models (bench/zoo/ensemble.py)
        RECOGNIZERS.entry(member.strip())
    cfg = make_config(profile, **options)
    device = _device(device)  # a device that exists here, checked as bench run checks it (not a torch traceback)
    for name in names:
        path = train_one(name, source, cfg, steps=steps, minutes=minutes, device=device)
        click.echo(f"{name}: wrote {path}")


@click.command("select")
@click.argument("method")
@click.argument("roots", metavar="CANDIDATES...", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--source", required=True, help="The zoo model the candidates were trained against (the surrogate).")
@click.option("--draws", type=click.IntRange(min=1), default=3, show_default=True,
              help="Random draws of each person's 10 inference photos (the same for every candidate).")
@click.option("--distractors", type=click.IntRange(min=1), default=10, show_default=True,
              help="Clean photos per training identity in the gallery.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def select(method, source, roots, draws, distractors, seed):
    """Score candidate checkpoints of METHOD on every photo of the identities training held back, and name
    the best (highest held-out Top-1 protection, then the lower cosine). Each candidate is a
    BENCH_GENERATORS folder (<candidate>/<source>/<checkpoint>.*), e.g. a run's snapshots/step-NNNNNN."""
    from pathlib import Path

    import methods as method_pkg
    from .training.select import best, select_checkpoints
    from .zoo import RECOGNIZERS

    method_pkg.METHODS.entry(method)
    RECOGNIZERS.entry(source)
    found = select_checkpoints(method, source, [Path(r) for r in roots], draws=draws, distractors=distractors,
                               seed=seed, log=click.echo)
    click.echo(f"best: {best(found).root}")


class TrainCommands(click.Group):
    """``bench train METHODS ...`` trains (the ``run`` command, also reachable by name); ``bench train
    select ...`` chooses a checkpoint. Anything that is not a subcommand's name goes to ``run``, so the
    training command keeps its short form."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


train = TrainCommands("train", commands=[train, select], help="Train generator methods, or choose among their checkpoints.")
