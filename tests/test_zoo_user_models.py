"""Models users bring (bench.zoo.user_models, .preprocess, .checkpoints) and the arcface_torch IResNet
port (bench.zoo.iresnet).

No pretrained weights are available offline, so every checkpoint here is generated locally from a
randomly initialised network (tests say so in their names): they check loading, safety, wiring,
preprocessing and gradients, not recognition accuracy. Faces are real ArcFace-aligned 112x112 crops
from glint-celeb24-112. Registrations go to a temporary JSON file via BENCH_USER_MODELS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.errors import BenchError, WeightFileError
from bench.paths import data_dir, repo_root
from bench.zoo import RECOGNIZERS, card_of, create_recognizer
from bench.zoo.iresnet import ARCHS, guess_arch, iresnet
from bench.zoo.preprocess import Preprocess, ToNetworkInput
from bench.zoo.user_models import (
    ENV_VAR, FORMATS, is_user_model, load_user_models, read_user_models, register_user_model, remove_user_model,
)

IDENTITIES = ("Barack_Obama", "Hugh_Laurie")


@pytest.fixture(scope="module", autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(min(old, 2))  # shared CI cores
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """4 real aligned crops (2 identities x 2) as canonical N x 3 x 112 x 112 floats in [0, 1]."""
    root = data_dir() / "glint-celeb24-112"
    images = []
    for name in IDENTITIES:
        for file in sorted((root / name).glob("*.jpg"))[:2]:
            images.append(np.asarray(Image.open(file).convert("RGB")))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


@pytest.fixture(autouse=True)
def registry_file(tmp_path, monkeypatch):
    """Every test registers into its own temporary JSON file and leaves the process registry clean."""
    file = tmp_path / "user-models.json"
    monkeypatch.setenv(ENV_VAR, str(file))
    before = set(RECOGNIZERS.names())
    yield file
    for name in set(RECOGNIZERS.names()) - before:
        RECOGNIZERS.remove(name)


def needs_onnx():
    """onnx, or skip the calling test: only the ONNX formats need onnx, onnxruntime and onnx2torch (the
    torch formats and the safety checks must run without them)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx2torch")
    return pytest.importorskip("onnx")


def check_embeddings(emb: torch.Tensor, n: int, dim: int) -> None:
    assert emb.shape == (n, dim)
    assert torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=1), torch.ones(n), atol=1e-5)


def check_gradients_reach_pixels(model, faces: torch.Tensor) -> None:
    x = faces.clone().requires_grad_(True)
    (model(x) * torch.randn(model.embedding_dim)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# locally generated checkpoints


@pytest.fixture(scope="module")
def r18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = iresnet("iresnet18")
    with torch.no_grad():  # non-trivial batchnorm statistics, so a mis-wired buffer would show
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.state_dict()


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory, r18_state):
    path = tmp_path_factory.mktemp("ckpt") / "backbone.pth"
    torch.save(r18_state, path)  # what arcface_torch saves: a plain state dict
    return path


def tiny_onnx(path, nhwc: bool = False, batch: int | str = "N", normalise_inside: bool = False, seed: int = 0):
    """A small conv net (2 strided convs, ReLU, Gemm -> 32-D) built with onnx.helper; optionally NHWC
    and/or with the (x - 127.5) / 127.5 normalisation inside the graph, as MXNet-converted models have."""
    onnx = needs_onnx()
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (8, 3, 4, 4)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (16, 8, 4, 4)).astype(np.float32)
    fc = rng.normal(0, 0.05, (32, 16 * 7 * 7)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (fc, "fc"))]
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, 32).astype(np.float32), "fc_b"))
    nodes, first = [], "input"
    if normalise_inside:
        inits += [numpy_helper.from_array(np.array(v, np.float32), n) for v, n in ((127.5, "mean"), (1 / 127.5, "inv_std"))]
        nodes += [helper.make_node("Sub", [first, "mean"], ["centred"]), helper.make_node("Mul", ["centred", "inv_std"], ["normed"])]
        first = "normed"
    if nhwc:
        nodes.append(helper.make_node("Transpose", [first], ["x"], perm=[0, 3, 1, 2]))
        first = "x"
    nodes += [
        helper.make_node("Conv", [first, "w1"], ["c1"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc", "fc_b"], ["embedding"], transB=1),
    ]
    shape = [batch, 112, 112, 3] if nhwc else [batch, 3, 112, 112]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 32])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx")


# ---------------------------------------------------------------------------------------------
# the IResNet port


def expected_arcface_torch_shapes(layers: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an arcface_torch IResNet state dict, spelled out from its naming scheme."""
    def bn(prefix: str, c: int) -> dict:
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}

    out = {"conv1.weight": (64, 3, 3, 3), **bn("bn1", 64), "prelu.weight": (64,)}
    cin = 64
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            out.update({**bn(f"{p}.bn1", cin), f"{p}.conv1.weight": (width, cin, 3, 3), **bn(f"{p}.bn2", width),
                        f"{p}.prelu.weight": (width,), f"{p}.conv2.weight": (width, width, 3, 3), **bn(f"{p}.bn3", width)})
            if b == 0:
                out.update({f"{p}.downsample.0.weight": (width, cin, 1, 1), **bn(f"{p}.downsample.1", width)})
            cin = width
    out.update({**bn("bn2", 512), "fc.weight": (512, 512 * 7 * 7), "fc.bias": (512,), **bn("features", 512)})
    return out


@pytest.mark.parametrize("arch, millions", [("iresnet50", 43.6), ("iresnet100", 65.2)])
def test_iresnet50_100_state_dict_keys_and_shapes_match_arcface_torch(arch, millions):
    with torch.device("meta"):  # shapes only: no memory, no init time
        net = iresnet(arch)
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == expected_arcface_torch_shapes(ARCHS[arch])
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 1) == millions  # insightface's model-zoo figures
    assert guess_arch(got) == arch


def test_arcface_iresnet18_with_locally_generated_fixture_checkpoint(r18_file, r18_state, faces, registry_file):
    card = register_user_model("my-r18", r18_file, "arcface-iresnet18", licence="test-only")
    assert (card.embedding_dim, card.input_size, card.differentiable, card.licence) == (512, (112, 112), True, "test-only")
    model = create_recognizer("my-r18")
    emb = model(faces)
    check_embeddings(emb, len(faces), 512)
    # the wiring is arcface_torch's: (x - 0.5) / 0.5 in RGB into the backbone, then L2 normalisation
    net = iresnet("iresnet18").eval()
    net.load_state_dict(r18_state)
    with torch.no_grad():
        assert torch.allclose(emb, F.normalize(net((faces - 0.5) / 0.5)), atol=1e-5)
    check_gradients_reach_pixels(model, faces)
    assert json.loads(registry_file.read_text())["models"]["my-r18"]["format"] == "arcface-iresnet18"


def test_safetensors_and_nested_checkpoints_with_locally_generated_fixture_weights(tmp_path, r18_state, faces):
    from safetensors.torch import save_file

    st = tmp_path / "r18.safetensors"
    # conversions often drop the batchnorm counters; they do not matter for inference
    save_file({k: v.contiguous() for k, v in r18_state.items() if not k.endswith("num_batches_tracked")}, str(st))
    nested = tmp_path / "r18-ddp.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in r18_state.items()}}, nested)
    register_user_model("r18-st", st, "arcface-iresnet18")
    register_user_model("r18-ddp", nested, "arcface-iresnet18")
    with torch.no_grad():
        a, b = create_recognizer("r18-st")(faces[:2]), create_recognizer("r18-ddp")(faces[:2])
    assert torch.allclose(a, b, atol=1e-6)


def test_wrong_keys_give_missing_and_unexpected_key_error(tmp_path, r18_state, r18_file):
    bad = dict(r18_state)
    bad["fc.weight_renamed"] = bad.pop("fc.weight")
    bad["head.extra"] = torch.zeros(3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match=r"missing keys: fc\.weight.*unexpected keys: .*fc\.weight_renamed.*head\.extra"):
        register_user_model("bad", tmp_path / "bad.pth", "arcface-iresnet18")
    with pytest.raises(BenchError, match="missing keys: layer1.2.*match arcface-iresnet18"):
        register_user_model("bad", r18_file, "arcface-iresnet34")  # the wrong depth is named
    assert "bad" not in RECOGNIZERS and not read_user_models()


def test_facenet_inception_resnet_v1_with_locally_generated_fixture_checkpoint(tmp_path, faces):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(1)
    state = InceptionResnetV1().state_dict()
    # like facenet-pytorch's released files: a classifier head, here also DataParallel-wrapped under "model"
    state.update({"logits.weight": torch.randn(10, 512), "logits.bias": torch.zeros(10)})
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "facenet.pt")
    card = register_user_model("my-facenet", tmp_path / "facenet.pt", "facenet-inception-resnet-v1")
    assert (card.embedding_dim, card.input_size) == (512, (160, 160))
    model = create_recognizer("my-facenet")
    check_embeddings(model(faces), len(faces), 512)
    check_gradients_reach_pixels(model, faces)


# ---------------------------------------------------------------------------------------------
# ONNX


def test_onnxruntime_and_onnx2torch_agree_on_locally_generated_fixture_onnx(onnx_file, faces):
    black = register_user_model("tiny-ort", onnx_file, "onnx")
    white = register_user_model("tiny-torch", onnx_file, "onnx-torch")
    assert (black.differentiable, white.differentiable) == (False, True)
    assert black.extra["network"] == white.extra["network"]  # one file: the runner sees one network
    assert black.extra["preprocess"] == white.extra["preprocess"] == FORMATS["onnx"].default.to_dict()
    ort_model, torch_model = create_recognizer("tiny-ort"), create_recognizer("tiny-torch")
    a, b = ort_model(faces), torch_model(faces)
    check_embeddings(a, len(faces), 32)
    check_embeddings(b, len(faces), 32)
    assert F.cosine_similarity(a.double(), b.double()).min() > 0.9999
    check_gradients_reach_pixels(torch_model, faces)


def test_onnx_nhwc_fixed_batch_input_is_read_off_the_locally_generated_fixture(tmp_path, onnx_file, faces):
    path = tiny_onnx(tmp_path / "nhwc.onnx", nhwc=True, batch=1)  # same weights, NHWC, batch fixed at 1
    card = register_user_model("tiny-nhwc", path, "onnx")
    assert card.extra["preprocess"]["layout"] == "nhwc"
    register_user_model("tiny-nchw", onnx_file, "onnx")
    a, b = create_recognizer("tiny-nhwc")(faces), create_recognizer("tiny-nchw")(faces)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(BenchError, match="takes input"):
        register_user_model("tiny-bad", path, "onnx", preprocess={"input_size": (160, 160)})


def test_onnx_graph_that_normalises_itself_gets_mean_0_std_1_with_locally_generated_fixture(tmp_path, onnx_file, faces):
    path = tiny_onnx(tmp_path / "inside.onnx", normalise_inside=True)  # same weights, normalisation in the graph
    card = register_user_model("tiny-inside", path, "onnx-torch")
    assert card.extra["preprocess"]["mean"] == [0.0] * 3 and card.extra["preprocess"]["std"] == [1.0] * 3
    register_user_model("tiny-outside", onnx_file, "onnx-torch")
    with torch.no_grad():
        a, b = create_recognizer("tiny-inside")(faces), create_recognizer("tiny-outside")(faces)
    assert torch.allclose(a, b, atol=1e-5)


def test_onnx_torch_conversion_failure_suggests_onnx(tmp_path):
    onnx = needs_onnx()
    from onnx import TensorProto, helper

    node = helper.make_node("Mystery", ["input"], ["embedding"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 112, 112])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(tmp_path / "custom.onnx"))
    with pytest.raises(BenchError, match="onnx2torch cannot convert.*format 'onnx'"):
        register_user_model("custom", tmp_path / "custom.onnx", "onnx-torch")


# ---------------------------------------------------------------------------------------------
# safety and integrity


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Exploit(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(BenchError, match="refusing to load .*never unpickled"):
        register_user_model("evil", tmp_path / "evil.pth", "arcface-iresnet18")
    assert not marker.exists()
    assert "evil" not in RECOGNIZERS and not read_user_models()


def test_importing_methods_does_not_read_the_user_model_registry(registry_file):
    """The registry is read at the first lookup of a recognizer, not as a side effect of an import: a
    fresh process records every open() of the file (Python's audit hook) across the two moments."""
    registry_file.write_text(json.dumps({"version": 1, "models": {}}))
    code = (
        "import os, sys\n"
        "target = os.environ['BENCH_USER_MODELS']\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(event) if event == 'open' "
        "and isinstance(args[0], (str, os.PathLike)) and os.fspath(args[0]) == target else None)\n"
        "import methods, bench.zoo\n"
        "print(len(opened))\n"
        "bench.zoo.recognizer_names()\n"
        "print(len(opened))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root(),
                         env={**os.environ, ENV_VAR: str(registry_file)}, timeout=300)
    assert out.returncode == 0, out.stderr
    on_import, on_first_use = map(int, out.stdout.split())
    assert on_import == 0, "importing methods read the user-model registry"
    assert on_first_use >= 1, "the first lookup did not read the registry (nothing would be registered)"


def test_modified_file_after_registration_raises_weight_file_error(tmp_path, r18_file):
    # a torch-format checkpoint: the safety checks must run where the ONNX packages are not installed
    path = shutil.copy(r18_file, tmp_path / "backbone.pth")
    register_user_model("changing", path, "arcface-iresnet18")
    create_recognizer("changing")
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightFileError, match="sha256.*--replace"):
        create_recognizer("changing")


def test_unknown_format_and_name_clashes_are_errors(r18_file):
    with pytest.raises(BenchError, match="valid formats: arcface-iresnet18, .*onnx-torch"):
        register_user_model("x", r18_file, "tflite")
    with pytest.raises(BenchError, match="built-in"):
        register_user_model("dlib-resnet", r18_file, "arcface-iresnet18")
    register_user_model("twice", r18_file, "arcface-iresnet18")
    with pytest.raises(BenchError, match="already registered"):
        register_user_model("twice", r18_file, "arcface-iresnet18")
    card = register_user_model("twice", r18_file, "arcface-iresnet18", preprocess={"colour": "bgr"}, replace=True)
    assert card_of("twice").extra["preprocess"]["colour"] == "bgr" == card.extra["preprocess"]["colour"]
    with pytest.raises(BenchError, match="gives 512-D"):
        register_user_model("dims", r18_file, "arcface-iresnet18", embedding_dim=128)


def test_registry_loading_skips_bad_entries_with_a_warning(tmp_path, r18_file, registry_file):
    register_user_model("good", r18_file, "arcface-iresnet18")
    models = read_user_models()
    models["dlib-resnet"] = dict(models["good"])  # clashes with a built-in
    models["broken"] = {"path": "x.onnx", "format": "nope"}
    registry_file.write_text(json.dumps({"version": 1, "models": models}))
    RECOGNIZERS.remove("good")
    with pytest.warns(UserWarning) as caught:
        assert load_user_models() == ["good"]
    messages = " | ".join(str(c.message) for c in caught)
    assert "user model 'dlib-resnet'" in messages and "user model 'broken'" in messages
    assert is_user_model("good") and not is_user_model("dlib-resnet")


# ---------------------------------------------------------------------------------------------
# preprocessing and the command line


def test_preprocess_spec_is_differentiable_and_ordered():
    spec = Preprocess(input_size="64x48", colour="BGR", scale=255, mean=(10, 20, 30), std=2, layout="nhwc", resize="area")
    assert spec.std == (2.0, 2.0, 2.0) and spec.colour == "bgr" and Preprocess.from_dict(spec.to_dict()) == spec
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    y = ToNetworkInput(spec)(x)
    assert y.shape == (2, 64, 48, 3)
    ref = (F.interpolate(x, size=(64, 48), mode="area").flip(1) * 255 - torch.tensor([10.0, 20, 30]).view(1, 3, 1, 1)) / 2
    assert torch.allclose(y, ref.permute(0, 2, 3, 1), atol=1e-4)
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    for bad in ({"scale": 10}, {"colour": "yuv"}, {"mean": (1, 2)}, {"std": 0}, {"gamma": 1}):
        with pytest.raises(BenchError):
            Preprocess().merged(bad)


def test_cli_add_and_remove_round_trip_through_the_json_file(r18_file, registry_file):
    runner = CliRunner()
    res = runner.invoke(main, ["zoo", "add", "cli-tiny", "--path", str(r18_file), "--format", "arcface-iresnet18",
                               "--colour", "bgr", "--mean", "127.5", "--std", "128,128,128", "--licence", "CC0"])
    assert res.exit_code == 0, res.output
    entry = json.loads(registry_file.read_text())["models"]["cli-tiny"]
    assert entry["preprocess"]["colour"] == "bgr" and entry["preprocess"]["std"] == [128.0] * 3
    assert entry["licence"] == "CC0" and entry["embedding_dim"] == 512 and entry["path"] == str(r18_file.resolve())
    assert card_of("cli-tiny").differentiable

    # a fresh process picks the registration up from the file named by the environment variable
    code = "from bench.zoo import card_of; c = card_of('cli-tiny'); print(c.embedding_dim, c.licence)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root(),
                         env={**os.environ, ENV_VAR: str(registry_file)}, timeout=120)
    assert out.stdout.split() == ["512", "CC0"], out.stderr

    res = runner.invoke(main, ["zoo", "add", "cli-bad", "--path", str(r18_file), "--format", "caffe"])
    assert res.exit_code != 0 and "valid formats: arcface-iresnet18" in res.output
    res = runner.invoke(main, ["zoo", "remove", "cli-tiny"])
    assert res.exit_code == 0, res.output
    assert read_user_models() == {} and "cli-tiny" not in RECOGNIZERS
    res = runner.invoke(main, ["zoo", "remove", "dlib-resnet"])
    assert res.exit_code != 0 and "built-in" in res.output
    with pytest.raises(BenchError, match="no user model named"):
        remove_user_model("cli-tiny")
