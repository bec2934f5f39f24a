"""Models users bring: register your own face recognizer by name, file, format and preprocessing.

A registered model joins the zoo like a built-in one (``create_recognizer(name)``, ``bench zoo list``,
``bench run --targets name``). Python::

    from bench.zoo.user_models import register_user_model
    card = register_user_model("my-r50", "~/models/ms1mv3_r50/backbone.pth", "arcface-iresnet50",
                               licence="MIT (insightface)")

Command line::

    bench zoo add my-r50 --path ~/models/ms1mv3_r50/backbone.pth --format arcface-iresnet50
    bench zoo remove my-r50

Formats (``FORMATS``):

* ``arcface-iresnet18|34|50|100``: an insightface ``arcface_torch`` backbone state dict (white-box);
* ``facenet-inception-resnet-v1``: a ``facenet_pytorch.InceptionResnetV1`` state dict (white-box);
  a ``logits.*`` classifier head in the file is ignored;
* ``onnx``: any ONNX model, run by onnxruntime (black-box: no gradients);
* ``onnx-torch``: an ONNX model converted to torch by onnx2torch (white-box).

Preprocessing (:class:`Preprocess`, from :mod:`bench.zoo.preprocess`) maps the canonical face (N x 3
x 112 x 112, [0, 1], RGB, ArcFace-aligned) to the network input, differentiably: resize to
``input_size``, reorder to ``colour``, multiply by ``scale`` (1 or 255), then ``(x - mean) / std``
with mean/std given in the channel order the network sees, and finally ``layout`` (NCHW or NHWC).
Each format has defaults (``FORMATS[f].default``); pass a partial dict (``{"colour": "bgr"}``) to
override single fields. For ONNX files a static input shape also sets ``input_size`` and ``layout``,
and a graph that normalises its own input (Sub/Mul first, as insightface's model_zoo checks) gets
mean 0 / std 1.

Safety (:mod:`bench.zoo.checkpoints`): checkpoints are untrusted. ``.safetensors`` files are read by
safetensors; anything else by ``torch.load(weights_only=True)``, so a pickle that needs arbitrary
code is refused, never run. The file's sha256 is recorded at registration and checked on every load.

Registrations persist in a JSON file, ``$BENCH_USER_MODELS`` if set, else
``$XDG_CONFIG_HOME/cloakbench/user-models.json`` (``~/.config/cloakbench/user-models.json``): per
user, not per checkout, because it points at the user's own files. It is read at the first lookup
or listing of a recognizer (not on import); a broken entry is skipped with a warning so the CLI
still starts (and can remove it).
Paths are stored absolute; a hand-written relative path is taken relative to the JSON file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..errors import BenchError
from .base import CANONICAL_SIZE, ModelCard, Recognizer
from .checkpoints import load_state_dict_file, load_strict
from .iresnet import ARCHS, guess_arch, iresnet
from .preprocess import Preprocess, ToNetworkInput
from .registry import RECOGNIZERS
from .weights import WeightFile, sha256_of

ENV_VAR = "BENCH_USER_MODELS"
DEFAULT_LICENCE = "unknown (user-supplied model)"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # no '+' or ',': the runner splits on them
FILE_VERSION = 1

# ---------------------------------------------------------------------------------------------
# networks per format; each builder returns an "embedder": canonical faces -> raw N x D features


def _first_output(out: Any) -> torch.Tensor:
    if isinstance(out, Mapping):
        out = next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.flatten(1)  # e.g. N x D x 1 x 1 from a conv head


class TorchEmbedder(nn.Module):
    """Preprocessing + a torch network; gradients reach the canonical pixels."""

    def __init__(self, spec: Preprocess, net: nn.Module):
        super().__init__()
        self.preprocess = ToNetworkInput(spec)
        self.net = net

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return _first_output(self.net(self.preprocess(faces)))


def build_arcface(arch: str) -> Callable[[Path, Preprocess], nn.Module]:
    def build(path: Path, spec: Preprocess) -> nn.Module:
        state, net = load_state_dict_file(path), iresnet(arch)
        guessed = guess_arch(state)
        hint = f"; its blocks per stage match arcface-{guessed}" if guessed and guessed != arch else ""
        load_strict(net, state, path, f"arcface-{arch}", hint)
        return TorchEmbedder(spec, net)

    return build


def build_facenet(path: Path, spec: Preprocess) -> nn.Module:
    try:
        from facenet_pytorch import InceptionResnetV1
    except ImportError as exc:
        raise BenchError(f"format facenet-inception-resnet-v1 needs facenet-pytorch (pip install --no-deps "
                         f"facenet-pytorch, see the Makefile): {exc}") from exc
    # facenet-pytorch's released files carry the training classifier; embeddings do not use it
    state = {k: v for k, v in load_state_dict_file(path).items() if not k.startswith("logits.")}
    net = InceptionResnetV1(classify=False)
    load_strict(net, state, path, "facenet-inception-resnet-v1")
    return TorchEmbedder(spec, net)


def _onnx_graph(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise BenchError(f"cannot read {path} as an ONNX model: {exc}") from exc


def onnx_input_shape(path: Path, graph=None) -> list[int | None]:
    """The first real graph input's shape; None for symbolic dimensions."""
    graph = graph if graph is not None else _onnx_graph(path)
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if not inputs:
        raise BenchError(f"{path}: the ONNX graph has no input")
    dims = inputs[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def onnx_defaults(path: Path) -> dict[str, Any]:
    """Defaults read off the graph: input_size / layout from a static input shape (N,3,H,W or N,H,W,3),
    and mean 0 / std 1 when the graph normalises its input itself (Sub/Mul among its first nodes, the
    test insightface's model_zoo applies to MXNet-converted ArcFace models)."""
    graph = _onnx_graph(path)
    shape, out = onnx_input_shape(path, graph), {}
    if len(shape) == 4 and shape[1] == 3 and shape[2] and shape[3]:
        out.update(input_size=(shape[2], shape[3]), layout="nchw")
    elif len(shape) == 4 and shape[3] == 3 and shape[1] and shape[2]:
        out.update(input_size=(shape[1], shape[2]), layout="nhwc")
    if any(node.op_type in ("Sub", "Mul") for node in graph.node[:8]):
        out.update(mean=0.0, std=1.0)
    return out


def check_onnx_input(path: Path, spec: Preprocess) -> None:
    shape = onnx_input_shape(path)
    h, w = spec.input_size
    want = [3, h, w] if spec.layout == "nchw" else [h, w, 3]
    if len(shape) != 4 or any(d is not None and d != e for d, e in zip(shape[1:], want)):
        show = ["?" if d is None else d for d in shape]
        raise BenchError(f"{path} takes input {show}, but the preprocessing makes N x {' x '.join(map(str, want))} "
                         f"({spec.describe()}); set the input size / layout to match")


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


class OnnxRuntimeEmbedder(nn.Module):
    """Preprocessing + an onnxruntime session: a black box (no gradients)."""

    def __init__(self, spec: Preprocess, path: Path):
        super().__init__()
        import onnxruntime as ort

        self.preprocess = ToNetworkInput(spec)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())  # share the CPU as torch does
        options.log_severity_level = 3
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        first = self.session.get_inputs()[0]
        if first.type not in _ORT_DTYPES:
            raise BenchError(f"{path}: input {first.name!r} has type {first.type}; only float inputs are supported")
        self.input_name, self.dtype = first.name, _ORT_DTYPES[first.type]
        batch = first.shape[0] if first.shape else None
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None  # some exports fix N = 1

    @torch.no_grad()
    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(faces.detach()).cpu().numpy().astype(self.dtype)
        step = self.fixed_batch or max(1, len(x))
        outs = [self.session.run(None, {self.input_name: x[i:i + step]})[0] for i in range(0, len(x), step)]
        return _first_output(torch.from_numpy(np.concatenate(outs)).float()).to(faces.device)


def build_onnx(path: Path, spec: Preprocess) -> nn.Module:
    check_onnx_input(path, spec)
    try:
        return OnnxRuntimeEmbedder(spec, path)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"onnxruntime cannot load {path}: {exc}") from exc


def build_onnx_torch(path: Path, spec: Preprocess) -> nn.Module:
    check_onnx_input(path, spec)
    try:
        from onnx2torch import convert
    except ImportError as exc:
        raise BenchError(f"format onnx-torch needs onnx2torch (pip install '.[onnx]'): {exc}") from exc
    try:
        net = convert(str(path))
    except Exception as exc:
        raise BenchError(f"onnx2torch cannot convert {path} ({type(exc).__name__}: {exc}); register it with "
                         "format 'onnx' instead to run it black-box in onnxruntime") from exc
    return TorchEmbedder(spec, net)


@dataclass(frozen=True)
class Format:
    name: str
    differentiable: bool
    default: Preprocess
    build: Callable[[Path, Preprocess], nn.Module]
    description: str


ARCFACE_PREPROCESS = Preprocess((112, 112), "rgb", 1.0, (0.5,) * 3, (0.5,) * 3)
FACENET_PREPROCESS = Preprocess((160, 160), "rgb", 255.0, (127.5,) * 3, (128.0,) * 3)  # fixed_image_standardization
ONNX_PREPROCESS = Preprocess((112, 112), "rgb", 255.0, (127.5,) * 3, (127.5,) * 3)  # insightface's ONNX models


def _formats() -> dict[str, Format]:
    out = {
        f"arcface-{arch}": Format(f"arcface-{arch}", True, ARCFACE_PREPROCESS, build_arcface(arch),
                                  f"insightface arcface_torch {arch} backbone state dict")
        for arch in ARCHS
    }
    out["facenet-inception-resnet-v1"] = Format(
        "facenet-inception-resnet-v1", True, FACENET_PREPROCESS, build_facenet,
        "facenet-pytorch InceptionResnetV1 state dict (e.g. its vggface2 / casia-webface weights)")
    out["onnx"] = Format("onnx", False, ONNX_PREPROCESS, build_onnx, "ONNX model run by onnxruntime (black-box)")
    out["onnx-torch"] = Format("onnx-torch", True, ONNX_PREPROCESS, build_onnx_torch,
                               "ONNX model converted to torch by onnx2torch (white-box)")
    return out


FORMATS: dict[str, Format] = _formats()


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise BenchError(f"unknown model format {name!r}; valid formats: {', '.join(FORMATS)}")
    return FORMATS[name]


def resolve_preprocess(fmt: str, path: Path, preprocess: Preprocess | Mapping[str, Any] | None) -> Preprocess:
    """A full spec: a Preprocess as given, or the format's defaults (plus what an ONNX graph says) with overrides."""
    if isinstance(preprocess, Preprocess):
        return preprocess
    base = get_format(fmt).default
    if fmt in ("onnx", "onnx-torch"):
        base = base.merged(onnx_defaults(path))
    return base.merged(preprocess or {})


# ---------------------------------------------------------------------------------------------
# the recognizer


class UserRecognizer(Recognizer):
    def __init__(self, card: ModelCard, embedder: nn.Module):
        super().__init__(card)
        self.embedder = embedder

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return self.embedder(faces)


def build_embedder(fmt: str, path: Path, spec: Preprocess) -> nn.Module:
    return get_format(fmt).build(Path(path), spec).eval()


def create_user_recognizer(card: ModelCard, **kwargs: Any) -> UserRecognizer:
    """The one factory behind every user model: checks the file's sha256, then builds from the card."""
    if kwargs:
        raise BenchError(f"user model {card.name!r} takes no options, got {', '.join(kwargs)}")
    path = card.files[0].verified_path()
    spec = Preprocess.from_dict(card.extra["preprocess"])
    return UserRecognizer(card, build_embedder(card.extra["format"], path, spec))


# ---------------------------------------------------------------------------------------------
# registration records and the JSON file


def user_models_file() -> Path:
    """Where registrations persist: $BENCH_USER_MODELS, else the per-user config folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "cloakbench" / "user-models.json"


@dataclass(frozen=True)
class UserModel:
    """One registration, as stored in the JSON file."""

    name: str
    path: Path
    format: str
    sha256: str
    preprocess: Preprocess
    embedding_dim: int
    licence: str = DEFAULT_LICENCE
    added: str = ""

    def to_json(self) -> dict:
        return {"path": str(self.path), "format": self.format, "sha256": self.sha256,
                "preprocess": self.preprocess.to_dict(), "embedding_dim": self.embedding_dim,
                "licence": self.licence, "added": self.added}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any], base: Path) -> "UserModel":
        path = Path(data["path"]).expanduser()
        return cls(name=name, path=path if path.is_absolute() else base / path, format=get_format(data["format"]).name,
                   sha256=str(data["sha256"]), preprocess=Preprocess.from_dict(data.get("preprocess", {})),
                   embedding_dim=int(data["embedding_dim"]), licence=data.get("licence", DEFAULT_LICENCE),
                   added=data.get("added", ""))

    def weight_file(self) -> WeightFile:
        path = self.path
        return WeightFile(
            name=path.name, locate=lambda: path, sha256=self.sha256,
            source=f"your own file, registered as {self.name!r} on {self.added or 'an unknown date'}; if you replaced "
            f"it on purpose, register it again: bench zoo add {self.name} --path {path} --format {self.format} --replace",
        )

    def card(self) -> ModelCard:
        fmt = get_format(self.format)
        spec = self.preprocess.to_dict()
        fingerprint = hashlib.sha256(json.dumps([self.format, spec, self.sha256], sort_keys=True).encode()).hexdigest()
        return ModelCard(
            name=self.name, source=f"user model: {self.path} ({self.format})", input_size=self.preprocess.input_size,
            embedding_dim=self.embedding_dim, differentiable=fmt.differentiable, licence=self.licence,
            files=(self.weight_file(),), description=f"{fmt.description}; preprocessing {self.preprocess.describe()}",
            extra={
                "user_model": True, "format": self.format, "preprocess": spec, "preprocessing": self.preprocess.describe(),
                # same file = same weights: onnx and onnx-torch registrations of one file are one network
                "network": f"user:{self.sha256[:16]}",
                "fingerprint": fingerprint[:16],  # weights + format + preprocessing, for cache keys
            },
        )


def read_user_models(file: Path | None = None) -> dict[str, dict]:
    """The raw ``{name: entry}`` records of the JSON file ({} when it does not exist)."""
    file = Path(file) if file else user_models_file()
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text())
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' is not an object")
    except Exception as exc:
        raise BenchError(f"cannot read the user-model registry {file}: {exc}") from exc
    return models


def write_user_models(models: Mapping[str, dict], file: Path | None = None) -> Path:
    file = Path(file) if file else user_models_file()
    text = json.dumps({"version": FILE_VERSION, "models": dict(sorted(models.items()))}, indent=2) + "\n"
    atomic_write(file, lambda tmp: tmp.write_text(text))  # a crash never leaves half a registry
    return file


def is_user_model(name: str) -> bool:
    return name in RECOGNIZERS and RECOGNIZERS.entry(name).factory is create_user_recognizer


def _check_name(name: str, replace: bool, registered: Mapping[str, dict]) -> None:
    if not NAME_PATTERN.match(name):
        raise BenchError(f"model name {name!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'")
    if name in RECOGNIZERS and not is_user_model(name):
        raise BenchError(f"{name!r} is a built-in recognizer; choose another name for your model")
    if (name in registered or is_user_model(name)) and not replace:
        raise BenchError(f"a user model named {name!r} is already registered; remove it first or pass replace=True (--replace)")


def _embedding_dim(embedder: nn.Module, fmt: str, path: Path) -> int:
    face = torch.full((1, 3, CANONICAL_SIZE, CANONICAL_SIZE), 0.5)
    try:
        with torch.no_grad():
            out = embedder(face)
    except Exception as exc:
        hint = "; try format 'onnx' (onnxruntime) instead" if fmt == "onnx-torch" else ""
        raise BenchError(f"{path} ({fmt}) fails on a dummy face: {type(exc).__name__}: {exc}{hint}") from exc
    if out.dim() != 2 or not torch.isfinite(out).all():
        raise BenchError(f"{path} ({fmt}) returns {tuple(out.shape)} (finite: {bool(torch.isfinite(out).all())}) "
                         "for one face; expected a finite 1 x D embedding")
    return int(out.shape[1])


def register_user_model(
    name: str,
    path: str | Path,
    format: str,
    preprocess: Preprocess | Mapping[str, Any] | None = None,
    licence: str = DEFAULT_LICENCE,
    embedding_dim: int | None = None,
    *,
    replace: bool = False,
    registry_file: Path | None = None,
) -> ModelCard:
    """Register (and persist) a user's model; returns its card.

    ``preprocess``: a full :class:`Preprocess`, or a dict of fields overriding the format's defaults.
    The model is loaded once here (so a bad file fails now, not mid-run) and run on a dummy face to
    find ``embedding_dim`` when it is not given.
    """
    fmt = get_format(format)
    models = read_user_models(registry_file)
    _check_name(name, replace, models)
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise BenchError(f"model file {path} does not exist")
    spec = resolve_preprocess(fmt.name, path, preprocess)
    digest = sha256_of(path)
    dim = _embedding_dim(build_embedder(fmt.name, path, spec), fmt.name, path)
    if embedding_dim is not None and embedding_dim != dim:
        raise BenchError(f"{path} gives {dim}-D embeddings, not the {embedding_dim} given")
    record = UserModel(name, path, fmt.name, digest, spec, dim, licence or DEFAULT_LICENCE,
                       datetime.datetime.now().isoformat(timespec="seconds"))
    models[name] = record.to_json()
    write_user_models(models, registry_file)
    return _add_to_registry(record)


def _add_to_registry(record: UserModel) -> ModelCard:
    card = record.card()
    if is_user_model(record.name):
        RECOGNIZERS.remove(record.name)  # replacing: Registry.add would otherwise keep the old card
    RECOGNIZERS.add(record.name, create_user_recognizer, card=card)
    return card


def remove_user_model(name: str, registry_file: Path | None = None) -> None:
    """Forget a registration (the model file itself is left alone)."""
    models = read_user_models(registry_file)
    if name not in models:
        if name in RECOGNIZERS and not is_user_model(name):
            raise BenchError(f"{name!r} is a built-in recognizer, not a user model; it cannot be removed")
        known = ", ".join(sorted(models)) or "(none)"
        raise BenchError(f"no user model named {name!r}; registered user models: {known}")
    del models[name]
    write_user_models(models, registry_file)
    if is_user_model(name):
        RECOGNIZERS.remove(name)


def load_user_models(registry_file: Path | None = None) -> list[str]:
    """Register every model in the JSON file; problems become warnings so ``bench`` still starts."""
    file = Path(registry_file) if registry_file else user_models_file()
    try:
        models = read_user_models(file)
    except BenchError as exc:
        warnings.warn(f"{exc}; no user models loaded", stacklevel=2)
        return []
    loaded = []
    for name, data in models.items():
        try:
            record = UserModel.from_json(name, data, file.parent)
            # Registry.add refuses a name a built-in or a plugin already holds (this runs after both)
            RECOGNIZERS.add(name, create_user_recognizer, card=record.card())
            loaded.append(name)
        except (BenchError, KeyError, TypeError, ValueError) as exc:
            warnings.warn(f"skipping user model {name!r} from {file}: {exc}", stacklevel=2)
    return loaded


__all__ = [
    "ENV_VAR", "FORMATS", "Format", "Preprocess", "UserModel", "UserRecognizer", "create_user_recognizer",
    "load_user_models", "read_user_models", "register_user_model", "remove_user_model", "user_models_file",
]


# Read at the first lookup of a recognizer, not on import: `import methods` (or bench.zoo) must not
# read the user's config file, and its warnings belong to the command that uses the models.
RECOGNIZERS.add_loader(load_user_models)
