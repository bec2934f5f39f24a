"""dlib's face recognizer in the zoo: the .dat parser, the chip warp, the torch port (``dlib-resnet``)
and the dlib-bin black box (``dlib-native``), checked against each other on real aligned faces.

Faces: 200 real LFW photos (from the official pairs, see conftest.lfw_slice) aligned by our own
pipeline into the canonical 112x112 ArcFace crop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.errors import BenchError, WeightFileError
from bench.features import model_fingerprint
from bench.paths import models_dir
from bench.zoo import card_of, create_recognizer
from bench.zoo import dlib_resnet
from bench.zoo.dlib_chip import CHIP_SIZE, canonical_to_chip, canonical_to_chip_uint8
from bench.zoo.dlib_dat import DlibDatError, conv_names, load_dlib_dat, parse_dlib_dat
from bench.zoo.dlib_resnet import DEFAULT_MEAN, DLIB_DAT, FACE_API_BIN, FACE_API_MANIFEST, build_network
from bench.zoo.weights import WeightFile

N_FACES = 200


def as_canonical(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.double(), b.double(), dim=1)


@pytest.fixture(scope="module")
def faces(lfw_slice_faces) -> tuple[np.ndarray, np.ndarray]:
    crops, names = lfw_slice_faces
    labels = np.unique(names[:N_FACES], return_inverse=True)[1]
    return crops[:N_FACES], labels


@pytest.fixture(scope="module")
def torch_model():
    return create_recognizer("dlib-resnet")


@pytest.fixture(scope="module")
def native_model():
    return create_recognizer("dlib-native")


@pytest.fixture(scope="module")
def native_emb(faces, native_model) -> torch.Tensor:
    return native_model(as_canonical(faces[0]))


@pytest.fixture(scope="module")
def torch_emb(faces, torch_model) -> torch.Tensor:
    return torch_model.embed_all(faces[0], batch_size=50)


# ---------------------------------------------------------------------------------------------
# the .dat parser


def test_parser_reads_the_whole_network_in_order():
    net = load_dlib_dat(DLIB_DAT.verified_path())
    names = list(net.params)
    assert names[:4] == ["conv1.weight", "conv1.bias", "bn1.gamma", "bn1.beta"] and names[-1] == "fc.weight"
    assert [n[: -len(".weight")] for n in names if n.endswith(".weight") and "conv" in n] == conv_names()
    assert len(conv_names()) == 28 + 1  # ResNet-29: stem + 14 blocks x 2
    assert net.params["conv1.weight"].shape == (32, 3, 7, 7)  # OIHW
    assert net.params["blocks.13.conv2.weight"].shape == (256, 256, 3, 3)
    assert net.params["fc.weight"].shape == (128, 256)
    assert all(a.dtype == np.float32 for a in net.params.values())
    assert np.allclose(net.input_mean, DEFAULT_MEAN, atol=1e-4)
    assert net.loss["distance_threshold"] == pytest.approx(0.6)


@pytest.mark.parametrize("which", ["face-api bin", "5-point shape predictor", "random bytes", "truncated"])
def test_parser_rejects_files_that_are_not_the_network(which, tmp_path):
    import face_recognition_models as frm

    if which == "face-api bin":
        path = models_dir() / "face-api" / "face_recognition_model.bin"
    elif which == "5-point shape predictor":  # a real dlib file, but not this network
        path = frm.pose_predictor_five_point_model_location()
    else:
        path = tmp_path / "bad.dat"
        good = DLIB_DAT.verified_path().read_bytes()
        path.write_bytes(np.random.default_rng(0).bytes(4096) if which == "random bytes" else good[: len(good) // 2])
    with pytest.raises(DlibDatError, match="not dlib's face recognition ResNet") as err:
        load_dlib_dat(path)
    assert isinstance(err.value, BenchError) and str(path) in str(err.value)


def test_parser_rejects_trailing_garbage():
    data = DLIB_DAT.verified_path().read_bytes()
    with pytest.raises(DlibDatError, match="trailing"):
        parse_dlib_dat(data + b"\x00", "padded.dat")


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_corrupt_weight_file_names_the_file_and_its_source(damage, tmp_path):
    data = bytearray(DLIB_DAT.verified_path().read_bytes())
    if damage == "truncated":
        data = data[:-1000]
    else:
        data[len(data) // 2] ^= 0x01
    copy = tmp_path / DLIB_DAT.name
    copy.write_bytes(bytes(data))
    bad = WeightFile(DLIB_DAT.name, lambda: copy, DLIB_DAT.sha256, DLIB_DAT.source)
    with pytest.raises(WeightFileError) as err:
        build_network("dlib", dat_file=bad)
    assert str(copy) in str(err.value) and DLIB_DAT.source in str(err.value)


# ---------------------------------------------------------------------------------------------
# registry, cards, fallback


def test_cards():
    for name, differentiable in (("dlib-resnet", True), ("dlib-native", False)):
        card = card_of(name)
        assert card.differentiable is differentiable
        assert card.input_size == (CHIP_SIZE, CHIP_SIZE) and card.embedding_dim == 128
        assert card.files == (DLIB_DAT,) and "public domain" in card.licence.lower()
    # one network: a mask crafted on the torch port is white-box against dlib-bin
    assert card_of("dlib-native").extra["network"] == card_of("dlib-resnet").extra["network"]


def test_missing_package_falls_back_to_face_api_with_a_warning(monkeypatch):
    def not_installed():
        raise ModuleNotFoundError("No module named 'face_recognition_models'")

    exact = model_fingerprint(card_of("dlib-resnet"))
    face_api = create_recognizer("dlib-resnet", weights="face-api")
    assert face_api.card.files == (FACE_API_BIN, FACE_API_MANIFEST)
    monkeypatch.setattr(dlib_resnet, "DLIB_DAT", WeightFile(DLIB_DAT.name, not_installed, DLIB_DAT.sha256, DLIB_DAT.source))
    with pytest.warns(UserWarning, match="face-api"):
        model = create_recognizer("dlib-resnet")
    assert model.weights == "face-api"
    # cached features, masks and generator cards must name the weights loaded, not the missing .dat
    assert model.card.files == (FACE_API_BIN, FACE_API_MANIFEST)
    assert model_fingerprint(model.card) == model_fingerprint(face_api.card) != exact
    assert model_fingerprint(card_of("dlib-resnet")) == model_fingerprint(model.card)  # the registry's card too
    with pytest.raises(BenchError, match="weights"):
        create_recognizer("dlib-resnet", weights="caffe")


# ---------------------------------------------------------------------------------------------
# the chip warp


def test_torch_chip_warp_matches_the_uint8_cv2_warp(faces):
    images = faces[0][:50]
    mine = canonical_to_chip(as_canonical(images)) * 255
    ref = torch.from_numpy(canonical_to_chip_uint8(images)).permute(0, 3, 1, 2).float()
    diff = (mine - ref).abs()
    print(f"\nchip warp torch vs cv2: mean |diff| {diff.mean():.3f}, max {diff.max():.3f} grey levels")
    assert mine.shape == (50, 3, CHIP_SIZE, CHIP_SIZE)
    assert diff.mean() < 0.35 and diff.max() <= 1.0  # uint8 rounding (0.5) plus cv2's 1/32-pixel weights


# ---------------------------------------------------------------------------------------------
# the models on real faces


def test_torch_port_matches_dlib_native(torch_emb, native_emb):
    cos = cosines(torch_emb, native_emb)
    print(f"\ndlib-resnet (exact .dat) vs dlib-native on {N_FACES} faces: mean cos {cos.mean():.6f}, min {cos.min():.6f}")
    assert cos.mean() >= 0.999 and cos.min() >= 0.999


def test_dlib_resnet_identifies_every_face_as_dlib_native_does(faces, torch_emb, native_emb):
    """Why `make run` leaves dlib-native out of its default targets (it stays one flag away, TARGETS=all):
    at ~95 ms a face it was most of the default run's time, and the torch port identifies as it does.
    On the slice (200 faces, each searched among the other 199), every Top-1 decision (is the nearest
    face the same person?) is the same under both, and where the nearest face itself differs it is a
    near-tie (measured: 1 face of 200, its two candidates 1.1e-4 apart under dlib-resnet, 7.8e-5 under
    dlib-native); a real disagreement between the two would fail here."""
    labels = torch.from_numpy(faces[1])

    def similarities(emb: torch.Tensor) -> torch.Tensor:
        sims = emb.double() @ emb.double().T
        return sims.fill_diagonal_(-float("inf"))

    st, sn = similarities(torch_emb), similarities(native_emb)
    a, b = st.argmax(1), sn.argmax(1)
    assert torch.equal(labels[a] == labels, labels[b] == labels)  # the same hits and misses
    moved = (a != b).nonzero().ravel()
    assert len(moved) <= 2  # of 200
    for i in moved.tolist():
        assert abs(st[i, a[i]] - st[i, b[i]]) < 1e-3 and abs(sn[i, a[i]] - sn[i, b[i]]) < 1e-3


def test_face_api_weights_match_dlib_native(faces, native_emb):
    model = create_recognizer("dlib-resnet", weights="face-api")
    assert model.weights == "face-api"
    cos = cosines(model.embed_all(faces[0], batch_size=50), native_emb)
    print(f"\ndlib-resnet (face-api uint8) vs dlib-native on {N_FACES} faces: mean cos {cos.mean():.6f}, min {cos.min():.6f}")
    assert cos.mean() >= 0.999 and cos.min() >= 0.998


def test_same_chips_give_the_same_descriptor(faces, torch_model, native_model):
    """On identical uint8 chips the port reproduces dlib's raw (unnormalised) descriptor."""
    chips = canonical_to_chip_uint8(faces[0][:8])
    ref = native_model.embed_chips(chips)
    with torch.no_grad():
        mine = torch_model.net(torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255)
    assert torch.allclose(mine, ref, atol=1e-5)


def test_embeddings_are_unit_norm(torch_emb, native_emb):
    for emb in (torch_emb, native_emb):
        assert emb.shape == (N_FACES, 128)
        assert torch.allclose(emb.norm(dim=1), torch.ones(N_FACES), atol=1e-5)


def test_gradients_reach_the_input_pixels(faces, torch_model):
    x = as_canonical(faces[0][:2]).requires_grad_(True)
    emb = torch_model(x)
    (emb[0] @ emb[1]).backward()  # a verification score, as an attack would use
    grad = x.grad
    assert torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=(1, 2, 3)) > 0).all()
    # the chip covers most of the crop (its left/right edges fall outside the chip)
    assert (grad.abs().sum(dim=1) > 0).float().mean() > 0.5
    assert all(not p.requires_grad for p in torch_model.parameters())


def test_same_identity_scores_above_different_identity(faces, torch_emb):
    labels = torch.from_numpy(faces[1])
    sim = torch_emb @ torch_emb.T
    same = labels[:, None] == labels[None]
    off_diag = ~torch.eye(N_FACES, dtype=torch.bool)
    same_mean, diff_mean = sim[same & off_diag].mean(), sim[~same].mean()
    nearest = sim.masked_fill(~off_diag, -2).argmax(dim=1)
    has_mate = (same & off_diag).any(dim=1)  # rank-1 is only defined for people photographed twice
    rank1 = (labels[nearest] == labels)[has_mate].float().mean()
    print(f"\nLFW: same-identity cos {same_mean:.3f}, different-identity {diff_mean:.3f}, rank-1 {rank1:.3f}")
    assert same_mean - diff_mean > 0.05 and rank1 > 0.95
