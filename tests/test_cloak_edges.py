"""``bench cloak`` / ``verify-cloak`` as a careless or hostile user drives them, on real LFW photos: a
folder of the user's files is never overwritten without --overwrite, stale and foreign files are caught,
an interrupted run says it is incomplete, budgets must be finite and in range, a report edited by hand
or pointing outside its folder is refused, the messages say what is really wrong, and a folder of two
people is flagged (issue 20, classes 1, 3, 4, 6, 7, 8)."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
MANIFEST = "cloak-manifest.json"  # bench.outdir.MANIFEST, spelled out so the test also runs against older code
from bench.paths import data_dir

PERSON, OTHER = "Colin_Powell", "George_W_Bush"
# fast settings: a method without a surrogate, no protection measurement (test_cloak.py measures it)
FAST = ["--method", "noise", "--gallery-size", "0"]


def lfw_photos(person: str, n: int, start: int = 0):
    files = sorted((data_dir() / "lfw" / "images" / person).glob("*.jpg"))[start:start + n]
    assert len(files) == n
    return files


@pytest.fixture()
def photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for f in lfw_photos(PERSON, 3):
        shutil.copy(f, src / f.name)
    return src


def cloak(*args: str):
    return CliRunner().invoke(main, ["cloak", *map(str, args)])


def one_clear_line(result, *expected: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    for text in expected:
        assert text in result.output, result.output
    return result.output


# --- class 1: no silent overwrite; stale outputs detected; incomplete folders say so --------------------

def test_a_folder_of_the_users_files_is_not_overwritten_without_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    first = sorted(photos.iterdir())[0]
    mine = {"report.md": b"my own notes\n", first.stem + ".png": b"my own picture, not a protected copy"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    r = cloak(photos, "--out", out, *FAST)
    one_clear_line(r, "would replace", "report.md", first.stem + ".png", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == mine, "nothing of the user's was touched"
    r = cloak(photos, "--out", out, *FAST, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (out / "report.md").read_bytes() != mine["report.md"]
    # a re-run into its own folder needs no --overwrite: the manifest says those files are ours
    r = cloak(photos, "--out", out, *FAST)
    assert r.exit_code == 0, r.output


def test_our_output_edited_by_the_user_counts_as_theirs(photos, tmp_path):
    out = tmp_path / "out"
    assert cloak(photos, "--out", out, *FAST).exit_code == 0
    edited = next(p for p in out.glob("*.png"))
    edited.write_bytes(edited.read_bytes() + b"edited")
    r = cloak(photos, "--out", out, *FAST)
    one_clear_line(r, edited.name, "--overwrite")
    assert edited.read_bytes().endswith(b"edited")


def test_a_rerun_after_a_photo_was_removed_leaves_no_stale_output(photos, tmp_path):
    out = tmp_path / "out"
    assert cloak(photos, "--out", out, *FAST).exit_code == 0
    gone = sorted(photos.iterdir())[0]
    assert (out / (gone.stem + ".png")).is_file()
    gone.unlink()
    r = cloak(photos, "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    assert f"{gone.stem}.png: removed" in r.output and "stale" in r.output
    assert not (out / (gone.stem + ".png")).exists()
    ok = CliRunner().invoke(main, ["verify-cloak", str(out), "--gallery-size", "0"])
    assert ok.exit_code == 0, ok.output


def test_verify_cloak_flags_a_file_that_bench_cloak_did_not_write(photos, tmp_path):
    out = tmp_path / "out"
    assert cloak(photos, "--out", out, *FAST).exit_code == 0
    shutil.copy(lfw_photos(OTHER, 1)[0], out / "unprotected.jpg")  # e.g. an old run's leftover or a clean photo
    r = CliRunner().invoke(main, ["verify-cloak", str(out), "--gallery-size", "0"])
    assert r.exit_code != 0 and "unprotected.jpg: not written by `bench cloak`" in r.output, r.output


def test_an_interrupted_run_leaves_a_folder_marked_incomplete(photos, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the user pressed Ctrl-C while the mask was being crafted

    monkeypatch.setattr("bench.cloak.craft_masks", killed)
    r = cloak(photos, "--out", out, *FAST)
    assert r.exit_code != 0
    assert "INCOMPLETE" in (out / "report.md").read_text()
    assert json.loads((out / MANIFEST).read_text())["state"] == "incomplete"
    v = CliRunner().invoke(main, ["verify-cloak", str(out), "--gallery-size", "0"])
    one_clear_line(v, "incomplete", "run the same `bench cloak` command again")
    monkeypatch.undo()
    assert cloak(photos, "--out", out, *FAST).exit_code == 0, "the re-run finishes the folder without --overwrite"
    assert json.loads((out / MANIFEST).read_text())["state"] == "complete"


# --- class 3: budgets finite and in range -------------------------------------------------------------

@pytest.mark.parametrize("budget", ["inf", "-inf", "nan", "1e9", "0", "-5", "abc"])
def test_budgets_that_are_not_finite_or_in_range_are_refused_before_work(photos, tmp_path, budget):
    out = tmp_path / "out"
    r = cloak(photos, "--out", out, *FAST, "--budget", budget)
    assert r.exit_code == 2 and "--budget" in r.output and "finite number > 0" in r.output, r.output
    assert not out.exists(), "nothing written"


def test_a_budget_that_rounds_away_protects_nothing_and_says_so(photos, tmp_path):
    out = tmp_path / "out"
    r = cloak(photos, "--out", out, *FAST, "--budget", "1e-9")
    one_clear_line(r, "not changed", "raise --budget", "no photo was protected")
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"not changed": 3}
    assert not list(out.glob("*.png")), "no copy identical to the original is passed off as protected"


# --- class 4: one clear line instead of a traceback ----------------------------------------------------

def test_an_output_folder_that_cannot_be_written_is_one_line(photos, tmp_path, monkeypatch):
    def denied(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("bench.outdir.atomic_write", denied)  # stands in for a read-only folder (tests run as root)
    r = cloak(photos, "--out", tmp_path / "out", *FAST)
    one_clear_line(r, "cannot write to", "Permission denied", "--out")


def test_an_output_path_below_a_file_is_one_line(photos, tmp_path):
    (tmp_path / "afile").write_text("x")
    r = cloak(photos, "--out", tmp_path / "afile" / "out", *FAST)
    one_clear_line(r, "cannot write to")


# --- class 6: reports are checked before they are trusted ----------------------------------------------

@pytest.fixture()
def cloaked(photos, tmp_path):
    out = tmp_path / "out"
    r = cloak(photos, "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    return out


def _edit_report(out, change, resign: bool):
    """Edit report.json; ``resign``: also update the manifest's sha256, as a careful forger would."""
    import hashlib

    report = json.loads((out / "report.json").read_text())
    change(report)
    data = (json.dumps(report, indent=2) + "\n").encode()
    (out / "report.json").write_bytes(data)
    if resign:
        manifest = json.loads((out / MANIFEST).read_text())
        manifest["files"]["report.json"] = hashlib.sha256(data).hexdigest()
        (out / MANIFEST).write_text(json.dumps(manifest))


def test_verify_cloak_refuses_a_report_edited_after_bench_cloak(cloaked):
    _edit_report(cloaked, lambda r: r.update(method="opom-convex"), resign=False)
    r = CliRunner().invoke(main, ["verify-cloak", str(cloaked), "--gallery-size", "0"])
    one_clear_line(r, "report.json changed since `bench cloak` wrote it")


def test_verify_cloak_refuses_a_method_that_disagrees_with_its_config(cloaked):
    _edit_report(cloaked, lambda r: r.update(method="none"), resign=True)  # "noise" claimed to be no mask at all
    r = CliRunner().invoke(main, ["verify-cloak", str(cloaked), "--gallery-size", "0"])
    one_clear_line(r, "does not agree with its method_config")


def test_verify_cloak_does_not_follow_output_paths_out_of_the_folder(cloaked, tmp_path):
    outside = tmp_path / "elsewhere.png"
    shutil.copy(next(cloaked.glob("*.png")), outside)

    def escape(report):
        report["photos"][0]["output"] = "../elsewhere.png"

    _edit_report(cloaked, escape, resign=True)
    r = CliRunner().invoke(main, ["verify-cloak", str(cloaked), "--gallery-size", "0"])
    one_clear_line(r, "not a valid cloak report", "'../elsewhere.png'")


def test_verify_cloak_refuses_non_finite_numbers_in_a_report(cloaked):
    _edit_report(cloaked, lambda r: r.update(budget=float("inf")), resign=True)
    r = CliRunner().invoke(main, ["verify-cloak", str(cloaked), "--gallery-size", "0"])
    one_clear_line(r, "not a valid cloak report", "Infinity")


# --- class 8: messages that say what is wrong ----------------------------------------------------------

def test_an_unknown_recognizer_is_a_typo_not_a_checkpoint_to_train(photos, tmp_path):
    r = cloak(photos, "--out", tmp_path / "out", "--method", "advcloak-convex", "--source", "mobilefase")
    out = one_clear_line(r, "unknown recognizer 'mobilefase'", "mobileface", "dlib-resnet")
    assert "bench train" not in out


def test_targets_naming_no_model_are_refused_before_work(photos, tmp_path):
    r = cloak(photos, "--out", tmp_path / "out", "--method", "noise", "--targets", ",", "--gallery-size", "5")
    one_clear_line(r, "--targets ',' names no recognizer", "dlib-resnet")
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_says_it_is_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cloak(tmp_path / "empty", "--out", tmp_path / "out", *FAST)
    out = one_clear_line(r, "is empty")
    assert "above" not in out


# --- class 7: wrong input, handled honestly -------------------------------------------------------------

def test_a_folder_of_two_people_is_flagged_and_refused_with_strict(photos, tmp_path):
    others = lfw_photos(OTHER, 2)
    for f in others:
        shutil.copy(f, photos / f.name)
    r = cloak(photos, "--out", tmp_path / "out", *FAST)
    assert r.exit_code == 0, r.output
    warning = [ln for ln in r.output.splitlines() if ln.startswith("WARNING")]
    assert len(warning) == 1 and "2 of 5 photos do not look like the same person" in warning[0], r.output
    assert all(f.name in warning[0] for f in others)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(report["identity"]["outliers"]) == sorted(f.name for f in others)
    r = cloak(photos, "--out", tmp_path / "strict", *FAST, "--strict")
    one_clear_line(r, "do not look like the same person", "--strict")
    assert not list((tmp_path / "strict").glob("*.png"))


def test_one_persons_folder_raises_no_identity_warning(photos, tmp_path):
    for f in lfw_photos(PERSON, 3, start=3):  # six photos of one person, years apart
        shutil.copy(f, photos / f.name)
    r = cloak(photos, "--out", tmp_path / "out", *FAST, "--strict")
    assert r.exit_code == 0 and "WARNING" not in r.output, r.output


def _encoded(path, mode: str, fmt: str) -> bytes:
    """A real LFW photo re-encoded in another valid encoding (mode ``mode``, container ``fmt``)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    sixteen = np.asarray(rgb.convert("L")).astype(np.uint16) * 257  # 0-65535, as scanners and raw converters write
    if mode == "I;16":  # 16-bit grayscale PNG
        img = Image.fromarray(sixteen)
    elif mode == "I":  # 16-bit values in a 32-bit integer TIFF
        img = Image.fromarray(sixteen.astype(np.int32))
    else:
        img = rgb.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("CMYK", "JPEG"), ("P", "PNG"), ("LA", "PNG"), ("RGBA", "WEBP"),
                                      ("I", "TIFF"), ("F", "TIFF")])
def test_valid_photo_encodings_are_read_as_the_photo_they_show(mode, fmt):
    from bench.pipeline import default_aligner, locate_face, read_photo

    path = lfw_photos(PERSON, 1)[0]
    loaded = read_photo(_encoded(path, mode, fmt), f"x.{fmt.lower()}")
    with Image.open(path) as img:
        reference = np.asarray(img.convert("L")).astype(float)
    gray = loaded.pixels.astype(float).mean(2)
    assert abs(gray.mean() - reference.mean()) < 12, "decoded far brighter or darker than the photo"
    assert locate_face(loaded.pixels, default_aligner()).crop.shape == (112, 112, 3)
