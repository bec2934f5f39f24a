"""The torch TFJS interpreter (bench.zoo.tfjs) and the two recognizers built on it (bench.zoo.human_models).

Tiny hand-built graphs check the op semantics against hand-computed numbers; the real models are
checked against outputs of the real TFJS runtime (fixtures made by tests/reference/tfjs/).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from functools import lru_cache

import cv2
import numpy as np
import pytest
import torch

from bench.errors import BenchError, WeightFileError
from bench.paths import data_dir, repo_root
from bench.zoo import create_recognizer
from bench.zoo.human_models import HSE_CARD, MOBILEFACE_CARD, TFJSRecognizer, hse_variants
from bench.zoo.tfjs import TFJSGraph, UnsupportedOpError, read_weights, same_padding
from bench.zoo.weights import WeightFile

MODELS = ("hse-faceres", "mobileface")
FIXTURES = repo_root() / "tests" / "fixtures"


# ---------------------------------------------------------------------------------------------
# tiny graphs


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def placeholder(shape, name: str = "x") -> dict:
    return {"name": name, "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}}}}


def const(name: str) -> dict:
    return {"name": name, "op": "Const", "attr": {}}


def node(name: str, op: str, *inputs: str, **attr) -> dict:
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def conv(op: str, strides=(1, 1, 1, 1), padding: str = "SAME", fmt: str = "NHWC", dilations=(1, 1, 1, 1), **attr) -> dict:
    return node("y", op, "x", "w", strides=_ints(strides), padding=_s(padding), data_format=_s(fmt),
                dilations=_ints(dilations), **attr)


def run_nhwc(nodes: list[dict], weights: dict, x_nhwc: np.ndarray, output: str = "y", fuse: bool = True) -> np.ndarray:
    """Run a tiny graph on a logical NHWC array; rank-4 results come back NHWC too."""
    graph = TFJSGraph(nodes, {k: np.asarray(v) for k, v in weights.items()}, output, fuse=fuse)
    x = torch.from_numpy(np.asarray(x_nhwc, dtype=np.float32))
    y = graph(x.permute(0, 3, 1, 2) if x.dim() == 4 else x)
    return (y.permute(0, 2, 3, 1) if y.dim() == 4 else y).numpy()


GRID_4X4 = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)  # x[i, j] = 4i + j + 1


def test_same_padding_is_tf_asymmetric():
    assert same_padding(4, 3, 2) == (0, 1)  # the odd pixel goes after
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(4, 4, 1) == (1, 2)
    assert same_padding(7, 3, 1, dilation=2) == (2, 2)
    assert same_padding(6, 1, 2) == (0, 0)


@pytest.mark.parametrize("op", ["Conv2D", "DepthwiseConv2dNative"])
def test_same_stride2_pads_bottom_right(op):
    # 3x3 box filter, stride 2 on 4x4: windows rows/cols {0..2} and {2..3 + one zero pad}.
    # Hand sums: (0,0) 1+2+3+5+6+7+9+10+11 = 54; (0,1) 3+4+7+8+11+12 = 45;
    # (1,0) 9+10+11+13+14+15 = 72; (1,1) 11+12+15+16 = 54. (Symmetric padding would give 14 at (0,0).)
    y = run_nhwc([placeholder([1, 4, 4, 1]), const("w"), conv(op, strides=(1, 2, 2, 1))],
                 {"w": np.ones((3, 3, 1, 1), np.float32)}, GRID_4X4)
    np.testing.assert_array_equal(y[0, :, :, 0], [[54, 45], [72, 54]])


def test_valid_padding_and_stride():
    y = run_nhwc([placeholder([1, 4, 4, 1]), const("w"), conv("Conv2D", strides=(1, 2, 2, 1), padding="VALID")],
                 {"w": np.ones((2, 2, 1, 1), np.float32)}, GRID_4X4)
    # 2x2 blocks: 1+2+5+6, 3+4+7+8, 9+10+13+14, 11+12+15+16
    np.testing.assert_array_equal(y[0, :, :, 0], [[14, 22], [46, 54]])


def test_explicit_padding_and_dilation():
    # 1x1 identity kernel with explicit pads (top 1, bottom 0, left 0, right 2) == np.pad of the input
    explicit = {"explicit_paddings": _ints((0, 0, 1, 0, 0, 2, 0, 0))}
    y = run_nhwc([placeholder([1, 4, 4, 1]), const("w"), conv("Conv2D", padding="EXPLICIT", **explicit)],
                 {"w": np.ones((1, 1, 1, 1), np.float32)}, GRID_4X4)
    np.testing.assert_array_equal(y[0, :, :, 0], np.pad(GRID_4X4[0, :, :, 0], ((1, 0), (0, 2))))
    # 3x3 ones kernel, dilation 2, VALID on a 5x5 grid x[i, j] = 5i + j + 1: taps at i, j in {0, 2, 4}
    # sum = 9 * 1 + 5 * 3 * (0 + 2 + 4) + 3 * (0 + 2 + 4) = 117
    grid5 = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    y = run_nhwc([placeholder([1, 5, 5, 1]), const("w"), conv("Conv2D", padding="VALID", dilations=(1, 2, 2, 1))],
                 {"w": np.ones((3, 3, 1, 1), np.float32)}, grid5)
    assert y.shape == (1, 1, 1, 1) and y.item() == 117


def test_nchw_data_format_graph_runs_as_declared():
    graph = TFJSGraph([placeholder([1, 1, 4, 4]), const("w"), conv("Conv2D", strides=(1, 1, 2, 2), fmt="NCHW")],
                      {"w": np.ones((3, 3, 1, 1), np.float32)}, "y")
    assert graph.layout == "NCHW"
    y = graph(torch.from_numpy(GRID_4X4[..., 0][None]))  # (1, 1, 4, 4): fed exactly as the graph declares
    np.testing.assert_array_equal(y[0, 0].numpy(), [[54, 45], [72, 54]])


def test_depthwise_channel_multiplier_order():
    # input channel 0 = 1..9 on a 3x3 grid, channel 1 = 10; kernel[:, :, c, m] = (2c + m + 1) * diag(1, 1).
    # TF output channel c*M + m: ch0,m0: x[i,j] + x[i+1,j+1] -> [[6, 8], [12, 14]]; ch0,m1: twice that;
    # ch1,m0: 3 * (10 + 10) = 60; ch1,m1: 4 * 20 = 80.
    x = np.stack([np.arange(1, 10, dtype=np.float32).reshape(3, 3), np.full((3, 3), 10, np.float32)], -1)[None]
    kernel = np.zeros((2, 2, 2, 2), np.float32)
    for c in range(2):
        for m in range(2):
            kernel[0, 0, c, m] = kernel[1, 1, c, m] = 2 * c + m + 1
    y = run_nhwc([placeholder([1, 3, 3, 2]), const("w"), conv("DepthwiseConv2dNative", padding="VALID")], {"w": kernel}, x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [12, 14]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(y[0, :, :, 2], np.full((2, 2), 60))
    np.testing.assert_array_equal(y[0, :, :, 3], np.full((2, 2), 80))


def test_nhwc_semantics_of_channel_ops_pad_mean_reshape_matmul():
    """Per-channel constants, Pad, Mean, flatten order and a fused dense layer match numpy on NHWC."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    w = {
        "scale": rng.normal(size=5).astype(np.float32),
        "shift": np.float32(0.25),
        "pads": np.array([[0, 0], [1, 0], [0, 2], [0, 0]], np.int32),
        "axes": np.array([1, 2], np.int32),
        "flat": np.array([-1, 120], np.int32),
        "k": rng.normal(size=(120, 3)).astype(np.float32),
        "b": rng.normal(size=3).astype(np.float32),
    }
    nodes = [placeholder([-1, 3, 4, 5]), *[const(k) for k in w],
             node("m", "Mul", "scale", "x"), node("s", "Sub", "m", "shift"), node("p", "Pad", "s", "pads"),
             node("mean", "Mean", "p", "axes", keep_dims={"b": False}), node("r", "Reshape", "p", "flat"),
             node("d", "_FusedMatMul", "r", "k", "b", fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}})]
    padded = np.pad(x * w["scale"] - 0.25, w["pads"])
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "p"), padded, atol=1e-6)
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "mean"), padded.mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "r"), padded.reshape(2, 120), atol=1e-6)
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "d"), np.maximum(padded.reshape(2, 120) @ w["k"] + w["b"], 0), atol=1e-5)


def test_fusion_equals_plain_execution():
    """Conv + per-channel Mul/Add/Sub (folded BatchNorm) + ReLU6 as Relu/Minimum/Maximum: 2 steps, same numbers."""
    rng = np.random.default_rng(1)
    w = {"w": rng.normal(size=(3, 3, 2, 4)), "s": rng.normal(size=4), "a": rng.normal(size=(1, 1, 1, 4)),
         "c": np.float32(0.5), "six": np.float32(6), "zero": np.float32(0)}
    w = {k: np.asarray(v, np.float32) for k, v in w.items()}
    nodes = [placeholder([1, 5, 5, 2]), *[const(k) for k in w], conv("Conv2D", strides=(1, 2, 2, 1)),
             node("m", "Mul", "y", "s"), node("ad", "AddV2", "a", "m"), node("sb", "Sub", "ad", "c"),
             node("r", "Relu", "sb"), node("mn", "Minimum", "r", "six"), node("mx", "Maximum", "zero", "mn")]
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32) * 3
    fused = TFJSGraph(nodes, w, "mx")
    assert len(fused._steps) == 2  # conv with folded affine + one clamp
    plain = run_nhwc(nodes, w, x, "mx", fuse=False)
    assert plain.max() == 6 and plain.min() == 0  # both clamp bounds matter on this input
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "mx"), plain, atol=1e-5)
    np.testing.assert_allclose(run_nhwc(nodes, w, x, "sb"), run_nhwc(nodes, w, x, "sb", fuse=False), atol=1e-5)


def test_unknown_op_is_named_and_unused_branches_are_pruned():
    nodes = [placeholder([1, 2]), node("y", "Relu", "x"), node("z", "Erf", "x")]
    with pytest.raises(UnsupportedOpError, match=r"'Erf'.*'z'"):
        TFJSGraph(nodes, {}, "z")
    graph = TFJSGraph(nodes, {}, "y")  # the Erf head is not needed, so it is never compiled
    assert "Erf" not in graph.ops_used
    assert graph(torch.tensor([[-1.0, 2.0]])).tolist() == [[0.0, 2.0]]


def test_weight_decoding_float16_uint8_int32(tmp_path):
    f16 = np.array([1.5, -2.25], np.float16)
    u8 = np.array([0, 255, 10], np.uint8)
    i32 = np.array([3, -4], np.int32)
    (tmp_path / "w.bin").write_bytes(f16.tobytes() + u8.tobytes() + i32.tobytes())
    manifest = [{"paths": ["w.bin"], "weights": [
        {"name": "a", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "b", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "c", "shape": [1, 2], "dtype": "int32"},
    ]}]
    weights = read_weights(manifest, tmp_path)
    np.testing.assert_array_equal(weights["a"], [1.5, -2.25])
    np.testing.assert_array_equal(weights["b"], [-1.0, 126.5, 4.0])
    np.testing.assert_array_equal(weights["c"], [[3, -4]])
    assert weights["a"].dtype == np.float32 and weights["c"].dtype == np.int32
    assert set(read_weights(manifest, tmp_path, wanted={"c"})) == {"c"}  # offsets still skip a and b


# ---------------------------------------------------------------------------------------------
# the real models (shared folder)


def _shared_available() -> bool:
    try:
        for card in (HSE_CARD, MOBILEFACE_CARD):
            for f in card.files:
                f.path()
        return (data_dir() / "glint-celeb24-112").is_dir()
    except BenchError:
        return False


needs_shared = pytest.mark.skipif(not _shared_available(), reason="shared models / glint-celeb24-112 not available")


@lru_cache(maxsize=None)
def recognizer(name: str) -> TFJSRecognizer:
    return create_recognizer(name)


def fixture(name: str) -> dict:
    with np.load(FIXTURES / f"tfjs_reference_{name}.npz") as data:
        return {k: data[k] for k in data.files}


def glint_faces(files) -> tuple[torch.Tensor, list[str]]:
    """Canonical faces from the shared JPEGs + sha256 of each decoded RGB image (as make_fixtures.py)."""
    root = data_dir() / "glint-celeb24-112"
    rgb = [cv2.cvtColor(cv2.imread(str(root / str(f)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in files]
    shas = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in rgb]
    return torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0, shas


@needs_shared
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "plain"])
@pytest.mark.parametrize("name", MODELS)
def test_matches_tfjs_runtime(name, fuse):
    # measured (fused / plain): hse-faceres max abs 3.1e-6 / 2.4e-7 (outputs up to 2.5);
    # mobileface 1.3e-5 / 1.3e-5 (outputs up to 18); 1 - min cosine < 1e-12 for all
    ref = fixture(name)
    faces, shas = glint_faces(ref["files"])
    assert shas == list(ref["pixel_sha256"]), "JPEG decoding differs from when the fixture was made: regenerate it"
    rec = recognizer(name)
    graph = rec.graph if fuse else TFJSGraph.from_json(rec.card.files[0].verified_path(), str(ref["output_node"]), fuse=False)
    with torch.no_grad():
        x = rec.graph_input(faces)
        out = graph(x).numpy().astype(np.float64)
    nhwc = x.permute(0, 2, 3, 1).double().numpy()
    np.testing.assert_allclose(nhwc.sum(axis=(1, 2, 3)), ref["input_sum"], rtol=1e-5,
                               err_msg="graph input changed since the fixture was made (preprocessing?): regenerate it")
    np.testing.assert_allclose(np.abs(nhwc).sum(axis=(1, 2, 3)), ref["input_abs_sum"], rtol=1e-5)
    tfjs = ref["tfjs_output"].astype(np.float64)
    assert out.shape == tfjs.shape == (len(shas), rec.embedding_dim)
    cos = (out * tfjs).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(tfjs, axis=1)
    max_abs = np.abs(out - tfjs).max()
    print(f"{name} ({'fused' if fuse else 'plain'}): torch vs TFJS {ref['tfjs_version']}: "
          f"max abs {max_abs:.2e}, 1 - min cosine {1 - cos.min():.1e}")
    assert cos.min() >= 0.9999
    assert max_abs <= 1e-4 * np.abs(tfjs).max()


@needs_shared
def test_heads_are_pruned():
    graph = recognizer("hse-faceres").graph
    assert not {"_FusedMatMul", "Sigmoid", "Softmax"} & set(graph.ops_used)  # age/gender heads dropped
    assert not [n for n in graph.node_names if n.split("/")[0] in ("feats", "age_pred", "gender_pred")]


@needs_shared
@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_canonical_pixels_and_embeddings_are_unit_norm(name):
    faces, _ = glint_faces(fixture(name)["files"][:1])  # one face: backward through 224x224 is the slow part
    faces.requires_grad_(True)
    rec = recognizer(name)
    emb = rec(faces)
    assert emb.shape == (1, rec.embedding_dim)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(1), atol=1e-5, rtol=0)
    direction = torch.randn(rec.embedding_dim, generator=torch.Generator().manual_seed(0))
    (emb[0] @ direction).backward()
    grad = faces.grad
    assert torch.isfinite(grad).all()
    assert (grad != 0).float().mean() > 0.5  # reaches most pixels, through resize and colour conversion


@needs_shared
def test_wrong_checksum_names_the_file():
    bad = dataclasses.replace(HSE_CARD.files[1], sha256="0" * 64)
    card = dataclasses.replace(HSE_CARD, files=(HSE_CARD.files[0], bad))
    with pytest.raises(WeightFileError, match="faceres.bin"):
        TFJSRecognizer(card, hse_variants()["bgr-caffe-mean"])


def test_missing_weight_file_is_named(tmp_path):
    missing = WeightFile("human-models/nothing.json", lambda: tmp_path / "nothing.json", "0" * 64, "nowhere")
    with pytest.raises(WeightFileError, match="nothing.json"):
        missing.verified_path()
