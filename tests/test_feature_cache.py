"""Cached clean features (bench.features.clean_features) carry a checksum checked on every read: a
replaced or damaged file is recomputed, a file from before checksums is checked and signed, and a
cache that cannot be written is an error naming the file. Real LFW faces through real MobileFace."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bench import features
from bench.errors import BenchError
from bench.features import FaceSource, clean_features, feature_cache_path
from bench.zoo import create_recognizer

FILES = ["Tom_Hanks/Tom_Hanks_0001.jpg", "Serena_Williams/Serena_Williams_0002.jpg", "Colin_Powell/Colin_Powell_0003.jpg"]


@pytest.fixture()
def mobileface_lfw(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    model = create_recognizer("mobileface")
    source = FaceSource("lfw", FILES, progress=False)
    return model, source, feature_cache_path(model, "lfw", FILES)


def sha1_of(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_replaced_or_damaged_feature_file_is_recomputed(mobileface_lfw):
    model, source, path = mobileface_lfw
    feats = clean_features(model, source, FILES, progress=False)
    sidecar = path.with_name(path.name + ".sha1")
    assert sidecar.read_text() == f"{sha1_of(path)}  {path.name}\n"  # sha1sum's format

    np.save(path, np.zeros_like(feats))  # a well-formed file of the right shape: only the checksum tells
    with pytest.warns(UserWarning, match="do not match the checksum .* recomputing"):
        again = clean_features(model, source, FILES, progress=False)
    np.testing.assert_allclose(again, feats, rtol=0, atol=1e-6)
    assert sidecar.read_text().split()[0] == sha1_of(path)

    path.write_bytes(path.read_bytes()[:-64])  # truncated on disk
    with pytest.warns(UserWarning, match="recomputing"):
        np.testing.assert_allclose(clean_features(model, source, FILES, progress=False), feats, rtol=0, atol=1e-6)


def test_feature_file_from_before_checksums_is_checked_then_signed(mobileface_lfw, monkeypatch):
    model, source, path = mobileface_lfw
    feats = clean_features(model, source, FILES, progress=False)
    sidecar = path.with_name(path.name + ".sha1")
    sidecar.unlink()

    def no_recompute(*args, **kwargs):
        raise AssertionError("an intact file was recomputed")

    with monkeypatch.context() as m:
        m.setattr(features, "embed_uint8", no_recompute)
        np.testing.assert_array_equal(clean_features(model, source, FILES, progress=False), feats)
    assert sidecar.read_text().split()[0] == sha1_of(path)

    sidecar.unlink()
    np.save(path, np.zeros((2, 7), np.float32))  # wrong shape: not adopted
    with pytest.warns(UserWarning, match=r"float32 \(2, 7\), expected finite float32 \(3, 256\)"):
        clean_features(model, source, FILES, progress=False)


def test_feature_cache_blocked_by_a_file_is_an_error_naming_it_with_fault_injection(mobileface_lfw):
    model, source, path = mobileface_lfw
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    path.parent.write_text("a file where the model's feature folder should be")
    with pytest.raises(BenchError, match="cannot write the feature cache") as err:
        clean_features(model, source, FILES, progress=False)
    assert str(path) in str(err.value) and "BENCH_CACHE" in str(err.value)


def test_large_feature_file_is_memory_mapped_after_its_checksum(mobileface_lfw, monkeypatch):
    """Above MMAP_BYTES a cached file is mapped read-only, not loaded; the checksum still guards it."""
    model, source, path = mobileface_lfw
    feats = clean_features(model, source, FILES, progress=False)
    monkeypatch.setattr(features, "MMAP_BYTES", 0)  # these three rows stand in for a large gallery's file
    mapped = clean_features(model, source, FILES, progress=False)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, feats)

    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(0.5).tobytes()  # one value changed in place: same shape, only the checksum tells
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="do not match the checksum .* recomputing"):
        again = clean_features(model, source, FILES, progress=False)
    np.testing.assert_allclose(again, feats, rtol=0, atol=1e-6)
