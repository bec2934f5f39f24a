"""``craft_mask`` is the one entry point of every registered method: called the same way for each, on
real LFW faces and a real surrogate, it returns a finite mask of the method's shape, and the earlier
name ``craft`` gives the same mask."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.data.splits import load_split
from bench.zoo import create_recognizer, to_canonical
from methods import METHODS, create_method

PERSON = "Colin_Powell"
SURROGATE = "mobileface"  # the fastest white-box model, and every shipped generator has a checkpoint for it
N_FACES = 3


def cheap(name: str) -> dict:
    """The fewest optimisation rounds a method accepts: this test is about the interface, not strength."""
    fields = {f.name for f in dataclasses.fields(METHODS.entry(name).factory.Params)}
    return {"steps": 1} if "steps" in fields else {}


@pytest.fixture(scope="module")
def faces(aligned):
    split = load_split("celebrities")
    return to_canonical(aligned(split.files(PERSON, "inference")[:N_FACES]))


@pytest.fixture(scope="module")
def surrogate():
    return create_recognizer(SURROGATE)


@pytest.mark.parametrize("name", METHODS.names())
def test_craft_mask_works_for_every_registered_method(name, faces, surrogate):
    method = create_method(name, **cheap(name))
    surrogates = [surrogate] if method.needs_surrogate else []
    mask = method.craft_mask(faces, surrogates, seed=3)
    expected = tuple(faces.shape) if method.kind == "image" else (3, *faces.shape[2:])
    assert tuple(mask.shape) == expected
    assert torch.isfinite(mask).all()
    if name != "none":
        assert mask.abs().sum() > 0, f"{name} returned an all-zero mask"
    assert torch.equal(method.craft(faces, surrogates, seed=3), mask), "craft is craft_mask under its earlier name"
