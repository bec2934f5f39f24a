"""A recognizer cut in two: a frozen *trunk* and a trainable copy of its last layer(s), the *tail*.

An attacker who fine-tunes a white-box recognizer on protected photos (``adaptive-finetune``,
:mod:`bench.stages.adaptive`) trains the tail only: the trunk's outputs are computed once and cached, so
training costs seconds on a CPU. ``tail(trunk(faces))`` equals the recognizer's raw embedding (before
its L2 normalisation) to float rounding; ``tests/test_adaptive.py`` checks it on real faces.

- ``dlib-resnet`` (torch port): trunk = chip warp, stem and the first 13 residual blocks, flattened
  (256 x 4 x 4 = 4,096 values a face); tail = the last (down-sampling) residual block, the global mean
  and the 256 -> 128 ``fc`` (1.2 M parameters).
- TFJS graphs ending in ``flatten -> MatMul -> Mul -> Add`` (a dense layer and a frozen batch norm; that
  is ``mobileface``): trunk = the graph up to the flatten (2,048 values); tail = one ``nn.Linear``
  holding the dense kernel with the batch norm folded in (2048 -> 256, 0.5 M parameters).
- Anything else (``hse-faceres`` ends in a global mean of a convolution; ``dlib-native`` and ONNX models
  are black-box): :func:`split_tail` returns None and the attacker falls back to a metric head on the
  frozen embedding.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .base import Recognizer, check_faces


@dataclass
class TailSplit:
    trunk: Callable[[torch.Tensor], torch.Tensor]  # canonical faces (N x 3 x 112 x 112, [0, 1]) -> N x F, frozen
    tail: nn.Module  # N x F -> N x D raw embedding; a trainable copy (the recognizer itself is never changed)
    layers: str  # what the tail is, for rows and cell keys

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.tail.parameters())


class _DlibTail(nn.Module):
    def __init__(self, block: nn.Module, fc: nn.Linear, shape: tuple[int, int, int]):
        super().__init__()
        self.block, self.fc, self.shape = copy.deepcopy(block), copy.deepcopy(fc), shape
        self.requires_grad_(True)  # the zoo freezes its networks; this copy is the attacker's to train

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(x.reshape(len(x), *self.shape)).mean(dim=(2, 3)))


def _dlib(model: Recognizer) -> TailSplit:
    import torch.nn.functional as F

    from .dlib_chip import canonical_to_chip

    net = model.net

    def trunk(faces: torch.Tensor) -> torch.Tensor:
        check_faces(faces)
        x = (canonical_to_chip(faces) * 255.0 - net.mean[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(net.bn1(net.conv1(x))), 3, 2)
        for block in net.blocks[:-1]:
            x = block(x)
        return x.flatten(1)

    last = len(net.blocks) - 1
    cin = net.blocks[-1].conv1.in_channels
    # the last block's input size follows from the 150 chip: measured once on a dummy face
    with torch.no_grad():
        side = int(round((trunk(torch.zeros(1, 3, 112, 112, device=model.device)).shape[1] / cin) ** 0.5))
    return TailSplit(trunk, _DlibTail(net.blocks[-1], net.fc, (cin, side, side)), f"blocks.{last}+fc")


def _tfjs_dense_tail(model: Recognizer) -> TailSplit | None:
    """The graph's output is Add(Mul(MatMul(x, kernel), scale), shift): cut at ``x``."""
    from .tfjs import TFJSGraph, output_node_name, parse_nodes, read_weights

    json_path = next((Path(f.verified_path()) for f in model.card.files if f.name.endswith(".json")), None)
    if json_path is None:
        return None
    raw = json.loads(json_path.read_text())
    nodes = parse_nodes(raw["modelTopology"]["node"])
    const = {n for n, node in nodes.items() if node.op == "Const"}

    def split(node_name: str, op: str) -> tuple[str, str] | None:
        """(dynamic input, constant input) of a binary ``op`` node, or None."""
        node = nodes.get(node_name)
        if node is None or node.op not in op.split("|") or len(node.inputs) != 2:
            return None
        a, b = node.inputs
        return (a, b) if b in const and a not in const else (b, a) if a in const and b not in const else None

    add = split(output_node_name(model.card.extra.get("output", "")), "Add|AddV2")
    mul = add and split(add[0], "Mul")
    matmul = mul and split(mul[0], "MatMul")
    if not matmul:
        return None
    node = nodes[mul[0]]
    transposed = any(node.attr.get(k, {}).get("b") for k in ("transpose_a", "transpose_b"))
    if transposed or node.inputs[0] != matmul[0]:  # x @ kernel, as written
        return None
    w = read_weights(raw.get("weightsManifest", []), json_path.parent, {matmul[1], mul[1], add[1]})
    kernel, scale, shift = (np.asarray(w[k], np.float32) for k in (matmul[1], mul[1], add[1]))
    if kernel.ndim != 2 or scale.shape not in ((kernel.shape[1],), ()) or shift.shape not in ((kernel.shape[1],), ()):
        return None
    graph = TFJSGraph.from_json(json_path, matmul[0]).to(model.device)
    dense = nn.Linear(*kernel.shape).to(model.device)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy((kernel * scale).T.copy()))
        dense.bias.copy_(torch.from_numpy(np.broadcast_to(shift, kernel.shape[1]).copy()))

    def trunk(faces: torch.Tensor) -> torch.Tensor:
        check_faces(faces)
        return graph(model.graph_input(faces)).flatten(1)

    return TailSplit(trunk, dense, f"{mul[0].split('/')[0]}+{add[0].split('/')[0]}")


def split_tail(model: Recognizer) -> TailSplit | None:
    """The model's trunk and a trainable copy of its tail, or None where this model has no torch tail."""
    from .dlib_resnet import DlibResNetRecognizer
    from .human_models import TFJSRecognizer

    if isinstance(model, DlibResNetRecognizer):
        return _dlib(model)
    if isinstance(model, TFJSRecognizer):
        return _tfjs_dense_tail(model)
    return None
