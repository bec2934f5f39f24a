"""Reader for dlib's own serialized ResNet-29 face descriptor, ``dlib_face_recognition_resnet_model_v1.dat``.

No dlib needed: the byte format is re-implemented from dlib's C++ source (dlib 20.0.1):

* integers (``serialize.h``): one control byte (low 4 bits = byte count, bit 7 = negative for signed
  types), then the magnitude little-endian; bools are the ASCII bytes '0'/'1'; strings are an integer
  length plus raw bytes; floats/doubles are ``float_details``: integer mantissa then integer exponent,
  value = mantissa * 2**exponent (exponents 32000/32001/32002 mean +inf/-inf/nan).
* tensors (``cuda/tensor.h``): version 2, four int64 dims (n, k, nr, nc), then raw little-endian
  float32; ``alias_tensor`` views: version 1 plus the four dims, no data.
* networks (``dnn/core.h``): ``add_loss_layer`` writes its version, the loss, then the network. Every
  ``add_layer`` writes its version, *then its subnetwork*, then its own layer details and training
  state, so the outer layers' version numbers come first and the layer details follow from the input
  upwards (network order). Tag and skip layers write only a version and their subnetwork.

The expected network is the one ``dlib.face_recognition_model_v1`` declares
(``tools/python/src/face_recognition.cpp``); the file is checked against it layer by layer, so any
other file fails with a :class:`DlibDatError` naming the byte offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BenchError

# Exponent markers of float_details (dlib/float_details.h).
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002
INPUT_SIZE = 150


class DlibDatError(BenchError):
    """The file is not dlib's ResNet-29 face recognition network (or is truncated/corrupt)."""


@dataclass
class DlibNet:
    """What the .dat holds: named float32 parameters in network order, plus the input normalisation."""

    params: dict[str, np.ndarray]
    input_mean: tuple[float, float, float]  # per-channel RGB means subtracted before dividing by 256
    loss: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# primitive decoders


class _Reader:
    def __init__(self, data: bytes, origin: str):
        self.data, self.pos, self.origin = data, 0, origin

    def fail(self, what: str) -> DlibDatError:
        return DlibDatError(
            f"{self.origin} is not dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat): "
            f"{what} at byte {self.pos}"
        )

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends early (needed {n} more bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self, signed: bool = True) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        # dlib rejects sizes of 0 or above 8 and (for unsigned types) any sign bit; it never
        # writes bits 0x70, so a file with them set is not a dlib file
        if size == 0 or size > 8 or control & 0x70 or (not signed and control & 0x80):
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def uinteger(self) -> int:
        return self.integer(signed=False)

    def double(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent == _IS_INF:
            return math.inf
        if exponent == _IS_NINF:
            return -math.inf
        if exponent == _IS_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def string(self, max_len: int = 64) -> str:
        n = self.uinteger()
        if n > max_len:
            raise self.fail(f"implausible string length {n}")
        raw = self.take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-text layer name {raw!r}") from None

    def tag(self, *allowed: str) -> str:
        start = self.pos
        name = self.string()
        if name not in allowed:
            self.pos = start
            raise self.fail(f"expected {' or '.join(allowed)}, found {name!r}")
        return name

    def version(self, allowed: range | tuple, what: str) -> int:
        v = self.integer()
        if v not in allowed:
            raise self.fail(f"unexpected {what} version {v}")
        return v

    def dims(self) -> tuple[int, int, int, int]:
        dims = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor size {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        self.version((2,), "tensor")
        dims = self.dims()
        count = math.prod(dims)  # python ints: garbage sizes must not overflow
        # '<f4': dlib writes little-endian IEEE floats regardless of the host
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        self.version((1,), "alias_tensor")
        return self.dims()

    def expect(self, got, want, what: str) -> None:
        if got != want:
            raise self.fail(f"{what} is {got}, expected {want}")


# ---------------------------------------------------------------------------------------------
# the network dlib.face_recognition_model_v1 declares, outermost layer first (as in the C++ type)


@dataclass(frozen=True)
class _Layer:
    kind: str  # con | affine | relu | max_pool | avg_pool | add_prev | fc | tag | skip
    name: str = ""  # parameter prefix for layers that carry weights
    args: tuple = ()

    @property
    def is_add_layer(self) -> bool:  # tag/skip layers are not add_layers and carry no details
        return self.kind not in ("tag", "skip")


def _block(prefix: str, n: int, stride: int, cin: int) -> list[_Layer]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride>>>>>
    return [
        _Layer("affine", f"{prefix}.bn2", (n,)),
        _Layer("con", f"{prefix}.conv2", (n, n, 3, 1)),
        _Layer("relu"),
        _Layer("affine", f"{prefix}.bn1", (n,)),
        _Layer("con", f"{prefix}.conv1", (n, cin, 3, stride)),
    ]


def _ares(prefix: str, n: int, cin: int) -> list[_Layer]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>: identity shortcut
    return [_Layer("relu"), _Layer("add_prev", args=(1,)), *_block(prefix, n, 1, cin), _Layer("tag", args=(1,))]


def _ares_down(prefix: str, n: int, cin: int) -> list[_Layer]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>: pooled shortcut
    return [
        _Layer("relu"),
        _Layer("add_prev", args=(2,)),
        _Layer("avg_pool", args=(2, 2, 2, 2)),
        _Layer("skip", args=(1,)),
        _Layer("tag", args=(2,)),
        *_block(prefix, n, 2, cin),
        _Layer("tag", args=(1,)),
    ]


# (filters, downsampling?) of the residual blocks from the input upwards: alevel4 .. alevel0
BLOCKS: tuple[tuple[int, bool], ...] = (
    (32, False), (32, False), (32, False),
    (64, True), (64, False), (64, False), (64, False),
    (128, True), (128, False), (128, False),
    (256, True), (256, False), (256, False),
    (256, True),
)
EMBEDDING_DIM = 128
STEM_CHANNELS = 32


def network_layers() -> list[_Layer]:
    """The layer chain of ``anet_type``, outermost (fc) first, down to the stem conv on the input."""
    chain = [_Layer("fc", "fc", (EMBEDDING_DIM,)), _Layer("avg_pool", args=(0, 0, 1, 1))]
    for i in reversed(range(len(BLOCKS))):
        n, down = BLOCKS[i]
        cin = BLOCKS[i - 1][0] if i else STEM_CHANNELS
        chain += _ares_down(f"blocks.{i}", n, cin) if down else _ares(f"blocks.{i}", n, cin)
    chain += [
        _Layer("max_pool", args=(3, 3, 2, 2)),
        _Layer("relu"),
        _Layer("affine", "bn1", (STEM_CHANNELS,)),
        # the innermost add_layer: its subnetwork is the input layer
        _Layer("con", "conv1", (STEM_CHANNELS, 3, 7, 2)),
    ]
    return chain


# ---------------------------------------------------------------------------------------------
# layer details (dnn/layers.h, dnn/loss.h, dnn/input.h)


def _read_con(r: _Reader, layer: _Layer, out: dict[str, np.ndarray]) -> None:
    version = r.tag("con_4", "con_5", "con_6")
    n, cin, k, stride = layer.args
    pad = k // 2 if stride == 1 else 0  # con_'s default padding
    params = r.tensor()
    r.expect(r.integer(), n, f"{layer.name} num_filters")
    r.expect((r.integer(), r.integer()), (k, k), f"{layer.name} kernel size")
    r.expect((r.integer(), r.integer()), (stride, stride), f"{layer.name} stride")
    r.expect((r.integer(), r.integer()), (pad, pad), f"{layer.name} padding")
    fshape, bshape = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.double()
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6" and r.boolean():
        raise r.fail(f"{layer.name} has a fused relu, which this network does not use")
    r.expect(fshape, (n, cin, k, k), f"{layer.name} filter shape")
    flat = params.reshape(-1)
    nw = int(np.prod(fshape))
    nb = n if use_bias else 0
    if use_bias:
        r.expect(int(np.prod(bshape)), n, f"{layer.name} bias count")
    r.expect(flat.size, nw + nb, f"{layer.name} parameter count")
    out[f"{layer.name}.weight"] = flat[:nw].reshape(fshape).copy()  # dlib filters are already OIHW
    out[f"{layer.name}.bias"] = flat[nw:].copy() if use_bias else np.zeros(n, np.float32)


def _read_affine(r: _Reader, layer: _Layer, out: dict[str, np.ndarray]) -> None:
    version = r.tag("affine_", "affine_2", "bn_con2")
    params = r.tensor().reshape(-1)
    gshape, _bshape = r.alias(), r.alias()
    (c,) = layer.args
    r.expect(int(np.prod(gshape)), c, f"{layer.name} channels")
    r.expect(params.size, 2 * c, f"{layer.name} parameter count")
    gamma, beta = params[:c].astype(np.float64), params[c:].astype(np.float64)
    if version == "bn_con2":
        # a training-mode batchnorm: fold the running statistics exactly as affine_(const bn_&) does
        r.tensor(), r.tensor()  # batch means / invstds of the last training step
        mean, var = r.tensor().reshape(-1), r.tensor().reshape(-1)
        r.uinteger(), r.uinteger()  # num_updates, running_stats_window_size
        for _ in range(4):
            r.double()
        eps = r.double()
        gamma = gamma / np.sqrt(var.astype(np.float64) + eps)
        beta = beta - gamma * mean
    else:
        r.expect(r.integer(), 0, f"{layer.name} mode (0 = CONV_MODE)")
        if version == "affine_2" and r.boolean():
            raise r.fail(f"{layer.name} is disabled")
    out[f"{layer.name}.gamma"] = gamma.astype(np.float32)
    out[f"{layer.name}.beta"] = beta.astype(np.float32)


def _read_relu(r: _Reader, layer: _Layer, out: dict) -> None:
    if r.tag("relu_", "relu_2") == "relu_2" and r.boolean():
        raise r.fail("a relu layer is disabled")


def _read_pool(r: _Reader, layer: _Layer, out: dict) -> None:
    r.tag("max_pool_2" if layer.kind == "max_pool" else "avg_pool_2")
    nr, nc, sy, sx = layer.args
    pad = (nr // 2 if sy == 1 else 0, nc // 2 if sx == 1 else 0)
    got = (r.integer(), r.integer(), r.integer(), r.integer(), r.integer(), r.integer())
    r.expect(got, (nr, nc, sy, sx, *pad), f"{layer.kind} (nr, nc, stride_y, stride_x, pad_y, pad_x)")


def _read_add_prev(r: _Reader, layer: _Layer, out: dict) -> None:
    r.tag("add_prev_")


def _read_fc(r: _Reader, layer: _Layer, out: dict[str, np.ndarray]) -> None:
    version = r.tag("fc_2", "fc_3")
    (n_out,) = layer.args
    r.expect(r.uinteger(), n_out, "fc num_outputs")
    n_in = r.uinteger()
    params = r.tensor().reshape(-1)
    wshape, _ = r.alias(), r.alias()
    r.expect(r.integer(), 1, "fc bias mode (1 = FC_NO_BIAS)")
    for _ in range(4):
        r.double()
    if version == "fc_3":
        r.boolean()  # use_bias: irrelevant without a bias
    r.expect((wshape[0], wshape[1]), (n_in, n_out), "fc weight shape")
    r.expect(params.size, n_in * n_out, "fc parameter count")
    # dlib computes x @ W with W = (inputs x outputs); store torch's (outputs x inputs)
    out[f"{layer.name}.weight"] = params.reshape(n_in, n_out).T.copy()


_DETAILS = {
    "con": _read_con, "affine": _read_affine, "relu": _read_relu, "max_pool": _read_pool,
    "avg_pool": _read_pool, "add_prev": _read_add_prev, "fc": _read_fc,
}


def _read_training_state(r: _Reader, version: int, is_input_layer: bool) -> None:
    """The add_layer fields after the details: three bools and the (normally empty) work tensors."""
    for _ in range(3):
        r.boolean()
    # x_grad, cached_output, then grad_final (input add_layer) or params_grad (add_layer version 2)
    for _ in range(3 if is_input_layer or version >= 2 else 2):
        r.tensor()
    if is_input_layer and version >= 3:
        r.uinteger()  # _sample_expansion_factor


def _read_input(r: _Reader) -> tuple[float, float, float]:
    r.tag("input_rgb_image_sized")
    mean = (r.double(), r.double(), r.double())
    r.expect((r.uinteger(), r.uinteger()), (INPUT_SIZE, INPUT_SIZE), "input size")
    return mean


def _read_loss(r: _Reader) -> dict[str, float]:
    r.version((1,), "add_loss_layer")
    if r.tag("loss_metric_", "loss_metric_2") == "loss_metric_":
        return {"margin": 0.1, "distance_threshold": 0.75}  # dlib's hard-coded values for version 1
    return {"margin": r.double(), "distance_threshold": r.double()}


def parse_dlib_dat(data: bytes, origin: str = "<bytes>") -> DlibNet:
    """Decode the bytes of dlib's face recognition network (see the module docstring for the format)."""
    r = _Reader(data, origin)
    loss = _read_loss(r)
    chain = network_layers()
    # prefixes: each add_layer's version, outermost first; tag/skip layers have version 1
    versions = []
    for i, layer in enumerate(chain):
        innermost = i == len(chain) - 1
        allowed = (1,) if not layer.is_add_layer else (range(2, 4) if innermost else range(1, 3))
        versions.append(r.version(allowed, f"{layer.kind} layer"))
    mean = _read_input(r)
    params: dict[str, np.ndarray] = {}
    # details from the input upwards: network order
    for i in reversed(range(len(chain))):
        layer = chain[i]
        if not layer.is_add_layer:
            continue
        _DETAILS[layer.kind](r, layer, params)
        _read_training_state(r, versions[i], is_input_layer=i == len(chain) - 1)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    for name, arr in params.items():
        if not np.isfinite(arr).all():
            raise r.fail(f"non-finite values in {name}")
    return DlibNet(params=params, input_mean=mean, loss=loss)


def load_dlib_dat(path: str | Path) -> DlibNet:
    """Read and decode a .dat file; any file that is not this network raises :class:`DlibDatError`."""
    path = Path(path)
    if not path.is_file():
        raise DlibDatError(f"{path} does not exist")
    data = path.read_bytes()
    if data[:3] == b"BZh":  # dlib's own loader gives the same hint
        raise DlibDatError(f"{path} is bzip2-compressed: decompress it first (bunzip2)")
    return parse_dlib_dat(data, str(path))


def conv_names() -> list[str]:
    """Names of the 29 conv layers in network order (stem first)."""
    return ["conv1"] + [f"blocks.{i}.conv{j}" for i in range(len(BLOCKS)) for j in (1, 2)]


__all__ = ["DlibDatError", "DlibNet", "BLOCKS", "EMBEDDING_DIM", "INPUT_SIZE", "load_dlib_dat", "parse_dlib_dat",
           "network_layers", "conv_names"]
