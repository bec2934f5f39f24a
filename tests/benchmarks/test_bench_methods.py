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


@pytest.mark.parametrize("surrogate", recognizer_names(differentiable=True))
@pytest.mark.parametrize("method", ["opom-convex", "fi-uap"])
def test_t1(benchmark, method, surrogate, inference):
    model = create_recognizer(surrogate)
    algo = create_method(method)
    benchmark.group = f"t1 {method} (10 photos)"
    mask = benchmark.pedantic(algo.craft, args=(inference, [model]), kwargs={"seed": 0}, rounds=1, iterations=1)
    assert mask.shape == (3, 112, 112)


@pytest.mark.parametrize("surrogate", ["mobileface", "dlib-resnet"])  # hse-faceres LowKey alone takes ~4 min
@pytest.mark.parametrize("method", ["fim", "lowkey"])
def test_t2(benchmark, method, surrogate, inference):
    """t2 of image-specific methods: one batch of 10 photos; seconds per image = the time / 10."""
    model = create_recognizer(surrogate)
    algo = create_method(method)
    benchmark.group = f"t2 {method} (batch of 10 photos; divide by 10)"
    masks = benchmark.pedantic(algo.craft, args=(inference, [model]), kwargs={"seed": 0}, rounds=1, iterations=1)
    assert masks.shape == inference.shape
