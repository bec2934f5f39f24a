"""Distortion transforms on real crops, and the three scorers (probe-side, gallery-side, linkability) on
hand-built features and on a small real run (3 LFW people among 60 distractors, mobileface)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.metrics import psnr
from bench.runner import RunConfig, Runner
from bench.search import make_index
from bench.stages.evaluator import CleanGallery
from bench.stages.protocols import create_protocol
from bench.stages.transforms import TRANSFORMS, parse_chain
from bench.store import ResultStore
from mini_splits import write_mini_splits

CROPS = ["Ariel_Sharon/Ariel_Sharon_0001.jpg", "Hugo_Chavez/Hugo_Chavez_0001.jpg",
         "Junichiro_Koizumi/Junichiro_Koizumi_0001.jpg", "Colin_Powell/Colin_Powell_0001.jpg"]


@pytest.fixture(scope="module")
def crops(aligned):
    return aligned(CROPS)


# -- transforms ----------------------------------------------------------------------------------------
# mean PSNR (dB) over the four crops must fall in these ranges (measured 2026-12 on these crops: the
# middle of each range, +-3 dB): a transform that silently did nothing (inf) or destroyed the face (< 10 dB) fails
PSNR_RANGE = {
    "jpeg:95": (41, 48), "jpeg:75": (35, 42), "jpeg:50": (32, 39),
    "resize:0.75": (34, 42), "resize:0.5": (29, 37),
    "blur:0.5": (42, 50), "blur:1": (32, 39), "blur:2": (25, 32),
    "median:3": (36, 43), "median:5": (30, 37), "median:9": (24, 31),
    "bits:7": (48, 54), "bits:4": (32, 37), "bits:2": (18, 23), "bits:1": (7, 12),
}
# within a family, a stronger setting changes the photo more
STRONGER = [["jpeg:95", "jpeg:75", "jpeg:50"], ["resize:0.75", "resize:0.5"], ["blur:0.5", "blur:1", "blur:2"],
            ["median:3", "median:5", "median:9"], ["bits:7", "bits:4", "bits:2", "bits:1"]]


def test_each_transform_changes_real_crops_by_a_plausible_amount_deterministically(crops):
    measured = {}
    for spec in PSNR_RANGE:
        chain = parse_chain(spec)
        out = chain(crops)
        assert out.dtype == np.uint8 and out.shape == crops.shape and chain.spec == spec
        assert np.array_equal(out, chain(crops.copy())), f"{spec} is not deterministic"
        assert not np.shares_memory(out, crops)
        measured[spec] = float(np.mean(psnr(crops, out)))
    for spec, (lo, hi) in PSNR_RANGE.items():
        assert lo <= measured[spec] <= hi, f"{spec}: PSNR {measured[spec]:.1f} dB outside [{lo}, {hi}] ({measured})"
    for family in STRONGER:
        values = [measured[s] for s in family]
        assert values == sorted(values, reverse=True), f"{family}: {values}"
    # each one on its own photo: the result does not depend on the rest of the batch
    assert np.array_equal(parse_chain("blur:1+median:3+bits:4")(crops[1:2]), parse_chain("blur:1+median:3+bits:4")(crops)[1:2])
    assert {"jpeg", "resize", "blur", "median", "bits"} <= set(TRANSFORMS.names())


def test_transforms_at_their_boundaries(crops):
    assert np.array_equal(parse_chain("resize:1")(crops), crops), "resize:1 is the identity"
    seven = parse_chain("bits:7")(crops).astype(int)
    assert 0 < np.abs(seven - crops).max() <= 1, "7 bits: every value within one of its own"
    for b in (1, 2, 3):
        levels = np.round(np.arange(2**b) * 255 / (2**b - 1))
        assert set(np.unique(parse_chain(f"bits:{b}")(crops))) <= set(levels.astype(np.uint8))
    extremes = np.zeros((1, 112, 112, 3), np.uint8)
    extremes[:, :, 56:] = 255
    for spec in ("bits:1", "bits:4", "median:9", "blur:0.5"):  # black and white stay as they are away from the edge
        out = parse_chain(spec)(extremes)
        assert (out[:, :, :40] == 0).all() and (out[:, :, 72:] == 255).all(), spec
    flat = np.full((2, 112, 112, 3), 77, np.uint8)
    for spec in ("blur:3", "median:5", "resize:0.5", "jpeg:50"):
        assert np.abs(parse_chain(spec)(flat).astype(int) - 77).max() <= 1, f"{spec} moves a flat image"
    tiny = parse_chain("blur:0.1")(crops).astype(int)
    assert np.abs(tiny - crops).max() <= 2, "a 0.1 px blur barely changes anything"
    empty = np.zeros((0, 112, 112, 3), np.uint8)
    for spec in ("blur:1", "median:3", "bits:4"):
        assert parse_chain(spec)(empty).shape == empty.shape


@pytest.mark.parametrize("spec, says", [
    ("blur:0", "Gaussian sigma in pixels, > 0 and at most 20"), ("blur:-1", "> 0"), ("blur:25", "at most 20"),
    ("blur:nan", "> 0"), ("median:4", "odd median-filter size from 3 to 9"), ("median:1", "from 3 to 9"),
    ("median:11", "from 3 to 9"), ("median:3.5", "odd"), ("bits:8", "bit depth from 1 to 7"),
    ("bits:0", "from 1 to 7"), ("bits:2.5", "an integer"), ("blur", "blur:VALUE"), ("jpeg:75+bits", "bits:VALUE"),
])
def test_bad_transform_values_are_refused_naming_the_valid_range(spec, says):
    with pytest.raises(BenchError) as err:
        parse_chain(spec)
    assert says in str(err.value) and spec.split("+")[-1].split(":")[0] in str(err.value)


# -- the scorers on hand-built features ----------------------------------------------------------------
def unit(x):
    x = np.asarray(x, np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def gallery(people, distractors, ids=None):
    return CleanGallery("toy", make_index("torch", distractors), distractors, people, ids)


def test_gallery_side_never_matches_a_probe_with_its_own_protected_copy():
    eye = np.eye(8, dtype=np.float32)
    people = {"a": eye[:3], "b": eye[3:6]}  # every photo orthogonal to every other
    distractors = unit(np.ones((6, 8)) + np.eye(6, 8) * 0.1)  # cosine ~0.35 with every photo; 6 > k = 5
    clean = gallery(people, distractors)
    out = create_protocol("gallery-side").score(clean, dict(people))
    # the protected copies equal the clean photos: only the excluded own copy would match, so nothing is found
    assert out["gallery_top1_protection"] == out["gallery_top5_protection"] == 1.0
    assert out["gallery_linear_top1_protection"] == 1.0 and out["gallery_probes"] == 6
    link = create_protocol("linkability").score(clean, dict(people))
    assert link["link_top1_protection"] == 1.0 and link["link_top1_rate"] == link["link_top1_clean_rate"] == 0.0
    assert link["link_auc"] == 0.5, "same- and different-person pairs all score 0: a tie counts one half"
    assert link["link_auc_distractors"] == 0.0


def test_gallery_side_nearest_neighbour_and_class_mean_on_a_hand_built_case():
    rng = np.random.default_rng(0)
    centre = unit(rng.normal(size=16))
    person = unit(centre + 0.1 * rng.normal(size=(4, 16)))  # four photos near one direction
    other = unit(rng.normal(size=(3, 16)))
    distractors = unit(rng.normal(size=(40, 16)))
    clean = gallery({"p": person, "q": other}, distractors, ids=tuple(f"d{i // 2}" for i in range(40)))
    proto = create_protocol("gallery-side")
    out = proto.score(clean, {"p": person, "q": other})
    assert out["gallery_top1_protection"] == pytest.approx(1 - out["gallery_top1_clean_accuracy"])
    assert out["gallery_per_identity_hits"]["p"]["1"] == 4, "each photo finds the person's other photos"
    assert out["gallery_distractor_classes"] == 20, "distractor photos are grouped by identity"
    # protected copies replaced by one feature far from the person (a perfect cloak): nothing is found
    cloaked = {"p": np.repeat(unit(-centre)[None], 4, 0), "q": other}
    far = proto.score(clean, cloaked)
    assert far["gallery_per_identity_hits"]["p"] == {"1": 0, "5": 0}
    assert far["gallery_per_identity_linear_hits"]["p"] == {"1": 0, "5": 0}
    assert far["gallery_top1_clean_accuracy"] == out["gallery_top1_clean_accuracy"], "the clean baseline is the target's"
    link = create_protocol("linkability").score(clean, cloaked)
    assert link["link_per_identity_linked"]["p"] == 4, "identical cloaked photos link perfectly"
    # ties go to the person: a probe whose best gallery photo equals the best distractor is found
    d = unit(np.eye(2, 4)[:1] + np.eye(2, 4)[1:2])  # (1, 1, 0, 0) / sqrt 2
    tie = gallery({"t": unit([[1, 0, 0, 0], [1, 0, 0, 0]])}, d)
    prot = {"t": unit([[1, 1, 0, 0], [1, 1, 0, 0]])}  # cosine to the clean probe = that of the distractor
    assert create_protocol("gallery-side").score(tie, prot)["gallery_top1_protection"] == 0.0


def test_protocol_keys_name_what_changes_their_scores():
    assert create_protocol("gallery-side", ks=(1, 3)).key("distractors") == "gallery-side-v1/distractors/k1,3"
    assert create_protocol("linkability").key("distractors") == "linkability-v1/distractors"
    assert create_protocol("identification").key("distractors").startswith("ident-v1/distractors/")


# -- a small real run ----------------------------------------------------------------------------------
PROTOCOLS = ["identification", "gallery-side", "linkability"]
SWEEP = ["", "blur:1", "median:3", "bits:4"]


@pytest.fixture(scope="module")
def rows(tmp_path_factory, lfw):
    """3 people x (10 inference + 5 test) among 60 distractors (as tests/test_runner.py's mini_splits);
    none / noise / opom-convex (white-box, mobileface) x 4 transform chains x the 3 scorers."""
    folder = write_mini_splits(tmp_path_factory.mktemp("splits"), lfw)
    cfg = RunConfig(methods=["none", "noise", "opom-convex"], sources=["mobileface"], targets=["mobileface"],
                    split="commons", split_folder=str(folder), transforms=SWEEP, protocols=PROTOCOLS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SPLITS", str(folder))
        return pd.DataFrame(Runner(cfg, ResultStore(tmp_path_factory.mktemp("store")), progress=False).run())


def scorer(df, version):
    return df[df.protocol.str.startswith(version + "/")]


def test_real_run_no_mask_is_found_and_linked_a_white_box_mask_hides_the_enrolment(rows):
    plain = rows[rows.transforms == ""]
    gal = scorer(plain, "gallery-side-v1").set_index("method")
    link = scorer(plain, "linkability-v1").set_index("method")
    ident = scorer(plain, "ident-v1").set_index("method")
    none, opom = gal.loc["none"], gal.loc["opom-convex"]
    # no mask: the enrolled photos are the clean ones, protection is exactly 1 - clean accuracy, and low
    for k in (1, 5):
        assert none[f"gallery_top{k}_protection"] == pytest.approx(1 - none[f"gallery_top{k}_clean_accuracy"])
        assert none[f"gallery_linear_top{k}_protection"] == pytest.approx(1 - none[f"gallery_linear_top{k}_clean_accuracy"])
    assert none.gallery_top1_protection <= 0.2 and none.gallery_linear_top1_protection <= 0.2
    assert none.gallery_top5_protection <= none.gallery_top1_protection
    assert none.gallery_probes == 15 and none.gallery_distractor_classes == 30  # 60 photos of 30 people
    assert sum(h["1"] for h in none.gallery_per_identity_hits.values()) == round(15 * (1 - none.gallery_top1_protection))
    # a white-box OPOM mask: clean probes no longer find the protected enrolment photos (nor their centre)
    assert opom.gallery_top1_protection >= none.gallery_top1_protection + 0.6
    assert opom.gallery_linear_top1_protection >= none.gallery_linear_top1_protection + 0.6
    assert opom.gallery_top1_clean_accuracy == none.gallery_top1_clean_accuracy, "the baseline is the target's"
    assert ident.loc["opom-convex"].top1_protection >= 0.9
    # each scorer writes its own fields only: gallery-side and linkability rows carry no top1_protection
    for version in ("gallery-side-v1", "linkability-v1"):
        assert "top1_protection" not in scorer(rows, version).dropna(axis=1, how="all").columns
    assert "gallery_top1_protection" not in scorer(rows, "ident-v1").dropna(axis=1, how="all").columns
    # linkability: clean photos link to each other; on `none` the numbers are the clean baseline
    assert link.loc["none"].link_top1_rate == pytest.approx(link.loc["none"].link_top1_clean_rate)
    assert link.loc["none"].link_top1_rate >= 0.8 and link.loc["none"].link_auc >= 0.9
    assert link.loc["none"].link_auc == pytest.approx(link.loc["none"].link_auc_clean) and link.loc["none"].link_auc_distractors >= 0.9
    assert link.loc["none"].link_top1_protection == pytest.approx(1 - link.loc["none"].link_top1_rate)
    assert sum(link.loc["none"].link_per_identity_photos.values()) == link.loc["none"].link_photos == 15
    assert link.loc["none"].link_genuine_pairs == 3 * 5 * 4 // 2
    # ... and a person-specific mask does not unlink them: one shared mask makes a person's protected
    # photos alike (measured: AUC 1.0, every photo's nearest neighbour is the same person)
    assert link.loc["opom-convex"].link_auc >= link.loc["none"].link_auc
    assert link.loc["opom-convex"].link_top1_protection <= 0.1


def test_real_transform_sweep_gives_distinct_cells_and_the_robustness_table_reads_them(rows):
    from bench.reporting.tables import protection_table, robustness_table

    assert len(rows) == 3 * len(SWEEP) * len(PROTOCOLS) and rows.cell.nunique() == len(rows)
    assert set(rows.transforms) == set(SWEEP)
    # gallery-side is saturated for noise on this small slice (every probe found): the OPOM mask shows it
    for version, method, cols in [("ident-v1", "noise", ["top1_protection", "top5_protection", "tpr_at_far"]),
                                  ("gallery-side-v1", "opom-convex", ["gallery_top1_protection", "gallery_linear_top1_protection"]),
                                  ("linkability-v1", "noise", ["link_auc", "link_auc_distractors", "link_top1_rate"])]:
        by = scorer(rows[rows.method == method], version).set_index("transforms")
        assert len({tuple(by.loc[t, cols]) for t in SWEEP}) >= 3, f"{version}: transforms barely change {cols}"
        assert (by.ssim == by.loc[""].ssim).all(), "image quality is measured on the saved photo"
    opom = scorer(rows[rows.method == "opom-convex"], "gallery-side-v1").set_index("transforms")
    assert opom.loc["blur:1"].gallery_top1_protection < opom.loc[""].gallery_top1_protection, "blur weakens the mask"
    # the report: Tables 1-2 keep the paper's cells; the robustness table has a column per scorer and transform
    table, _ = protection_table(rows, "commons")
    assert len(table) == 1 + 3
    robust = robustness_table(rows, "commons")
    assert {"probe-side", "gallery-side", "linkability", "gallery-side, blur:1", "linkability, bits:4"} <= set(robust.columns)
    plain = scorer(rows[(rows.method == "none") & (rows.transforms == "")], "gallery-side-v1").iloc[0]
    assert robust.loc[("-", "none"), "gallery-side"] == pytest.approx(100 * plain.gallery_top1_protection)
