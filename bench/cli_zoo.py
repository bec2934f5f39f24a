"""``bench zoo list`` and ``bench zoo verify``: the recognizers, their facts, and re-measuring them."""

from __future__ import annotations

import click

from .errors import BenchError


@click.group()
def zoo() -> None:
    """Face recognizers: list them, and re-verify their accuracy on LFW."""


def model_row(name: str) -> dict:
    from .zoo import card_of, load_metadata
    from .zoo.base import weights_in_use
    from .zoo.weights import sha256_of

    card = card_of(name)
    files = weights_in_use(card)  # what loads here (dlib-resnet may fall back to face-api's copy)
    meta = load_metadata(name)
    row = {
        "name": name, "source": card.source, "input_size": list(card.input_size), "embedding_dim": card.embedding_dim,
        "parameters": meta.get("parameters"), "differentiable": card.differentiable, "licence": card.licence,
        "sha256": {f.name: f.sha256 for f in files},
        "lfw_accuracy": meta.get("lfw_accuracy"), "celebrities_top1": meta.get("celebrities_top1"),
    }
    try:
        row["weights_ok"] = all(sha256_of(f.path()) == f.sha256 for f in files)
    except Exception as exc:  # report, do not fail a listing
        row["weights_ok"] = False
        row["weights_error"] = str(exc)
    return row


@zoo.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_models(as_json: bool) -> None:
    """Every registered recognizer with its card and last measured LFW accuracy."""
    from .cli_output import echo_json
    from .zoo import recognizer_names

    rows = [model_row(n) for n in recognizer_names()]
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'name':<14}{'input':>9}{'dim':>6}{'params':>11}  {'white-box':<10}{'LFW acc':>8}  licence")
    for r in rows:
        acc = f"{100 * r['lfw_accuracy']:.2f}%" if r["lfw_accuracy"] is not None else "-"
        params = f"{r['parameters']:,}" if r["parameters"] else "-"
        size = "x".join(map(str, r["input_size"]))
        flag = "" if r["weights_ok"] else "  [weights missing/corrupt: " + r.get("weights_error", "checksum mismatch") + "]"
        click.echo(f"{r['name']:<14}{size:>9}{r['embedding_dim']:>6}{params:>11}  {str(r['differentiable']):<10}{acc:>8}  {r['licence']}{flag}")


@zoo.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@click.option("--pairs-per-fold", type=int, default=None, help="Use a slice of each LFW fold (default: all 600).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--save/--no-save", default=True, show_default=True,
              help="Record the figures in the model's committed metadata (only for the full protocol).")
def verify(names, as_json, pairs_per_fold, device, save):
    """LFW 10-fold verification accuracy and clean 1:N identification on `celebrities` for NAMES (default: all)."""
    import datetime

    from .cli_output import echo_json
    from .provenance import git_commit, package_versions
    from .stages.protocols import clean_identification
    from .verify import lfw_verification
    from .zoo import RECOGNIZERS, create_recognizer, load_metadata, recognizer_names
    from .zoo.registry import save_metadata

    names = list(names) or recognizer_names()
    for n in names:
        RECOGNIZERS.entry(n)
    saving = save and pairs_per_fold is None
    if saving and git_commit().endswith("-dirty"):
        raise BenchError(f"the checkout has uncommitted changes ({git_commit()}): a committed measurement must name "
                         "the clean commit that made it; commit first, or pass --no-save")
    out = []
    for name in names:
        model = create_recognizer(name, device=device)
        ver = lfw_verification(model, pairs_per_fold)
        ident = clean_identification(name, model)
        result = {
            "name": name, "lfw_accuracy": round(ver.accuracy, 5), "lfw_std": round(ver.std, 5), "lfw_pairs": ver.pairs,
            "celebrities_top1": round(ident.accuracy(1), 5), "celebrities_top5": round(ident.accuracy(5), 5),
            "celebrities_pairs": ident.pairs,
        }
        out.append(result)
        if saving:
            meta = load_metadata(name)
            meta.update(result)
            meta.update({"parameters": model.parameter_count(),
                         "measured": datetime.date.today().isoformat(), "commit": git_commit(),
                         "torch": package_versions().get("torch"), "protocol": "LFW pairs.txt 10-fold, own MTCNN/dlib alignment"})
            save_metadata(name, meta)
        if not as_json:
            click.echo(f"{name:<14} LFW {100 * ver.accuracy:.2f}% +- {100 * ver.std:.2f} ({ver.pairs} pairs)   "
                       f"celebrities clean Top-1 {100 * ident.accuracy(1):.1f}%  Top-5 {100 * ident.accuracy(5):.1f}%")
    if as_json:
        echo_json(out)


# ---------------------------------------------------------------------------------------------
# models users bring (bench.zoo.user_models)

FORMAT_HELP = ("arcface-iresnet18|34|50|100 (arcface_torch state dict), facenet-inception-resnet-v1 "
               "(facenet-pytorch state dict), onnx (onnxruntime, black-box) or onnx-torch (onnx2torch, white-box)")


def _floats(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"expected 1 or 3 numbers separated by commas, got {text!r}") from None


@zoo.command("add")
@click.argument("name")
@click.option("--path", "path", required=True, type=click.Path(exists=True, dir_okay=False), help="The model file.")
@click.option("--format", "fmt", required=True, metavar="FORMAT", help=f"One of: {FORMAT_HELP}.")
@click.option("--input-size", default=None, metavar="HxW", help="Network input size (default: the format's, or the ONNX input's).")
@click.option("--colour", type=click.Choice(["rgb", "bgr"]), default=None, help="Channel order the network expects.")
@click.option("--scale", type=click.Choice(["1", "255"]), default=None, help="Pixel range before mean/std: [0,1] or [0,255].")
@click.option("--mean", default=None, metavar="M[,M,M]", help="Subtracted after scaling, in the network's channel order.")
@click.option("--std", default=None, metavar="S[,S,S]", help="Divides after the mean.")
@click.option("--layout", type=click.Choice(["nchw", "nhwc"]), default=None, help="Input layout (ONNX formats).")
@click.option("--resize", type=click.Choice(["bilinear", "bicubic", "area", "nearest"]), default=None)
@click.option("--licence", default=None, help="The model's licence, shown by `bench zoo list`.")
@click.option("--embedding-dim", type=int, default=None, help="Expected embedding size (checked; inferred if omitted).")
@click.option("--replace", is_flag=True, help="Overwrite an existing user model of this name.")
def add(name, path, fmt, input_size, colour, scale, mean, std, layout, resize, licence, embedding_dim, replace):
    """Register your own model file as recognizer NAME (unset preprocessing options take the format's defaults)."""
    from .zoo.user_models import register_user_model, user_models_file

    overrides = {"input_size": input_size, "colour": colour, "scale": float(scale) if scale else None,
                 "mean": _floats(mean), "std": _floats(std), "layout": layout, "resize": resize}
    card = register_user_model(name, path, fmt, preprocess={k: v for k, v in overrides.items() if v is not None},
                               licence=licence, embedding_dim=embedding_dim, replace=replace)
    kind = "white-box" if card.differentiable else "black-box"
    click.echo(f"added {name}: {card.extra['format']}, {card.embedding_dim}-D, {kind}\n"
               f"  preprocessing {card.extra['preprocessing']}\n"
               f"  file {card.files[0].locate()} (sha256 {card.files[0].sha256[:16]}...)\n"
               f"  recorded in {user_models_file()}")


@zoo.command("remove")
@click.argument("name")
def remove(name):
    """Forget the user model NAME (its file is left alone)."""
    from .zoo.user_models import remove_user_model, user_models_file

    remove_user_model(name)
    click.echo(f"removed {name} from {user_models_file()}")
