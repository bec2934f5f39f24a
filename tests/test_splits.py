"""Invariants of the committed split files (datasets/splits/), checked on the real files."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from bench.data import open_dataset
from bench.data.splits import PROTOCOLS, SPLIT_NAMES, VGG_LFW_OVERLAP, disjointness, load_split, make_splits
from bench.errors import BenchError
from bench.paths import repo_root


@pytest.fixture(scope="module")
def splits():
    return {name: load_split(name) for name in SPLIT_NAMES}


def test_splits_are_identity_and_file_disjoint(splits):
    assert disjointness(splits) == {name: True for name in SPLIT_NAMES}
    lfw_people = [set(splits[n].identities()) for n in ("celebrities", "commons", "distractors")]
    assert not (lfw_people[0] & lfw_people[1] or lfw_people[0] & lfw_people[2] or lfw_people[1] & lfw_people[2])


@pytest.mark.parametrize("name", ["celebrities", "commons"])
def test_protocol_counts(splits, name):
    lo, hi, n_inf, n_test = PROTOCOLS[name]
    split = splits[name]
    for ident in split.identities():
        inf, test = split.files(ident, "inference"), split.files(ident, "test")
        assert len(inf) == n_inf and len(test) == n_test and not set(inf) & set(test)
        assert all(f.startswith(f"{ident}/") for f in inf + test)
    assert len(split.identities()) == {"celebrities": 62, "commons": 34}[name]


def test_train_split_excludes_reported_lfw_people(splits):
    train = splits["train"]
    assert train.dataset == "vggface2-train"
    assert not set(VGG_LFW_OVERLAP) & set(train.identities())
    assert len(train.identities()) == 60


def test_split_files_exist_in_the_shared_data(splits):
    lfw_files = {r.relpath for r in open_dataset("lfw").scan().records}
    for name in ("celebrities", "commons", "distractors"):
        assert set(splits[name].all_files()) <= lfw_files


def _usable(dataset: str):
    """Every photo minus those the committed failure report lists (failures and grayscale photos)."""
    committed = repo_root() / "reports" / "data" / f"{dataset}-failures.csv"  # not BENCH_REPORTS: the file in git
    with open(committed, newline="") as f:
        excluded = {row["path"] for row in csv.DictReader(f)}
    return [r for r in open_dataset(dataset).scan().records if r.relpath not in excluded]


def test_splits_regenerate_exactly_from_the_failure_reports(splits):
    """Determinism: the seeded generator rebuilds the committed files from the data and the reports."""
    rebuilt = make_splits(_usable("lfw"), _usable("vggface2-train"), "vggface2-train", seed=0)
    for name in SPLIT_NAMES:
        assert rebuilt[name].rows == splits[name].rows, name
    other = make_splits(_usable("lfw"), [], seed=1)
    assert other["celebrities"].identities() == splits["celebrities"].identities()
    assert other["celebrities"].rows != splits["celebrities"].rows  # the seed picks the photos


def test_distractor_gallery_size(splits):
    per_person = Counter(r.identity for r in splits["distractors"].rows)
    assert len(per_person) == 5622 and sum(per_person.values()) == 9600
    assert all(r.role == "gallery" for r in splits["distractors"].rows)


def test_unknown_split_lists_the_known_ones():
    with pytest.raises(BenchError, match="unknown split 'megaface'; known splits: celebrities, commons, distractors, train"):
        load_split("megaface")
