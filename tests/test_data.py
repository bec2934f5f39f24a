"""The face-data pipeline on real photos: alignment quality, the cache, and every kind of bad input."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from bench.data import FolderPerIdentity, open_dataset, prepare
from bench.data.align import ARCFACE_TEMPLATE, Aligner, DlibDetector, MtcnnDetector, similarity_transform
from bench.data.images import BadImage, decode_rgb
from bench.errors import UnknownNameError

LFW_SAMPLE = ["Tom_Hanks/Tom_Hanks_0001.jpg", "Serena_Williams/Serena_Williams_0002.jpg", "Colin_Powell/Colin_Powell_0003.jpg"]


def test_similarity_transform_recovers_a_known_warp():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = ARCFACE_TEMPLATE @ (scale * rot).T + shift
    m = similarity_transform(ARCFACE_TEMPLATE, dst)
    assert np.allclose(m[:, :2], scale * rot) and np.allclose(m[:, 2], shift)


def test_aligned_lfw_faces_sit_on_the_arcface_template(lfw):
    """Landmarks re-detected on our own crops are where the warp put them, near the template."""
    det, aligner = MtcnnDetector(), Aligner()
    for rel in LFW_SAMPLE:
        rgb, _ = decode_rgb((lfw.images_root / rel).read_bytes())
        out = aligner.align(rgb)
        m = similarity_transform(out.landmarks, ARCFACE_TEMPLATE)
        warped = out.landmarks @ m[:, :2].T + m[:, 2]
        faces = det.detect(out.crop)
        assert faces, "the aligned crop must still contain a detectable face"
        assert np.linalg.norm(faces[0].landmarks - warped, axis=1).mean() < 2.5
        # a similarity cannot match every face shape exactly; a few pixels is normal (smiles, pose)
        assert np.linalg.norm(warped - ARCFACE_TEMPLATE, axis=1).mean() < 6.0


def test_dlib_fallback_aligns_like_mtcnn(lfw):
    """The fallback detector's 68-point landmarks map onto the same template (within a few pixels)."""
    path = lfw.images_root / LFW_SAMPLE[0]
    rgb, _ = decode_rgb(path.read_bytes())
    a = Aligner([MtcnnDetector()]).align(rgb)
    b = Aligner([DlibDetector()]).align(rgb)
    assert b.detector == "dlib"
    assert np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() < 4.0
    assert np.abs(a.crop.astype(float) - b.crop.astype(float)).mean() < 25


def _bad_input_dataset(root, lfw):
    """A folder-per-identity dataset made in the test from real LFW photos, with one of each defect."""
    src = lfw.images_root / LFW_SAMPLE[0]
    good = root / "good_person"
    good.mkdir(parents=True)
    shutil.copy(src, good / "a.jpg")
    shutil.copy(lfw.images_root / LFW_SAMPLE[1], good / "b.jpg")
    bad = root / "bad_person"
    bad.mkdir()
    data = src.read_bytes()
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (bad / "not_an_image.jpg").write_bytes(b"this is a text file, not a JPEG")
    (bad / "empty.jpg").write_bytes(b"")
    Image.open(src).convert("L").save(bad / "grayscale.jpg")
    Image.open(src).resize((24, 24)).save(bad / "tiny.jpg")
    # a real photo region with no face in it: the top-left background of an LFW photo, upscaled
    Image.open(src).crop((0, 0, 50, 50)).resize((200, 200)).save(bad / "no_face.jpg")
    (root / "empty_person").mkdir()


def test_bad_inputs_are_excluded_and_reported(tmp_path, lfw):
    _bad_input_dataset(tmp_path / "photos", lfw)
    ds = FolderPerIdentity("badset", tmp_path / "photos")
    prepared = prepare(ds, progress=False)
    reasons = {f.path: f.reason for f in prepared.failures()}
    assert reasons == {
        "empty_person/": "empty identity folder",
        "bad_person/truncated.jpg": "unreadable",
        "bad_person/not_an_image.jpg": "unreadable",
        "bad_person/empty.jpg": "unreadable",
        "bad_person/grayscale.jpg": "grayscale",
        "bad_person/tiny.jpg": "too small",
        "bad_person/no_face.jpg": "no face",
    }
    s = prepared.summary()
    assert s["images"] == 8 and s["aligned"] == 3 and s["failed"] == 5 and s["grayscale"] == 1
    assert [r.relpath for r in prepared.usable(include_grayscale=False)] == ["good_person/a.jpg", "good_person/b.jpg"]
    report = prepared.write_report(tmp_path / "report.csv").read_text().splitlines()
    assert report[0] == "path,reason,detail" and len(report) == 1 + len(reasons)
    with pytest.raises(KeyError, match="no aligned face"):
        prepared.faces(["bad_person/no_face.jpg"])


def test_decode_rejects_truncated_and_flags_grayscale(lfw):
    data = (lfw.images_root / LFW_SAMPLE[0]).read_bytes()
    with pytest.raises(BadImage, match="unreadable"):
        decode_rgb(data[:1000])
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(buf, "PNG")
    rgb, gray = decode_rgb(buf.getvalue())
    assert rgb.shape == (250, 250, 3) and gray


class CountingAligner(Aligner):
    """The real aligner, counting calls (a spy, not a stand-in): proves what the cache saves."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.calls, self.fail_after = 0, fail_after

    def align(self, image):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        self.calls += 1
        return super().align(image)


def test_cache_reuses_crops_and_an_interrupted_prepare_resumes(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    files = sorted(r.relpath for r in lfw.scan().records if r.identity.startswith("Ab"))[:7]
    first = CountingAligner(fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        prepare(lfw, aligner=first, only=files, progress=False, write_every=2)
    resumed = CountingAligner()
    done = prepare(lfw, aligner=resumed, only=files, progress=False)
    # the 5 crops made before the interrupt are not redone: the unfinished batch is written on the way out
    assert resumed.calls == 2
    assert done.summary()["aligned"] + done.summary()["failed"] == 7
    again = CountingAligner()
    prepare(lfw, aligner=again, only=files, progress=False)
    assert again.calls == 0


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="known datasets: glint-celeb24, lfw, vggface2-test, vggface2-train"):
        open_dataset("casia")


def test_lfw_protocol_files_parse(lfw):
    folds = lfw.pairs()
    assert len(folds) == 10 and all(len(f) == 600 for f in folds)
    assert sum(same for fold in folds for _, _, same in fold) == 3000
    assert folds[0][0] == ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True)
    names = {r.identity for r in lfw.scan().records}
    assert len(names) == 5749
    assert all(a.split("/")[0] in names and b.split("/")[0] in names for fold in folds for a, b, _ in fold)


def test_pre_aligned_dataset_needs_no_detection():
    ds = open_dataset("glint-celeb24")
    files = [r.relpath for r in ds.scan().records[:5]]
    prepared = prepare(ds, only=files, progress=False)
    assert prepared.faces(files).shape == (5, 112, 112, 3)


def test_mtcnn_landmarks_do_not_depend_on_the_thread_count(lfw):
    """Two threads sum the convolutions in another order: landmarks moved by ~1e-5 px and some crops by a
    grey level between runs with different OMP_NUM_THREADS (found comparing two fresh runs). Detection runs
    on one thread, so they are bit-identical."""
    import torch
    from PIL import Image

    from bench.data.align import MtcnnDetector

    images = [np.asarray(Image.open(lfw.images_root / r.relpath).convert("RGB")) for r in lfw.scan().records[:5]]
    detector, before = MtcnnDetector(), torch.get_num_threads()
    try:
        found = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            found[threads] = [detector.detect(im)[0].landmarks for im in images]
            assert torch.get_num_threads() == threads, "detection restores the caller's thread count"
    finally:
        torch.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(found[1], found[2]))
