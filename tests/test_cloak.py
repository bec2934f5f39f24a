"""``bench cloak`` and ``bench verify-cloak`` on a handful of one real LFW person's photos, plus the files
a real folder holds by mistake (a text file, a photo without a face, a photo of two people): protected
full-size photos out, unchanged at a glance, no metadata, one clear line per bad file, a report with the offline protection; verify-cloak catches a changed output."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.metrics import ssim
from bench.paths import data_dir

PERSON = "Angelina_Jolie"
N_PHOTOS = 6
SECRET = "SecretCam-serial-4711"  # an EXIF value that must never reach an output, a log or a report
TARGETS = "mobileface,dlib-resnet"
GALLERY = 40


def _upright(path):
    with Image.open(path) as img:
        from PIL import ImageOps

        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


@pytest.fixture(scope="module")
def cloaked(tmp_path_factory):
    src = tmp_path_factory.mktemp("photos")
    files = sorted((data_dir() / "lfw" / "images" / PERSON).glob("*.jpg"))[: N_PHOTOS + 1]
    assert len(files) == N_PHOTOS + 1
    for f in files[1:N_PHOTOS]:
        shutil.copy(f, src / f.name)
    # the first photo as a phone stores it: sideways pixels, EXIF orientation 6, a camera make
    with Image.open(files[0]) as img:
        upright = img.convert("RGB").crop((0, 20, 250, 230))  # 250 x 210, not square: a missed rotation shows
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x010E] = 6, SECRET, f"taken by {SECRET}"
    upright.transpose(Image.Transpose.ROTATE_90).save(src / "phone.jpg", quality=97, exif=exif.tobytes())
    (src / "notes.txt").write_text("not a photo\n")
    other = sorted((data_dir() / "lfw" / "images" / "Colin_Powell").glob("*.jpg"))[0]
    with Image.open(files[N_PHOTOS]) as a, Image.open(other) as b:  # two people side by side
        Image.fromarray(np.concatenate([np.asarray(a), np.asarray(b)], axis=1)).save(src / "group.jpg", quality=95)
    Image.fromarray(np.full((240, 320, 3), 120, np.uint8)).save(src / "wall.png")  # no face
    out = tmp_path_factory.mktemp("cloaked")
    result = CliRunner().invoke(main, ["cloak", str(src), "--out", str(out), "--method", "advcloak-convex",
                                       "--source", "mobileface", "--targets", TARGETS, "--gallery-size", str(GALLERY),
                                       "--figure"])
    print(result.output)
    assert result.exit_code == 0, result.output
    return src, out, result.output, np.asarray(upright)


def test_protected_photos_full_size_and_unchanged_at_a_glance(cloaked):
    src, out, _, upright = cloaked
    report = json.loads((out / "report.json").read_text())
    done = [r for r in report["photos"] if r["status"] == "protected"]
    assert len(done) == N_PHOTOS and report["counts"]["protected"] == N_PHOTOS
    for r in done:
        before, after = _upright(src / r["name"]), _upright(out / r["output"])
        assert r["output"].endswith(".png") and after.shape == before.shape and r["size"] == [after.shape[1], after.shape[0]]
        if r["name"] == "phone.jpg":  # stored sideways (210 x 250) with EXIF orientation 6: the output is upright
            assert after.shape == upright.shape == (210, 250, 3) and np.abs(after.astype(int) - upright).mean() < 3
        s = float(ssim(before[None], after[None])[0])
        print(r["name"], "SSIM", round(s, 4), "PSNR", round(r["metrics"]["psnr_photo"], 1))
        assert s > 0.9 and r["metrics"]["ssim_photo"] == pytest.approx(s, abs=1e-6) and not np.array_equal(before, after)
        assert r["metrics"]["redetected"]
    assert sum(r["used_for_mask"] for r in done) == N_PHOTOS  # <= 10 photos: all of them shape the mask


def test_bad_files_get_one_clear_line_each(cloaked):
    src, out, log, _ = cloaked
    lines = log.splitlines()
    assert [ln for ln in lines if ln.startswith("notes.txt:")] == ["notes.txt: NOT protected, unreadable "
                                                                  "(not an image PIL can decode (UnidentifiedImageError)); nothing written"]
    wall = [ln for ln in lines if ln.startswith("wall.png:")]
    assert len(wall) == 1 and "NOT protected, no face" in wall[0]
    assert [ln for ln in lines if ln.startswith("group.jpg:")] == ["group.jpg: NOT protected, several faces "
                                                                  "(2 faces found (mtcnn); crop it to your face, or --multi-face main "
                                                                  "protects only the face nearest the centre); nothing written"]
    report = json.loads((out / "report.json").read_text())
    status = {r["name"]: r["status"] for r in report["photos"]}
    assert status["notes.txt"] == "unreadable" and status["wall.png"] == "no face" and status["group.jpg"] == "several faces"
    md = (out / "report.md").read_text()
    assert "| notes.txt | **not protected: unreadable**" in md and "| wall.png | **not protected: no face**" in md
    written = sorted(p.name for p in out.iterdir())
    assert not {"notes.png", "wall.png", "group.png"} & set(written)
    assert sum(p.suffix == ".png" and p.name != "before_after.png" for p in out.iterdir()) == N_PHOTOS


def test_no_metadata_in_outputs_logs_or_reports(cloaked):
    src, out, log, _ = cloaked
    assert SECRET in (src / "phone.jpg").read_bytes().decode("latin-1")  # the test input really has it
    for p in out.iterdir():
        data = p.read_bytes()
        assert SECRET.encode() not in data and b"Exif" not in data, p.name
        if p.suffix == ".png" and p.name != "before_after.png":
            with Image.open(io.BytesIO(data)) as img:
                assert not img.getexif() and not (set(img.info) & {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp"})
    assert SECRET not in log
    phone = [ln for ln in log.splitlines() if ln.startswith("phone.jpg")]
    assert len(phone) == 1 and "EXIF orientation 6 applied" in phone[0] and "metadata" in phone[0]


def test_report_measures_protection_per_target(cloaked):
    _, out, log, _ = cloaked
    report = json.loads((out / "report.json").read_text())
    prot = report["protection"]
    assert prot["gallery"]["size"] == GALLERY and list(prot["targets"]) == TARGETS.split(",")
    for target, row in prot["targets"].items():
        assert row["white_box"] == (target == "mobileface")
        assert row["photo"]["pairs"] == N_PHOTOS * (N_PHOTOS - 1) and row["not_redetected"] == 0
        for kind in ("clean", "crop", "photo", "linkability"):
            assert 0.0 <= row[kind]["top1"] <= row[kind]["top5"] <= 1.0
        assert row["protection_top1"] == pytest.approx(1 - row["photo"]["top1"])
        assert f"{target}{' (white-box)' if row['white_box'] else ''}: Top-1 identified clean" in log
    # dlib-resnet (98.8% on LFW) finds this person's clean photos among 40 distractors
    assert prot["targets"]["dlib-resnet"]["clean"]["top1"] > 0.8
    assert (out / "before_after.png").stat().st_size > 10_000


def test_verify_cloak_rechecks_and_catches_a_changed_output(cloaked, tmp_path):
    src, out, _, _ = cloaked
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ok = CliRunner().invoke(main, ["verify-cloak", str(copy), "--targets", "mobileface"])
    print(ok.output)
    assert ok.exit_code == 0, ok.output
    result = json.loads((copy / "verify.json").read_text())
    assert result["originals"] and len(result["checked"]) == N_PHOTOS and not result["problems"]
    assert all(c["unchanged"] and c["redetected"] for c in result["checked"])
    before = json.loads((out / "report.json").read_text())["protection"]["targets"]["mobileface"]["photo"]
    assert result["protection"]["targets"]["mobileface"]["photo"] == before  # same files, same numbers
    victim = next(p for p in copy.glob("*.png") if p.name != "before_after.png")
    pixels = np.asarray(Image.open(victim)).copy()
    pixels[:10, :10] ^= 1
    Image.fromarray(pixels).save(victim)
    bad = CliRunner().invoke(main, ["verify-cloak", str(copy), "--targets", "mobileface"])
    assert bad.exit_code != 0
    assert f"{victim.name}: changed since `bench cloak` wrote it (sha256 differs)" in bad.output
