"""The realistic pipeline on real LFW photos: a canonical-crop mask warped back into the full photo
lands where the attacker's re-detection and re-alignment find it, only the face region changes, and
the photo's L2 is about the crop budget divided by the alignment scale.

Two masks at L2 1,200: ``smooth`` (Gaussian noise blurred with sigma 1.5 crop px: checks the geometry)
and ``advcloak`` (advcloak-convex from mobileface on two of the photos: what a user gets; ~80% of its
energy is a stripe alternating row by row, which the dlib-resnet generator's masks do not have). Measured on these 8 photos (4 people x 2), 0-255 units,
MAE = mean absolute error per value, corr = Pearson correlation, on the crop without its 4-px rim:

- *exact geometry* (protected photo re-cut at the clean photo's landmarks) vs the intended mask:
  smooth PNG MAE 0.60, corr 0.990 (min 0.979); advcloak PNG MAE 2.15, corr 0.873 (min 0.842)
  (bilinear resampling there and back keeps 61% of its L2: 733 of 1,200);
- *attacker* (protected photo re-detected and re-aligned; recovered = attacker crop minus the clean
  photo cut at the attacker's geometry) vs the intended mask carried through the detector's jitter
  (:func:`mask_in_attacker_crop`): smooth PNG MAE 0.46, corr 0.991 (min 0.980), JPEG q95 MAE 1.65,
  corr 0.929 (min 0.909); advcloak PNG MAE 1.06, corr 0.907 (min 0.885), JPEG q95 MAE 1.58, corr 0.847
  (min 0.824). The jitter: re-detecting the protected photo moves the landmarks by up to ~1.7 px, so the mask sits
  0.9-1.1 crop px (mean; max 2.8-4.4) from where it was made in the attacker's crop. Against the
  *unshifted* mask the attacker's crop correlates only 0.87 (smooth) and 0.26 (advcloak: the row
  stripe does not survive a sub-pixel shift), and re-aligned protected minus re-aligned clean crop
  (two different geometries) 0.52 / 0.14 (MAE 6.0 / 6.7): the face itself moves by more than the mask
  is strong. A 3x upscaled photo (scale 0.27) keeps the mask better: attacker corr 0.995.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from bench.budget import scale_to_budget
from bench.data.images import BadImage
from bench.paths import data_dir
from bench.pipeline import (
    attacker_crop, attacker_location, default_aligner, encode_photo, face_footprint, inverse_warp, locate_face,
    mask_in_attacker_crop, mask_offset, protect_photo, read_photo, save_and_reload,
)

PEOPLE = ("Angelina_Jolie", "Colin_Powell", "Bill_Gates", "Halle_Berry")
BUDGET = 1200.0
INNER = np.s_[4:-4, 4:-4]  # the crop without its 4-pixel rim (the bilinear border fades the mask there)

# (min corr, max mean MAE) per mask and check, from the measurements above with margin
EXACT = {"smooth": (0.95, 1.0), "advcloak": (0.8, 2.5)}
ATTACKER = {("smooth", "png"): (0.95, 0.8), ("smooth", "jpeg"): (0.85, 2.2),
            ("advcloak", "png"): (0.85, 1.3), ("advcloak", "jpeg"): (0.78, 2.0)}
MAX_MEAN_OFFSET, MAX_OFFSET = 2.0, 6.0  # crop px, measured 0.9-1.1 mean, 4.4 max


def _files():
    root = data_dir() / "lfw" / "images"
    return [f for p in PEOPLE for f in sorted((root / p).glob("*.jpg"))[:2]]


@pytest.fixture(scope="module")
def photos():
    files = _files()
    assert len(files) == 8, "the LFW copy lacks the test people's photos"
    pixels = [read_photo(f.read_bytes(), f.name).pixels for f in files]
    locs = [locate_face(p, default_aligner(), "main") for p in pixels]
    return pixels, locs


@pytest.fixture(scope="module")
def masks(photos):
    from methods import create_method
    from bench.zoo import create_recognizer, to_canonical

    crops = np.stack([loc.crop for loc in photos[1][:2]])
    adv = create_method("advcloak-convex").craft(to_canonical(torch.from_numpy(crops)), [create_recognizer("mobileface")])
    noise = np.random.default_rng(0).normal(size=(112, 112, 3))
    smooth = torch.from_numpy(cv2.GaussianBlur(noise, (0, 0), 1.5)).permute(2, 0, 1)
    return {"smooth": scale_to_budget(smooth.double(), BUDGET), "advcloak": scale_to_budget(adv.double(), BUDGET)}


@pytest.fixture(scope="module")
def mask(masks):
    return masks["advcloak"]


def _intended(mask) -> np.ndarray:
    return mask.numpy().transpose(1, 2, 0) * 255.0


def _corr(a, b) -> float:
    return float(np.corrcoef(a[INNER].ravel(), b[INNER].ravel())[0, 1])


def test_only_the_face_region_changes(photos, mask):
    for pixels, loc in zip(*photos):
        protected, info = protect_photo(pixels, mask, None, location=loc)
        inside = face_footprint(loc.matrix, pixels.shape)
        assert protected.shape == pixels.shape and protected.dtype == np.uint8
        assert np.array_equal(protected[~inside], pixels[~inside])  # bit for bit outside the crop's footprint
        assert 0.15 < inside.mean() < 0.5 and info["changed_pixels"] > 0.5 * inside.sum()  # the face: ~1/4 of an LFW photo
        x0, y0, x1, y1 = info["region"]
        changed = (protected != pixels).any(axis=2)
        assert not changed[:y0].any() and not changed[y1:].any() and not changed[:, :x0].any() and not changed[:, x1:].any()


def test_full_photo_l2_is_budget_over_scale(photos, masks):
    """The budget is on the 112 crop; on the photo a smooth mask's L2 is ~ budget / scale (93-96% measured), a
    high-frequency one's less (bilinear interpolation): the advcloak mask keeps 55-80% of it."""
    for pixels, loc in zip(*photos):
        for name, m in masks.items():
            _, info = protect_photo(pixels, m, None, location=loc)
            assert info["l2_crop"] == pytest.approx(BUDGET)
            assert info["l2_photo_expected"] == pytest.approx(BUDGET / loc.scale)
            ratio = info["l2_photo"] / info["l2_photo_expected"]
            print(name, "photo L2 / (budget / scale)", round(ratio, 3))
            assert 0.88 < ratio < 1.05 if name == "smooth" else 0.55 < ratio < 0.8, (name, ratio)
            assert info["ssim_photo"] > 0.9 and info["ssim_photo"] >= info["ssim_face"]


@pytest.mark.parametrize("name", ["smooth", "advcloak"])
def test_mask_back_at_exact_geometry(photos, masks, name):
    """The protected PNG re-cut at the clean photo's own landmarks holds the intended mask."""
    mask, intended = masks[name], _intended(masks[name])
    errors, corrs = [], []
    for pixels, loc in zip(*photos):
        protected, _ = protect_photo(pixels, mask, None, location=loc)
        _, saved = save_and_reload(protected, "png")
        rec = cv2.warpAffine(saved, loc.matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float64) - loc.crop
        errors.append(np.abs(rec - intended)[INNER].mean())
        corrs.append(_corr(rec, intended))
    print(name, "exact geometry MAE", np.round(errors, 2).tolist(), "corr", np.round(corrs, 3).tolist())
    assert min(corrs) > EXACT[name][0] and np.mean(errors) < EXACT[name][1]


@pytest.mark.parametrize("name,fmt", list(ATTACKER))
def test_mask_lands_where_the_attacker_finds_it(photos, masks, name, fmt):
    """The attacker re-detects and re-aligns the saved photo: the crop it gets holds the mask, moved only
    by the detector's jitter (sub-pixel to a few crop px), and nothing else changed."""
    mask = masks[name]
    errors, corrs, offsets, naive = [], [], [], []
    for pixels, loc in zip(*photos):
        protected, _ = protect_photo(pixels, mask, None, location=loc)
        data, saved = save_and_reload(protected, fmt, 95)
        att = attacker_location(data)
        assert att is not None and np.array_equal(att.crop, attacker_crop(data))
        clean_same_geometry = cv2.warpAffine(pixels, att.matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
        rec = att.crop.astype(np.float64) - clean_same_geometry
        expected = mask_in_attacker_crop(mask, loc.matrix, att.matrix)
        errors.append(np.abs(rec - expected)[INNER].mean())
        corrs.append(_corr(rec, expected))
        offsets.append(mask_offset(loc.matrix, att.matrix))
        naive.append(_corr(att.crop.astype(np.float64) - attacker_crop(pixels), _intended(mask)))
    print(name, fmt, "attacker MAE", np.round(errors, 2).tolist(), "corr", np.round(corrs, 3).tolist(),
          "offset mean/max px", np.round(offsets, 2).tolist(), "naive corr", np.round(naive, 3).tolist())
    assert min(corrs) > ATTACKER[name, fmt][0] and np.mean(errors) < ATTACKER[name, fmt][1]
    assert np.mean([o[0] for o in offsets]) < MAX_MEAN_OFFSET and max(o[1] for o in offsets) < MAX_OFFSET


def test_inverse_warp_is_the_inverse_of_the_alignment(photos):
    """A mask warped back then aligned forward again is the mask (away from the bilinear rim)."""
    pixels, loc = photos[0][0], photos[1][0]
    smooth = torch.from_numpy(cv2.GaussianBlur(np.random.default_rng(0).normal(size=(112, 112, 3)), (0, 0), 2.0)).permute(2, 0, 1)
    back = inverse_warp(smooth / 255.0, loc.matrix, pixels.shape)
    assert back.shape == (*pixels.shape[:2], 3) and not back[~face_footprint(loc.matrix, pixels.shape)].any()
    again = cv2.warpAffine(back, loc.matrix, (112, 112), flags=cv2.INTER_LINEAR)
    err = np.abs(again - smooth.numpy().transpose(1, 2, 0))[INNER]
    assert err.max() < 0.2 * np.abs(smooth.numpy()).max()


def test_several_faces_refused_or_main_only(photos):
    a, b = photos[0][0], photos[0][2]
    two = np.concatenate([a, b], axis=1)  # two people side by side
    with pytest.raises(BadImage, match="several faces"):
        locate_face(two, default_aligner(), "refuse")
    loc = locate_face(two, default_aligner(), "main")
    assert len(loc.others) == 1
    protected, info = protect_photo(two, torch.ones(3, 112, 112), BUDGET, location=loc)
    assert info["other_faces_unprotected"] == 1
    side = 0 if info["region"][0] < 250 else 1  # the other person's half is untouched
    other = two[:, 250:] if side == 0 else two[:, :250]
    assert np.array_equal(other, protected[:, 250:] if side == 0 else protected[:, :250])


def test_no_face_and_bad_bytes():
    flat = np.full((200, 200, 3), 128, np.uint8)
    assert attacker_crop(flat) is None
    assert attacker_crop(encode_photo(flat)) is None
    assert attacker_crop(b"not an image at all") is None
    with pytest.raises(BadImage, match="no face"):
        locate_face(flat)


def test_exif_orientation_applied_and_no_metadata_written(photos):
    upright = photos[0][0][20:230]  # 250 wide, 210 high
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a camera stores a sideways shot
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    exif[0x010F] = "SecretCam"  # Make
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=98, exif=exif.tobytes())
    loaded = read_photo(buf.getvalue())
    assert loaded.pixels.shape == upright.shape
    assert np.abs(loaded.pixels.astype(int) - upright).mean() < 3
    assert any("orientation 6" in n for n in loaded.notes) and not any("SecretCam" in n for n in loaded.notes)
    for fmt in ("png", "jpeg"):
        data = encode_photo(loaded.pixels, fmt)
        assert b"SecretCam" not in data and b"Exif" not in data
        with Image.open(io.BytesIO(data)) as img:
            assert not img.getexif() and "exif" not in img.info and "icc_profile" not in img.info


def test_high_resolution_photo(photos, mask):
    """A 3x upscaled photo (750 x 750): the face covers 3x more pixels, the photo's L2 triples (~ budget / scale),
    the region-only warp equals a full-frame warp, and the attacker still recovers the mask."""
    pixels = cv2.resize(photos[0][0], None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    loc = locate_face(pixels, default_aligner(), "main")
    assert loc.scale == pytest.approx(photos[1][0].scale / 3, rel=0.05)
    full = cv2.warpAffine(_intended(mask).astype(np.float32), cv2.invertAffineTransform(loc.matrix),
                          (pixels.shape[1], pixels.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)
    region_only = inverse_warp(mask, loc.matrix, pixels.shape)
    print("region-only vs full-frame warp: max abs diff", np.abs(region_only - full).max(), "of", np.abs(full).max())
    assert np.array_equal(region_only == 0, full == 0) and np.abs(region_only - full).max() < 0.01  # cv2 fixed-point coordinates: 8e-4 measured
    protected, info = protect_photo(pixels, mask, None, location=loc)
    assert 0.55 < info["l2_photo"] / (BUDGET / loc.scale) < 1.05  # the advcloak mask: see the L2 test
    assert np.array_equal(protected[~face_footprint(loc.matrix, pixels.shape)], pixels[~face_footprint(loc.matrix, pixels.shape)])
    data, _ = save_and_reload(protected, "png")
    att = attacker_location(data)
    rec = att.crop.astype(np.float64) - cv2.warpAffine(pixels, att.matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
    corr = _corr(rec, mask_in_attacker_crop(mask, loc.matrix, att.matrix))
    print("3x photo: scale", round(loc.scale, 3), "L2 photo", round(info["l2_photo"]), "attacker corr", round(corr, 3))
    assert corr > ATTACKER["advcloak", "png"][0]
