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


def unshipped(name: str) -> bool:
    """A trained method whose generator for SURROGATE is not shipped yet (registered before its training run)."""
    from methods.generative import GeneratorMethod

    cls = METHODS.entry(name).factory
    return issubclass(cls, GeneratorMethod) and not cls.checkpoint_for(SURROGATE).exists()


@pytest.mark.parametrize("name", METHODS.names())
def test_craft_mask_works_for_every_registered_method(name, faces, surrogate):
    method = create_method(name, **cheap(name))
    surrogates = [surrogate] if method.needs_surrogate else []
    if unshipped(name):  # the one clear error that says how to make it, and nothing else
        from bench.errors import WeightFileError

        with pytest.raises(WeightFileError, match=f"bench train {name} --source {SURROGATE}"):
            method.craft_mask(faces, surrogates, seed=3)
        return
    mask = method.craft_mask(faces, surrogates, seed=3)
    expected = tuple(faces.shape) if method.kind == "image" else (3, *faces.shape[2:])
    assert tuple(mask.shape) == expected
    assert torch.isfinite(mask).all()
    if name != "none":
        assert mask.abs().sum() > 0, f"{name} returned an all-zero mask"
    assert torch.equal(method.craft(faces, surrogates, seed=3), mask), "craft is craft_mask under its earlier name"


PEOPLE = ["Colin_Powell", "George_W_Bush", "Tony_Blair"]


@pytest.fixture(scope="module")
def people(aligned):
    split = load_split("celebrities")
    return [to_canonical(aligned(split.files(p, "inference")[:4])) for p in PEOPLE]


@pytest.mark.parametrize("name", ["fi-uap", "opom-affine", "opom-convex", "opom-convex-eot"])
def test_batched_crafting_gives_each_persons_own_mask(name, people, surrogate):
    """``craft_masks`` crafts three real people in one forward/backward per step. The loss is a sum of the
    people's losses, so each mask should be its one-at-a-time mask; larger conv batches round differently
    and a signed step flips where a pixel's gradient is ~0, so the masks agree closely, not bit for bit.
    A batched loss that mixed people (anchors of the wrong person, a mean over everyone) fails here: the
    masks would differ as much as two different people's masks do."""
    method = create_method(name, steps=4)
    seeds = [11, 12, 13]
    alone = torch.stack([method.craft_mask(f, [surrogate], seed=s) for f, s in zip(people, seeds)])
    together = torch.stack(method.craft_masks(people, [surrogate], seeds=seeds))
    assert together.shape == alone.shape == (3, 3, 112, 112)
    diff = (together - alone).abs()
    cos = torch.nn.functional.cosine_similarity(together.flatten(1), alone.flatten(1))
    others = torch.nn.functional.cosine_similarity(together.flatten(1), alone.roll(1, 0).flatten(1))
    assert diff.mean() * 255 < 0.5 and (cos > 0.9).all(), (diff.mean() * 255, cos)
    assert (others < cos - 0.3).all()  # each batched mask is its own person's, not a neighbour's


def test_methods_without_a_batched_path_craft_one_person_at_a_time(people, surrogate):
    method = create_method("advcloak-convex")
    seeds = [1, 2, 3]
    together = method.craft_masks(people, [surrogate], seeds=seeds)
    for f, s, m in zip(people, seeds, together):
        assert torch.equal(method.craft_mask(f, [surrogate], seed=s), m)
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="3 people but 2 seeds"):
        method.craft_masks(people, [surrogate], seeds=[1, 2])
