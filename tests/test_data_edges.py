"""The face-data pipeline at its edges: decompression bombs, file names Linux allows but no report can
hold, a photo that breaks the aligner mid-batch, a damaged crop cache, crops damaged on disk.

Datasets are made in tmp_path from real LFW photos; what is not a real photo (a PNG header declaring
a huge image, a cache file overwritten with garbage, a zeroed crop) says so in the test's name.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import struct
import zlib

import numpy as np
import pytest

from bench.data import FolderPerIdentity, prepare
from bench.data.align import ALIGNER_VERSION, Aligner
from bench.data.images import MAX_PIXELS, BadImage, decode_rgb
from bench.errors import BenchError

GOOD = ["Tom_Hanks/Tom_Hanks_0001.jpg", "Serena_Williams/Serena_Williams_0002.jpg", "Colin_Powell/Colin_Powell_0003.jpg"]


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width x height`` RGB, with a token IDAT: what a
    decompression bomb looks like to a reader before it inflates (a real one is ~1 MB of zeros)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [30_000, 10_000, 8_000])  # PIL's error (> 179 MP), PIL's warning (> 89 MP), ours only
def test_handmade_decompression_bomb_headers_are_refused_before_decoding(side):
    assert side * side > MAX_PIXELS
    with pytest.raises(BadImage, match="decompression bomb") as err:
        decode_rgb(png_header(side, side), "bomb.png")
    assert err.value.reason == "too large" and "downscale" in err.value.detail


def _copy(lfw, rel: str, dest) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copy(lfw.images_root / rel, dest)


def test_bombs_and_unusable_names_are_skipped_and_reported_with_handmade_bomb(tmp_path, lfw, monkeypatch):
    """Names are written as bytes, as any Linux program may: Latin-1 'é' (not UTF-8) in a file and in a
    folder name, and a newline in a name. Each is listed, escaped, in the failure CSV; the rest aligns."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    _copy(lfw, GOOD[0], root / "good_person" / "a.jpg")
    _copy(lfw, GOOD[1], root / "good_person" / "b.jpg")
    (root / "bad_person").mkdir()
    (root / "bad_person" / "bomb.png").write_bytes(png_header(30_000, 30_000))
    raw = os.fsencode(root)
    _copy(lfw, GOOD[2], raw + b"/bad_person/caf\xe9.jpg")
    _copy(lfw, GOOD[2], raw + b"/bad_person/two\nlines.jpg")
    _copy(lfw, GOOD[2], raw + b"/Jos\xe9_Person/x.jpg")

    prepared = prepare(FolderPerIdentity("oddset", root), progress=False, write_every=2)
    expected = {
        "bad_person/bomb.png": "too large",
        "bad_person/caf\\xe9.jpg": "bad file name",
        "bad_person/two\\nlines.jpg": "bad file name",
        "Jos\\xe9_Person/x.jpg": "bad file name",
    }
    assert {f.path: f.reason for f in prepared.failures()} == expected
    s = prepared.summary()
    assert (s["images"], s["aligned"], s["failed"]) == (6, 2, 4)
    assert s["failure_reasons"] == {"bad file name": 3, "too large": 1}
    assert prepared.faces(["good_person/a.jpg", "good_person/b.jpg"]).shape == (2, 112, 112, 3)

    with open(prepared.write_report(tmp_path / "report.csv"), newline="", encoding="utf-8") as f:  # strict UTF-8
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert {p: r["reason"] for p, r in rows.items()} == expected
    assert "file name not valid UTF-8" in rows["bad_person/caf\\xe9.jpg"]["detail"]
    assert "control character U+000A" in rows["bad_person/two\\nlines.jpg"]["detail"]
    assert "identity folder name not valid UTF-8" in rows["Jos\\xe9_Person/x.jpg"]["detail"]
    assert "rename it" in rows["bad_person/caf\\xe9.jpg"]["detail"]


class FaultInjectingAligner(Aligner):
    """The real aligner, raising an unexpected error on its ``fail_on``-th photo (an injected fault)."""

    def __init__(self, fail_on: int | None = None):
        super().__init__()
        self.calls, self.fail_on = 0, fail_on

    def align(self, image):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("injected fault")
        return super().align(image)


def test_injected_aligner_fault_names_the_photo_and_keeps_the_open_batch(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    files = [r.relpath for r in lfw.scan().records if r.identity.startswith("Ab")][:5]  # in the order aligned
    with pytest.raises(BenchError) as err:
        prepare(lfw, aligner=FaultInjectingAligner(fail_on=4), only=files, progress=False, write_every=10)
    assert files[3] in str(err.value) and "RuntimeError: injected fault" in str(err.value)
    assert "the 3 photos processed before it are cached" in str(err.value) and "Move that file out" in str(err.value)
    resumed = FaultInjectingAligner()
    prepare(lfw, aligner=resumed, only=files, progress=False)
    assert resumed.calls == 2, "the 3 photos of the unfinished batch were written before the error"


def _cache_file(tmp_path):
    return tmp_path / "cache" / "aligned" / f"{ALIGNER_VERSION}.sqlite"


def test_garbage_cache_file_is_an_error_naming_the_file_to_delete(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    path = _cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(BenchError, match="damaged or not a cache file") as err:
        prepare(lfw, only=GOOD[:1], progress=False)
    assert f"delete {path}" in str(err.value) and "bench data prepare" in str(err.value)
    assert "Traceback" not in str(err.value)


def test_cache_with_garbage_pages_is_an_error_naming_the_file_to_delete(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    prepare(lfw, only=GOOD, progress=False).store.close()  # closing folds the WAL into the file
    path = _cache_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)  # every page but the header and schema
    path.write_bytes(bytes(data))
    with pytest.raises(BenchError, match="malformed") as err:
        prepare(lfw, only=GOOD, progress=False).faces(GOOD)
    assert f"delete {path}" in str(err.value)


def _sql(path, statement: str, *args) -> list[tuple]:
    """Run one statement on the cache file from outside, as another program (or a bad disk) would."""
    db = sqlite3.connect(path)
    with db:
        rows = db.execute(statement, args).fetchall()
    db.close()
    return rows


def _zero_crop(path, key: str) -> None:
    _sql(path, "UPDATE aligned SET crop = zeroblob(length(crop)) WHERE key = ?", key)


def test_zeroed_cached_crop_is_detected_and_realigned(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    first = prepare(lfw, only=GOOD, progress=False)
    clean = first.faces(GOOD)
    first.store.close()
    _zero_crop(_cache_file(tmp_path), first.keys[first._index[GOOD[1]]])
    again = prepare(lfw, only=GOOD, progress=False)
    with pytest.warns(UserWarning, match="1 cached crops of lfw .* damaged .* re-aligned"):
        faces = again.faces(GOOD)
    np.testing.assert_array_equal(faces, clean)
    np.testing.assert_array_equal(again.faces(GOOD), clean)  # repaired on disk: no second warning needed


def test_crop_cached_before_checksums_is_signed_on_first_read_then_checked(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    prepared = prepare(lfw, only=GOOD[:1], progress=False)
    clean = prepared.faces(GOOD[:1])
    path = _cache_file(tmp_path)
    _sql(path, "DELETE FROM crop_sha1")  # as a cache written by the previous version
    np.testing.assert_array_equal(prepared.faces(GOOD[:1]), clean)
    assert _sql(path, "SELECT key FROM crop_sha1") == [(prepared.keys[0],)]
    _zero_crop(path, prepared.keys[0])
    with pytest.warns(UserWarning, match="re-aligned"):
        np.testing.assert_array_equal(prepare(lfw, only=GOOD[:1], progress=False).faces(GOOD[:1]), clean)


def test_zeroed_cached_crop_of_a_vanished_photo_names_the_cache_to_delete(tmp_path, lfw, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    _copy(lfw, GOOD[0], root / "person" / "a.jpg")
    prepared = prepare(FolderPerIdentity("copyset", root), progress=False)
    _zero_crop(_cache_file(tmp_path), prepared.keys[0])
    (root / "person" / "a.jpg").unlink()
    with pytest.raises(BenchError, match="damaged .* cannot be re-made") as err:
        prepared.faces(["person/a.jpg"])
    assert f"delete {_cache_file(tmp_path)}" in str(err.value) and "bench data prepare copyset" in str(err.value)
