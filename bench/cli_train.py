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


@click.command("train")
@click.argument("methods_", metavar="METHODS")
@click.option("--source", required=True, help="The differentiable zoo model the generator is trained against.")
@click.option("--profile", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
              help="cpu: narrow networks that train in minutes on 2 cores; paper: the paper's widths and settings.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Total steps of the run (default: the profile's).")
@click.option("--minutes", type=Finite(check=minutes_check), default=None,
              help="Stop after this much training time (counted across resumes): a finite number > 0.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available).")
@click.option("--set", "sets", multiple=True, help="Override a training option KEY=VALUE (repeatable), e.g. --set stage2_lr=1e-4.")
def train(methods_, source, profile, steps, minutes, device, sets):
    """Train METHODS (comma-separated, in order: advfaces before any advcloak*) against --source.

    advfaces / advfaces-plus share the stage-I generator; advcloak, advcloak-center, advcloak-affine and
    advcloak-convex start from it (stage II); gap trains its own. Killed runs continue when rerun.
    """
    import methods as method_pkg
    from .cli_run import _device
    from .training import make_config
    from .training.trainer import train as train_one
    from .zoo import RECOGNIZERS

    names = method_pkg.METHODS.parse_list(methods_)
    RECOGNIZERS.entry(source)
    cfg = make_config(profile, **_option_overrides(sets))
    device = _device(device)  # a device that exists here, checked as bench run checks it (not a torch traceback)
    for name in names:
        path = train_one(name, source, cfg, steps=steps, minutes=minutes, device=device)
        click.echo(f"{name}: wrote {path}")
