"""Known answers for the protector (bench/stages/protector.py), the step that puts each person's mask on their
test photos at the L2 budget: until a mutation run over the modules that compute the published numbers, no fast
test reached it (only whole `bench run`s did). Real LFW photos of two people (3 and 2 test photos) and masks
built by hand: every saved photo is recomputed pixel by pixel in numpy (scaled to the budget in 0-255 units,
added, clipped to the pixel range, rounded), and every quality number of the row is recounted from those photos
(means over photos, not over people; an unmasked photo's infinite PSNR left out)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.budget import scale_to_budget
from bench.data.splits import Row, Split
from bench.metrics import ssim
from bench.stages.faces import FaceBank
from bench.stages.protector import Protector
from bench.stages.transforms import parse_chain

TEST_PHOTOS = {"Ariel_Sharon": [1, 2, 3], "Hugo_Chavez": [1, 2]}
BUDGET = 1200.0


@pytest.fixture(scope="module")
def protector() -> Protector:
    rows = [Row("lfw", person, "test", f"{person}/{person}_{i:04d}.jpg") for person, photos in TEST_PHOTOS.items()
            for i in photos]
    split = Split("two-people", rows)
    return Protector(split, FaceBank([split], progress=False))


def by_hand(clean: np.ndarray, mask: np.ndarray, budget: float) -> np.ndarray:
    """The saved photo in numpy: the mask (3 x H x W, or one per photo) scaled to L2 = budget on the 0-255
    scale, added to the uint8 photo, clipped to [0, 255] and rounded."""
    mask = mask.astype(np.float64)
    per_photo = mask if mask.ndim == 4 else np.broadcast_to(mask, (len(clean),) + mask.shape)
    norms = np.sqrt(((per_photo * 255) ** 2).reshape(len(per_photo), -1).sum(1))
    scaled = per_photo * (budget / norms)[:, None, None, None]
    added = clean.astype(np.float64) + 255 * scaled.transpose(0, 2, 3, 1)
    return np.rint(np.clip(added, 0, 255)).astype(np.uint8)


def psnr_by_hand(clean: np.ndarray, saved: np.ndarray) -> float:
    mse = ((saved.astype(np.float64) - clean.astype(np.float64)) ** 2).mean()
    return 10 * math.log10(255.0 ** 2 / mse)


def masks_fixture() -> dict[str, torch.Tensor]:
    """A person-specific mask far larger than the budget (it must be scaled down, and it pushes pixels past both
    ends of the range before clipping), and per-photo masks of different sizes for the other person."""
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([1e-3, 2.0], dtype=torch.float64).reshape(2, 1, 1, 1)  # one tiny, one huge
    return {"Ariel_Sharon": 0.8 * torch.randn(3, 112, 112, generator=g, dtype=torch.float64),
            "Hugo_Chavez": sizes * torch.randn(2, 3, 112, 112, generator=g, dtype=torch.float64)}


def test_every_saved_photo_and_quality_number_is_recounted_by_hand(protector):
    masks = masks_fixture()
    out = protector.protect(masks, BUDGET)
    assert protector.identities == sorted(TEST_PHOTOS) and set(out.photos) == set(TEST_PHOTOS)
    assert out.budget == BUDGET and isinstance(out.budget, float) and out.transforms == ""
    clean = {p: protector.clean(p) for p in TEST_PHOTOS}
    saved = {p: by_hand(clean[p], masks[p].numpy(), BUDGET) for p in TEST_PHOTOS}
    for p in TEST_PHOTOS:
        assert clean[p].shape == (len(TEST_PHOTOS[p]), 112, 112, 3)
        assert np.array_equal(out.photos[p], saved[p]), p
    before_clip = clean["Ariel_Sharon"].astype(np.float64) + 255 * np.moveaxis(
        masks["Ariel_Sharon"].numpy() * BUDGET / (255 * np.linalg.norm(masks["Ariel_Sharon"].numpy())), 0, -1)
    assert before_clip.min() < 0 and before_clip.max() > 255, "the fixture must reach past both ends of the range"
    photos = [(c, s) for p in TEST_PHOTOS for c, s in zip(clean[p], saved[p])]  # the 5 photos, in order
    diff = [s.astype(np.float64) - c.astype(np.float64) for c, s in photos]
    l2 = [float(np.sqrt((d ** 2).sum())) for d in diff]
    assert all(v <= BUDGET + 0.5 * math.sqrt(3 * 112 * 112) for v in l2), "within the budget up to rounding"
    q = out.quality
    assert q["l2_nominal"] == pytest.approx(BUDGET), "each person's mask (and each photo's) is scaled to the budget"
    assert q["l2_realised"] == pytest.approx(np.mean(l2), abs=1e-9), "a mean over the 5 photos, not over 2 people"
    assert q["l2_realised"] != pytest.approx((np.mean(l2[:3]) + np.mean(l2[3:])) / 2, abs=1e-6)
    assert q["l2_realised_min"] == pytest.approx(min(l2), abs=1e-9)
    assert q["l2_realised_max"] == pytest.approx(max(l2), abs=1e-9)
    assert q["linf"] == pytest.approx(np.mean([np.abs(d).max() for d in diff]), abs=1e-9)
    assert q["psnr"] == pytest.approx(np.mean([psnr_by_hand(c, s) for c, s in photos]), abs=1e-9)
    assert q["ssim"] == pytest.approx(np.mean([ssim(c[None], s[None])[0] for c, s in photos]), abs=1e-12)
    assert 0.3 < q["ssim"] < 0.99
    assert set(q) == {"l2_nominal", "l2_realised", "l2_realised_min", "l2_realised_max", "linf", "ssim", "psnr"}


def test_an_unmasked_person_is_left_untouched_and_counted_at_l2_zero(protector):
    masks = {**masks_fixture(), "Hugo_Chavez": torch.zeros(3, 112, 112, dtype=torch.float64)}
    out = protector.protect(masks, BUDGET)
    hugo = protector.clean("Hugo_Chavez")
    assert np.array_equal(out.photos["Hugo_Chavez"], hugo)
    assert out.quality["l2_nominal"] == pytest.approx(BUDGET / 2), "a mean over people: 1,200 and 0"
    assert out.quality["l2_realised_min"] == 0.0
    ariel = [(c, s) for c, s in zip(protector.clean("Ariel_Sharon"), out.photos["Ariel_Sharon"])]
    assert out.quality["psnr"] == pytest.approx(np.mean([psnr_by_hand(c, s) for c, s in ariel]), abs=1e-9), \
        "the unmasked photos' infinite PSNR is left out"
    assert out.quality["ssim"] == pytest.approx((3 * np.mean(ssim(*map(np.stack, zip(*ariel)))) + 2 * 1.0) / 5)
    none = protector.protect({p: torch.zeros(3, 112, 112) for p in TEST_PHOTOS}, BUDGET)
    assert none.quality["psnr"] == math.inf and none.quality["l2_nominal"] == 0.0 and none.quality["linf"] == 0.0


def test_the_transform_chain_acts_on_the_saved_photos_and_quality_is_measured_before_it(protector):
    masks = masks_fixture()
    chain = parse_chain("jpeg:75")
    out = protector.protect(masks, 400.0, chain)
    plain = protector.protect(masks, 400.0)
    assert out.transforms == "jpeg:75" and out.budget == 400.0
    for p in TEST_PHOTOS:
        assert np.array_equal(out.photos[p], chain(plain.photos[p]))
        assert not np.array_equal(out.photos[p], plain.photos[p])
    assert out.quality == plain.quality, "quality is the saved photo's (what the person publishes), before the transform"
    assert plain.quality["l2_nominal"] == pytest.approx(400.0)


def test_a_photo_level_delivery_gets_each_persons_scaled_mask_and_counts_every_photo(protector):
    """realistic:png: the scaled mask goes into each original photo and the attacker's re-aligned crops come back;
    the row counts the deliveries of all 5 photos (not only the last person's)."""
    masks = masks_fixture()
    chain = parse_chain("realistic:png")
    out = protector.protect(masks, BUDGET, chain)
    assert out.transforms == "realistic:png"
    prepared = protector.faces.source("lfw").prepared
    for p in TEST_PHOTOS:
        files = protector.split.files(p, "test")
        direct, _ = chain.photo.deliver(prepared, files, scale_to_budget(masks[p], BUDGET))
        assert out.photos[p].shape == (len(TEST_PHOTOS[p]), 112, 112, 3)
        assert np.array_equal(out.photos[p], direct), p
    assert out.quality["realistic_photos"] == 5
    assert out.quality["realistic_not_redetected"] == 0 and out.quality["realistic_not_redetected_files"] == []
    plain = protector.protect(masks, BUDGET)
    assert {k: out.quality[k] for k in plain.quality} == plain.quality, "the saved crops' quality, as without delivery"
