"""bench.training.select (`bench train select`): the checkpoint-selection score on the identities training held back."""

from __future__ import annotations

import os

import numpy as np

from bench.data.splits import load_split
from bench.features import embed_uint8
from bench.training.data import TrainingFaces, held_back_identities
from bench.training.select import load_faces, score
from bench.zoo import create_recognizer
from methods.checkpoints import SHIPPED


def test_held_back_identities_are_the_ones_training_keeps_out():
    assert held_back_identities() == TrainingFaces.load(training=False, progress=False).val_identities


def test_heldout_score_ranks_the_shipped_advcloak_far_above_noise_and_restores_the_environment():
    surrogate = create_recognizer("mobileface")
    held_ids = held_back_identities()
    held = load_faces("train", held_ids, 20)  # a slice: 20 photos of each held-back person
    others = [i for i in load_split("train").identities() if i not in held_ids][:10]
    distractors = embed_uint8(surrogate, np.concatenate(list(load_faces("train", others, 5).values())))
    before = os.environ.get("BENCH_GENERATORS")
    advcloak = score("advcloak", SHIPPED, surrogate, held, distractors, 1, 0)
    noise = score("noise", SHIPPED, surrogate, held, distractors, 1, 0)
    assert os.environ.get("BENCH_GENERATORS") == before
    assert advcloak["probes"] == noise["probes"] == 4 * 10 * 9  # 10 protected photos each, 9 galleries each
    assert advcloak["cos"] < noise["cos"] - 0.3  # measured: 0.35 vs 0.98
    assert advcloak["top1"] > noise["top1"] + 0.3  # measured: 0.62 vs 0.07
