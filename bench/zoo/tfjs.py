"""A small TensorFlow.js graph-model interpreter in torch.

Reads a TFJS ``model.json`` (``modelTopology.node``: op / input / attr, as TF's GraphDef in JSON)
and its ``weightsManifest`` + ``.bin`` shards, keeps only the nodes the requested outputs need, and
runs them as an ``nn.Module`` whose constants are buffers (so ``.to(device)`` works and gradients
flow to the input only).

Layout: TF graphs are usually NHWC. Every rank-4 activation is stored NCHW *physically* here (what
torch's convolutions want); weights, per-channel constants, axes and paddings are converted once at
load, so execution does no transposes except around a rank-4 ``Reshape``. Hence a rank-4 graph
input is fed NCHW and a rank-4 output comes back NCHW. A graph whose convolutions say
``data_format=NCHW`` is stored as it is.

Only the ops of the face models in ``bench.zoo.human_models`` are implemented; anything else raises
:class:`UnsupportedOpError` naming the op and node.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BenchError, ShapeError

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


class TFJSError(BenchError):
    """A TFJS model file is malformed or inconsistent."""


class UnsupportedOpError(TFJSError, NotImplementedError):
    """The graph uses an op (or op option) this interpreter does not implement."""


# ----------------------------------------------------------------------------------------------
# model.json parsing


@dataclass(frozen=True)
class GraphNode:
    name: str
    op: str
    inputs: tuple[str, ...]  # producer node names; ':0' and control inputs ('^x') dropped
    attr: Mapping


def _producer(ref: str, consumer: str) -> str:
    name, _, port = ref.partition(":")
    if port not in ("", "0"):
        raise UnsupportedOpError(f"node {consumer!r} reads output {port} of {name!r}; only single-output ops are supported")
    return name


def parse_nodes(raw_nodes: Sequence[Mapping]) -> dict[str, GraphNode]:
    nodes = {}
    for raw in raw_nodes:
        inputs = tuple(_producer(r, raw["name"]) for r in raw.get("input", []) if not r.startswith("^"))
        nodes[raw["name"]] = GraphNode(raw["name"], raw["op"], inputs, raw.get("attr", {}))
    return nodes


def attr_str(node: GraphNode, key: str, default: str | None = None) -> str | None:
    value = node.attr.get(key, {}).get("s")
    return base64.b64decode(value).decode() if value is not None else default  # protobuf JSON: bytes are base64


def attr_strs(node: GraphNode, key: str) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.attr.get(key, {}).get("list", {}).get("s", [])]


def attr_ints(node: GraphNode, key: str, default: Sequence[int] = ()) -> list[int]:
    values = node.attr.get(key, {}).get("list", {}).get("i")
    return [int(v) for v in values] if values else list(default)


def attr_bool(node: GraphNode, key: str, default: bool = False) -> bool:
    return bool(node.attr.get(key, {}).get("b", default))


def attr_float(node: GraphNode, key: str, default: float = 0.0) -> float:
    return float(node.attr.get(key, {}).get("f", default))


# ----------------------------------------------------------------------------------------------
# weights


_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_STORAGE = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def _storage_dtype(spec: Mapping) -> np.dtype:
    if spec["dtype"] not in _DTYPES:
        raise UnsupportedOpError(f"weight {spec['name']!r} has unsupported dtype {spec['dtype']!r}")
    quant = spec.get("quantization")
    return np.dtype(_STORAGE[quant["dtype"]] if quant else _DTYPES[spec["dtype"]])


def _nbytes(spec: Mapping) -> int:
    return math.prod(int(s) for s in spec["shape"]) * _storage_dtype(spec).itemsize


def _decode_weight(spec: Mapping, data: bytes, offset: int) -> np.ndarray:
    """One weight from a group's concatenated shards, dequantised to its declared dtype."""
    shape = [int(s) for s in spec["shape"]]
    if offset + _nbytes(spec) > len(data):
        raise TFJSError(f"weights data too short for {spec['name']!r}: need {offset + _nbytes(spec)} bytes, have {len(data)}")
    quant = spec.get("quantization")
    raw = np.frombuffer(data, dtype=_storage_dtype(spec), count=math.prod(shape), offset=offset)
    if quant and quant["dtype"] in ("uint8", "uint16"):  # affine quantisation: q * scale + min
        value = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        raw = np.round(value) if spec["dtype"] == "int32" else value
    return raw.astype(_DTYPES[spec["dtype"]]).reshape(shape)  # float16 storage widens here


def read_weights(manifest: Sequence[Mapping], base_dir: Path, wanted: set[str] | None = None) -> dict[str, np.ndarray]:
    """Decode the manifest's weights (only ``wanted`` ones if given); shard paths are relative to ``base_dir``."""
    weights = {}
    for group in manifest:
        data = b"".join((Path(base_dir) / p).read_bytes() for p in group["paths"])
        offset = 0  # offsets run on across a group's shards
        for spec in group["weights"]:
            if wanted is None or spec["name"] in wanted:
                weights[spec["name"]] = _decode_weight(spec, data, offset)
            offset += _nbytes(spec)
    return weights


# ----------------------------------------------------------------------------------------------
# graph analysis


def output_node_name(ref: str) -> str:
    """``'name:0'`` (a signature's spelling) -> ``'name'``."""
    return _producer(ref, "<outputs>")


def schedule(nodes: Mapping[str, GraphNode], outputs: Sequence[str]) -> list[str]:
    """The nodes ``outputs`` depend on, in execution order (iterative DFS: deep graphs, no recursion limit)."""
    order: list[str] = []
    done: set[str] = set()
    for out in outputs:
        if out not in nodes:
            raise TFJSError(f"unknown output node {out!r} (the graph has {len(nodes)} nodes)")
        if out in done:
            continue
        on_path = {out}
        stack = [(out, iter(nodes[out].inputs))]
        while stack:
            name, deps = stack[-1]
            for dep in deps:
                if dep in done:
                    continue
                if dep not in nodes:
                    raise TFJSError(f"node {name!r} reads unknown node {dep!r}")
                if dep in on_path:
                    raise TFJSError(f"the graph has a cycle through {dep!r}")
                on_path.add(dep)
                stack.append((dep, iter(nodes[dep].inputs)))
                break
            else:
                stack.pop()
                on_path.discard(name)
                done.add(name)
                order.append(name)
    return order


_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")


def graph_layout(nodes: Sequence[GraphNode]) -> str:
    """The graph-wide activation layout its convolutions declare (TF's default is NHWC)."""
    formats = {attr_str(n, "data_format", "NHWC") for n in nodes if n.op in _CONV_OPS}
    if len(formats) > 1:
        raise UnsupportedOpError(f"convolutions with mixed data_format {sorted(formats)} are not supported")
    layout = formats.pop() if formats else "NHWC"
    if layout not in ("NHWC", "NCHW"):
        raise UnsupportedOpError(f"data_format {layout!r} is not supported")
    return layout


def placeholder_shape(node: GraphNode, signature: Mapping | None) -> list[int] | None:
    """Declared logical input shape (-1 = any) from the node's attr, else the model signature."""
    shape = node.attr.get("shape", {}).get("shape")
    if not shape or shape.get("unknownRank"):
        inputs = (signature or {}).get("inputs", {})
        spec = inputs.get(node.name) or inputs.get(f"{node.name}:0")
        shape = spec.get("tensorShape") if spec else None
    if not shape or shape.get("unknownRank"):
        return None
    return [int(d.get("size", -1)) for d in shape.get("dim", [])]


# ----------------------------------------------------------------------------------------------
# compiling nodes into steps


@dataclass
class _Value:
    rank: int
    const: np.ndarray | None = None  # logical (TF-layout) value of a Const or an Identity of one


@dataclass(frozen=True)
class _Step:
    name: str
    inputs: tuple[str, ...]  # env keys: node names (activations) or buffer keys ('_c<i>')
    fn: Callable[..., torch.Tensor]


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _expand_physical(rank: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A logical rank<4 tensor broadcast against a physically-NCHW rank-4 one (TF aligns trailing dims)."""

    def adapt(t: torch.Tensor) -> torch.Tensor:
        return t.reshape((1,) * (4 - rank) + tuple(t.shape)).permute(NHWC_TO_NCHW)

    return adapt


class _Builder:
    """Turns nodes into steps; owns the layout bookkeeping and registers constants on ``module``."""

    def __init__(self, module: nn.Module, layout: str, nodes: Sequence[GraphNode], outputs: Sequence[str], fuse: bool):
        self.module, self.layout, self.fuse = module, layout, fuse
        self.values: dict[str, _Value] = {}
        self.buffer_keys: list[str] = []
        self.absorbed: set[str] = set()  # nodes folded into an earlier step (fusion)
        self._cache: dict[tuple, str] = {}
        self._outputs = set(outputs)
        self._readers: dict[str, list[GraphNode]] = {}
        for node in nodes:
            for name in set(node.inputs):
                self._readers.setdefault(name, []).append(node)

    def permuted(self, rank: int) -> bool:
        """Rank-4 activations of an NHWC graph are stored NCHW."""
        return self.layout == "NHWC" and rank == 4

    def rank(self, name: str) -> int:
        return self.values[name].rank

    def define(self, name: str, rank: int) -> None:
        self.values[name] = _Value(rank)

    def const(self, name: str, consumer: GraphNode) -> np.ndarray:
        value = self.values[name].const
        if value is None:
            raise UnsupportedOpError(f"{consumer.op} node {consumer.name!r}: input {name!r} must be a constant")
        return value

    def buffer(self, array: np.ndarray, cache_key: tuple | None = None) -> str:
        if cache_key is not None and cache_key in self._cache:
            return self._cache[cache_key]
        key = f"_c{len(self.buffer_keys)}"  # '_' cannot start a TF node name, so keys never clash
        self.module.register_buffer(key, torch.from_numpy(np.ascontiguousarray(array)))
        self.buffer_keys.append(key)
        if cache_key is not None:
            self._cache[cache_key] = key
        return key

    def sole_reader(self, name: str) -> GraphNode | None:
        """The node reading ``name`` if fusing it into ``name``'s step is allowed and safe (one reader, not an output)."""
        readers = self._readers.get(name, [])
        return readers[0] if self.fuse and len(readers) == 1 and name not in self._outputs else None

    def const_operand(self, node: GraphNode, dynamic: str) -> tuple[np.ndarray, bool] | None:
        """For a binary ``node`` reading ``dynamic`` once: (its other input's constant value, dynamic is first)."""
        if len(node.inputs) != 2 or node.inputs.count(dynamic) != 1:
            return None
        other = node.inputs[1] if node.inputs[0] == dynamic else node.inputs[0]
        value = self.values[other].const if other in self.values else None
        return None if value is None else (value, node.inputs[0] == dynamic)

    def channel_vector(self, value: np.ndarray, channels: int) -> np.ndarray | None:
        """A constant varying only along the channel axis of a rank-4 activation -> a ``channels`` vector."""
        if value.ndim > 4:
            return None
        shape = (1,) * (4 - value.ndim) + value.shape  # as broadcast against the logical rank-4 tensor
        axis = 3 if self.layout == "NHWC" else 1
        if any(n != 1 for i, n in enumerate(shape) if i != axis) or shape[axis] not in (1, channels):
            return None
        return np.broadcast_to(value.reshape(-1).astype(np.float64), (channels,))

    def operand(self, name: str, rank: int) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
        """Env key for input ``name`` used at result rank ``rank``, plus a runtime adapter if it needs one."""
        value = self.values[name]
        if value.const is not None:
            array = value.const
            if self.permuted(rank):  # converted once here, not per call
                array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(NHWC_TO_NCHW)
            return self.buffer(array, (name, self.permuted(rank))), _same
        if self.permuted(rank) and value.rank < rank:
            return name, _expand_physical(value.rank)
        return name, _same


_Build = Callable[[_Builder, GraphNode], _Step]
_OPS: dict[str, _Build] = {}


def _op(*names: str) -> Callable[[_Build], _Build]:
    def register(build: _Build) -> _Build:
        for name in names:
            _OPS[name] = build
        return build

    return register


def _n_inputs(node: GraphNode, n: int) -> None:
    if len(node.inputs) != n:
        raise TFJSError(f"{node.op} node {node.name!r} has {len(node.inputs)} inputs, expected {n}")


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> _Build:
    def build(b: _Builder, node: GraphNode) -> _Step:
        _n_inputs(node, 2)
        x, y = node.inputs
        rank = max(b.rank(x), b.rank(y))  # numpy-style broadcasting
        (kx, fx), (ky, fy) = b.operand(x, rank), b.operand(y, rank)
        b.define(node.name, rank)
        return _Step(node.name, (kx, ky), lambda u, v: fn(fx(u), fy(v)))

    return build


for _name, _fn in {
    "Add": torch.add,
    "AddV2": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Maximum": torch.maximum,
    "Minimum": torch.minimum,
}.items():
    _OPS[_name] = _binary(_fn)


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> _Build:
    def build(b: _Builder, node: GraphNode) -> _Step:
        _n_inputs(node, 1)
        rank = b.rank(node.inputs[0])
        key, adapt = b.operand(node.inputs[0], rank)
        b.define(node.name, rank)
        return _Step(node.name, (key,), lambda x: fn(adapt(x)))

    return build


_OPS["Relu"] = _unary(F.relu)  # replaced below by the clamp-fusing builder
_OPS["Sigmoid"] = _unary(torch.sigmoid)
_OPS["Identity"] = _unary(_same)  # an Identity of a Const is folded into a constant instead


def _clamp_bound(b: _Builder, node: GraphNode, dynamic: str, rank: int) -> tuple[str, float] | None:
    """Relu, or Minimum / Maximum of ``dynamic`` with a scalar constant, as ('min' | 'max', bound)."""
    if node.op == "Relu":
        return "max", 0.0
    found = b.const_operand(node, dynamic) if node.op in ("Minimum", "Maximum") else None
    if found is None or found[0].size != 1 or found[0].ndim > rank:  # a scalar that does not change the shape
        return None
    return ("min" if node.op == "Minimum" else "max"), float(found[0].reshape(()))


def _clamp_fusing(fallback: _Build) -> _Build:
    """Chains of Relu / Minimum / Maximum with scalar constants (ReLU6 = Relu, Min 6, Max 0) -> one clamp."""

    def build(b: _Builder, node: GraphNode) -> _Step:
        dynamic = [i for i in node.inputs if b.values[i].const is None]
        if not b.fuse or len(dynamic) != 1 or _clamp_bound(b, node, dynamic[0], b.rank(dynamic[0])) is None:
            return fallback(b, node)
        x = dynamic[0]
        low, high, last, current = -math.inf, math.inf, x, node
        while current is not None and (bound := _clamp_bound(b, current, last, b.rank(x))) is not None:
            kind, value = bound  # max(clamp(t, lo, hi), v) == clamp(t, max(lo, v), max(hi, v)); min alike
            low, high = (max(low, value), max(high, value)) if kind == "max" else (min(low, value), min(high, value))
            if current is not node:
                b.absorbed.add(current.name)
            last, current = current.name, b.sole_reader(current.name)
        lo = None if low == -math.inf else low
        hi = None if high == math.inf else high
        key, adapt = b.operand(x, b.rank(x))
        b.define(last, b.rank(x))
        return _Step(last, (key,), lambda t: torch.clamp(adapt(t), lo, hi))

    return build


for _name in ("Relu", "Minimum", "Maximum"):
    _OPS[_name] = _clamp_fusing(_OPS[_name])


@_op("Softmax")
def _softmax(b: _Builder, node: GraphNode) -> _Step:
    _n_inputs(node, 1)
    rank = b.rank(node.inputs[0])
    dim = 1 if b.permuted(rank) else -1  # TF: the logical last axis
    key, adapt = b.operand(node.inputs[0], rank)
    b.define(node.name, rank)
    return _Step(node.name, (key,), lambda x: torch.softmax(adapt(x), dim=dim))


# --- convolutions


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF 'SAME': output ceil(size/stride); the odd pixel of padding goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial(values: Sequence[int], data_format: str) -> tuple[int, int]:
    """(h, w) of a 4-entry strides/dilations attr given in data_format order."""
    return (values[1], values[2]) if data_format == "NHWC" else (values[2], values[3])


@dataclass(frozen=True)
class ConvPadding:
    """How a TF convolution pads, resolved per input size (SAME depends on it)."""

    mode: str  # SAME | VALID | EXPLICIT
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    explicit: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right

    def amounts(self, height: int, width: int) -> tuple[int, int, int, int]:
        if self.mode == "SAME":
            return (*same_padding(height, self.kernel[0], self.stride[0], self.dilation[0]),
                    *same_padding(width, self.kernel[1], self.stride[1], self.dilation[1]))
        return self.explicit if self.mode == "EXPLICIT" else (0, 0, 0, 0)

    def apply(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """-> (input, conv padding): symmetric padding goes to the conv itself (no copy), asymmetric is F.pad."""
        top, bottom, left, right = self.amounts(x.shape[-2], x.shape[-1])
        if top == bottom and left == right:
            return x, (top, left)
        return F.pad(x, (left, right, top, bottom)), (0, 0)


def _conv_padding(node: GraphNode, kernel_hw: tuple[int, int], data_format: str) -> ConvPadding:
    mode = attr_str(node, "padding", "VALID")
    if mode not in ("SAME", "VALID", "EXPLICIT"):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: padding {mode!r} is not supported")
    explicit = (0, 0, 0, 0)
    if mode == "EXPLICIT":
        pads = attr_ints(node, "explicit_paddings")  # 4 (before, after) pairs in data_format order
        h, w = (2, 4) if data_format == "NHWC" else (4, 6)
        explicit = (pads[h], pads[h + 1], pads[w], pads[w + 1])
    fmt_default = [1, 1, 1, 1]
    return ConvPadding(
        mode,
        kernel_hw,
        _spatial(attr_ints(node, "strides", fmt_default), data_format),
        _spatial(attr_ints(node, "dilations", fmt_default), data_format),
        explicit,
    )


def _conv_epilogue(b: _Builder, conv: str, channels: int) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Fold the per-channel Mul / Add / Sub-by-constant chain after a conv (an inference BatchNorm)
    -> (name of the chain's last node, per-channel scale for the weights, bias or None)."""
    scale, shift, last = np.ones(channels), np.zeros(channels), conv
    while (reader := b.sole_reader(last)) is not None and reader.op in ("Mul", "Add", "AddV2", "Sub"):
        found = b.const_operand(reader, last)
        vec = None if found is None else b.channel_vector(found[0], channels)
        if vec is None or (reader.op == "Sub" and not found[1]):  # const - x would flip the sign: not folded
            break
        if reader.op == "Mul":
            scale, shift = scale * vec, shift * vec
        else:
            shift = shift - vec if reader.op == "Sub" else shift + vec
        b.absorbed.add(reader.name)
        last = reader.name
    return last, scale, (shift if last != conv else None)


def _build_conv(b: _Builder, node: GraphNode, depthwise: bool) -> _Step:
    _n_inputs(node, 2)
    x, w = node.inputs
    if b.rank(x) != 4:
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: input must be rank 4, got rank {b.rank(x)}")
    kernel = b.const(w, node)  # HWIO (Conv2D) or HW C M (depthwise, channel multiplier M)
    kh, kw, cin, cout = kernel.shape
    if depthwise:  # TF output channel c*M + m == torch group c's m-th output
        weight, groups = kernel.reshape(kh, kw, cin * cout).transpose(2, 0, 1)[:, None], cin
    else:
        weight, groups = kernel.transpose(3, 2, 0, 1), 1
    pad = _conv_padding(node, (kh, kw), attr_str(node, "data_format", "NHWC"))
    last, scale, bias = _conv_epilogue(b, node.name, weight.shape[0])
    key_x, adapt = b.operand(x, 4)
    keys = [key_x, b.buffer((weight * scale[:, None, None, None]).astype(np.float32))]
    if bias is not None:
        keys.append(b.buffer(bias.astype(np.float32)))
    b.define(last, 4)

    def run(inp: torch.Tensor, weight_t: torch.Tensor, bias_t: torch.Tensor | None = None) -> torch.Tensor:
        inp, padding = pad.apply(adapt(inp))
        return F.conv2d(inp, weight_t, bias_t, pad.stride, padding, pad.dilation, groups)

    return _Step(last, tuple(keys), run)


_OPS["Conv2D"] = lambda b, node: _build_conv(b, node, depthwise=False)
_OPS["DepthwiseConv2dNative"] = lambda b, node: _build_conv(b, node, depthwise=True)


# --- shape ops


@_op("Pad")
def _pad(b: _Builder, node: GraphNode) -> _Step:
    _n_inputs(node, 2)
    x, pads_name = node.inputs
    rank = b.rank(x)
    pads = b.const(pads_name, node).reshape(rank, 2).astype(int).tolist()
    if b.permuted(rank):
        pads = [pads[axis] for axis in NHWC_TO_NCHW]  # rows in physical order
    flat = tuple(v for before, after in reversed(pads) for v in (before, after))  # F.pad: last dim first
    key, adapt = b.operand(x, rank)
    b.define(node.name, rank)
    return _Step(node.name, (key,), lambda t: F.pad(adapt(t), flat))


@_op("Reshape")
def _reshape(b: _Builder, node: GraphNode) -> _Step:
    _n_inputs(node, 2)
    x, shape_name = node.inputs
    target = tuple(int(v) for v in b.const(shape_name, node).reshape(-1))
    rank_in, rank_out = b.rank(x), len(target)
    to_logical, to_physical = b.permuted(rank_in), b.permuted(rank_out)
    key, adapt = b.operand(x, rank_in)
    b.define(node.name, rank_out)

    def run(t: torch.Tensor) -> torch.Tensor:
        t = adapt(t)
        if to_logical:  # TF flattens in NHWC order
            t = t.permute(NCHW_TO_NHWC)
        t = t.reshape(target)
        return t.permute(NHWC_TO_NCHW) if to_physical else t

    return _Step(node.name, (key,), run)


@_op("Mean")
def _mean(b: _Builder, node: GraphNode) -> _Step:
    _n_inputs(node, 2)
    x, axes_name = node.inputs
    rank = b.rank(x)
    axes = sorted({int(a) % rank for a in b.const(axes_name, node).reshape(-1)})
    keep = attr_bool(node, "keep_dims")
    order = list(NHWC_TO_NCHW) if b.permuted(rank) else list(range(rank))  # logical axis at each physical dim
    dims = [order.index(a) for a in axes]
    kept = [a for a in order if a not in axes]
    # without keep_dims a permuted tensor loses rank 4: restore the logical order of what is left
    reorder = None if keep or kept == sorted(kept) else [kept.index(a) for a in sorted(kept)]
    key, adapt = b.operand(x, rank)
    b.define(node.name, rank if keep else rank - len(axes))

    def run(t: torch.Tensor) -> torch.Tensor:
        t = adapt(t)
        if not dims:  # TF: no axes is the identity (torch would reduce everything)
            return t
        t = t.mean(dim=dims, keepdim=keep)
        return t.permute(reorder) if reorder else t

    return _Step(node.name, (key,), run)


# --- matrix multiply (+ fused bias / activation)


def _prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, x * alpha)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu,
    "Relu6": lambda x: F.hardtanh(x, 0.0, 6.0),
    "Elu": F.elu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
}


def _fused_parts(node: GraphNode) -> tuple[bool, str | None]:
    """(_FusedMatMul's fused_ops) -> (has BiasAdd, activation name or None)."""
    fused = attr_strs(node, "fused_ops") if node.op == "_FusedMatMul" else []
    has_bias = bool(fused) and fused[0] == "BiasAdd"
    rest = fused[1:] if has_bias else fused
    if len(rest) > 1 or (rest and rest[0] not in (*_ACTIVATIONS, "LeakyRelu", "Prelu")):
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: fused ops {fused} are not supported")
    return has_bias, (rest[0] if rest else None)


def _activation(node: GraphNode, name: str | None) -> Callable[..., torch.Tensor]:
    if name is None:
        return lambda x, *extra: x
    if name == "Prelu":
        return _prelu
    if name == "LeakyRelu":
        slope = attr_float(node, "leakyrelu_alpha", 0.2)
        return lambda x: F.leaky_relu(x, slope)
    fn = _ACTIVATIONS[name]
    return lambda x: fn(x)


@_op("MatMul", "_FusedMatMul")
def _matmul(b: _Builder, node: GraphNode) -> _Step:
    a, w, *args = node.inputs
    if b.rank(a) != 2 or b.rank(w) != 2:
        raise UnsupportedOpError(f"{node.op} node {node.name!r}: only rank-2 operands are supported")
    has_bias, act_name = _fused_parts(node)
    needed = int(has_bias) + int(act_name == "Prelu")
    if len(args) != needed:
        raise TFJSError(f"{node.op} node {node.name!r}: {len(args)} fused args, expected {needed}")
    trans_a, trans_b = attr_bool(node, "transpose_a"), attr_bool(node, "transpose_b")
    if b.values[w].const is not None:  # F.linear wants (out, in): transpose once at load
        kernel = b.values[w].const
        key_w, linear = b.buffer(kernel if trans_b else kernel.T, (w, "linear", trans_b)), True
    else:
        key_w, linear = w, False
    keys = [b.operand(a, 2)[0], key_w] + [b.operand(arg, b.rank(arg))[0] for arg in args]
    act = _activation(node, act_name)
    b.define(node.name, 2)

    def run(x: torch.Tensor, weight: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        x = x.mT if trans_a else x
        bias = extra[0] if has_bias else None
        if linear:
            y = F.linear(x, weight, bias)
        else:
            y = x @ (weight.mT if trans_b else weight)
            y = y + bias if bias is not None else y
        return act(y, *extra[int(has_bias):])

    return _Step(node.name, tuple(keys), run)


# ----------------------------------------------------------------------------------------------
# the module


class TFJSGraph(nn.Module):
    """The part of a TFJS graph that ``outputs`` need, executable in torch.

    ``forward(*inputs)`` takes one tensor per graph input (``input_names`` order; rank-4 ones NCHW)
    and returns the output tensor, or a tuple of them when several outputs were requested.

    ``fuse`` (default on) folds per-channel affine constants after a convolution (inference
    BatchNorm) into its weights and chains of Relu/Minimum/Maximum-by-scalar into one clamp: about
    twice as fast on MobileNet-style graphs, equal up to float rounding; ``fuse=False`` runs every
    node as written.
    """

    def __init__(
        self,
        raw_nodes: Sequence[Mapping],
        weights: Mapping[str, np.ndarray],
        outputs: str | Sequence[str],
        signature: Mapping | None = None,
        fuse: bool = True,
    ):
        super().__init__()
        nodes = parse_nodes(raw_nodes)
        self.output_names = [output_node_name(o) for o in ([outputs] if isinstance(outputs, str) else outputs)]
        order = [nodes[n] for n in schedule(nodes, self.output_names)]
        self.layout = graph_layout(order)
        self.node_names = [n.name for n in order]  # what survived pruning, in execution order
        self.ops_used = sorted({n.op for n in order})
        builder = _Builder(self, self.layout, order, self.output_names, fuse)
        self.input_names: list[str] = []
        self._input_shapes: dict[str, list[int] | None] = {}
        self._steps: list[_Step] = []
        for node in order:  # constants first: fusion looks ahead at the constants of later nodes
            self._constant(builder, node, weights)
        for node in order:
            if node.name not in builder.values and node.name not in builder.absorbed:
                self._compile(builder, node, signature)
        self._buffer_keys = builder.buffer_keys
        self._release = self._release_plan()

    @staticmethod
    def _constant(b: _Builder, node: GraphNode, weights: Mapping[str, np.ndarray]) -> None:
        if node.op == "Const":
            if node.name not in weights:
                raise TFJSError(f"Const node {node.name!r} has no entry in the weights manifest")
            value = np.asarray(weights[node.name])
            b.values[node.name] = _Value(value.ndim, value)
        elif node.op == "Identity" and node.inputs and node.inputs[0] in b.values:
            b.values[node.name] = b.values[node.inputs[0]]  # an Identity of a constant stays a constant

    def _compile(self, b: _Builder, node: GraphNode, signature: Mapping | None) -> None:
        if node.op == "Placeholder":
            shape = placeholder_shape(node, signature)
            if shape is None:
                raise TFJSError(f"input {node.name!r} declares no shape; its rank is needed")
            self.input_names.append(node.name)
            self._input_shapes[node.name] = shape
            b.define(node.name, len(shape))
        elif node.op in _OPS:
            self._steps.append(_OPS[node.op](b, node))
        else:
            raise UnsupportedOpError(
                f"TFJS op {node.op!r} (node {node.name!r}) is not implemented; supported: {', '.join(sorted(_OPS))}"
            )

    def _release_plan(self) -> list[list[str]]:
        """Which activations each step is the last reader of (freed then: lower peak memory)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self._steps):
            for key in step.inputs:
                last[key] = i
        keep = set(self.output_names) | set(self._buffer_keys)
        plan: list[list[str]] = [[] for _ in self._steps]
        for key, i in last.items():
            if key not in keep:
                plan[i].append(key)
        return plan

    @classmethod
    def from_json(cls, model_json: str | Path, outputs: str | Sequence[str], fuse: bool = True) -> "TFJSGraph":
        """Load ``model.json`` and its weight shards (paths relative to it), decoding only needed constants."""
        model_json = Path(model_json)
        model = json.loads(model_json.read_text())
        raw_nodes = model["modelTopology"]["node"]
        names = [output_node_name(o) for o in ([outputs] if isinstance(outputs, str) else outputs)]
        nodes = parse_nodes(raw_nodes)
        wanted = {n for n in schedule(nodes, names) if nodes[n].op == "Const"}
        weights = read_weights(model.get("weightsManifest", []), model_json.parent, wanted)
        return cls(raw_nodes, weights, outputs, model.get("signature"), fuse)

    def physical_shape(self, name: str) -> list[int] | None:
        """The shape ``forward`` expects for input ``name`` (-1 = any): NCHW for a rank-4 NHWC input."""
        shape = self._input_shapes[name]
        if shape is not None and self.layout == "NHWC" and len(shape) == 4:
            shape = [shape[a] for a in NHWC_TO_NCHW]
        return shape

    def _check_input(self, name: str, x: torch.Tensor) -> None:
        shape = self.physical_shape(name)
        ok = shape is not None and x.dim() == len(shape) and all(s in (-1, d) for s, d in zip(shape, x.shape))
        if not ok:
            raise ShapeError(f"graph input {name!r} must have shape {shape} (-1 = any), got {tuple(x.shape)}")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ShapeError(f"the graph takes {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        env: dict[str, torch.Tensor] = {key: getattr(self, key) for key in self._buffer_keys}
        for name, x in zip(self.input_names, inputs):
            self._check_input(name, x)
            env[name] = x
        for step, release in zip(self._steps, self._release):
            env[step.name] = step.fn(*[env[k] for k in step.inputs])
            for key in release:
                del env[key]
        outs = tuple(self._output(env, name) for name in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def _output(self, env: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
        if name not in env:
            raise UnsupportedOpError(f"output {name!r} is a constant; only computed outputs are supported")
        return env[name]
