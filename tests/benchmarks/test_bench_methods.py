"""t1 of person-specific methods (seconds to craft one person's mask from 10 inference photos) and t2 of
image-specific ones.

    .venv/bin/pytest tests/benchmarks/test_bench_methods.py --benchmark-enable

Real LFW faces (the first celebrities identity), each differentiable zoo model as the surrogate.
"""

from __future__ import annotations

import pytest
import torch

from bench.data.splits import load_split
from bench.zoo import create_recognizer, recognizer_names, to_canonical
from methods import create_method


@pytest.fixture(scope="module")
def inference(aligned):
    split = load_split("celebrities")
    person = split.identities()[0]
    return to_canonical(torch.from_numpy(aligned(split.files(person, "inference"))))


PERSON_CASES = [(m, s) for m in ("opom-convex", "fi-uap") for s in recognizer_names(differentiable=True)]
GENERATOR_CASES = [(m, s) for m in ("advcloak-convex", "advfaces") for s in ("mobileface", "dlib-resnet")]  # shipped checkpoints
IMAGE_CASES = [(m, s) for m in ("fim", "lowkey") for s in ("mobileface", "dlib-resnet")]  # hse LowKey alone: ~4 min


@pytest.mark.parametrize(("method", "surrogate"), PERSON_CASES + IMAGE_CASES + GENERATOR_CASES)
def test_craft_time(benchmark, method, surrogate, inference):
    """t1: one person's mask from 10 photos; t2: one batch of 10 photos, seconds per image = time / 10."""
    model = create_recognizer(surrogate)
    algo = create_method(method)
    person = algo.kind == "person"
    benchmark.group = f"t1 {method} (10 photos)" if person else f"t2 {method} (batch of 10 photos; divide by 10)"
    rounds = 5 if method in ("advcloak-convex", "advfaces") else 1  # one forward pass: cheap enough to repeat
    mask = benchmark.pedantic(algo.craft, args=(inference, [model]), kwargs={"seed": 0}, rounds=rounds, iterations=1,
                              warmup_rounds=1 if rounds > 1 else 0)
    assert mask.shape == ((3, 112, 112) if person else inference.shape)
