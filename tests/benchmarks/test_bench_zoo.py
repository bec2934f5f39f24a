"""Per-image forward (and forward+backward for white-box models) time of every built-in recognizer.

    .venv/bin/pytest tests/benchmarks/test_bench_zoo.py --benchmark-enable --benchmark-columns=min,median,mean

Batch of 16 real aligned LFW faces; divide the reported time by 16 for seconds per image (the README's
zoo table lists per-image figures).
"""

from __future__ import annotations

import pytest
import torch

from bench.zoo import create_recognizer, to_canonical

BATCH = 16
MODELS = ["dlib-resnet", "dlib-native", "hse-faceres", "mobileface"]


@pytest.fixture(scope="module")
def batch(lfw_slice_faces):
    return to_canonical(torch.from_numpy(lfw_slice_faces[0][:BATCH]))


@pytest.mark.parametrize("name", MODELS)
def test_forward(benchmark, name, batch):
    model = create_recognizer(name)
    benchmark.group = "forward (batch of 16)"

    def run():
        with torch.no_grad():
            return model(batch)

    assert benchmark(run).shape[0] == BATCH


@pytest.mark.parametrize("name", [m for m in MODELS if m != "dlib-native"])
def test_forward_backward(benchmark, name, batch):
    model = create_recognizer(name)
    benchmark.group = "forward+backward (batch of 16)"

    def run():
        x = batch.clone().requires_grad_(True)
        model(x).sum().backward()
        return x.grad

    assert torch.isfinite(benchmark(run)).all()
