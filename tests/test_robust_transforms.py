"""The differentiable transform family (methods/robust_transforms.py): every member is differentiable in the
image (gradcheck on a small double input), seeded (the same seed draws the same members and parameters,
another seed others), the identity at zero strength, and at its range's end it reproduces the benchmark's
own attacker transform on real LFW faces (bench/stages/transforms.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data.splits import load_split
from bench.errors import BenchError
from bench.stages.transforms import parse_chain
from methods.robust_transforms import (MAX_ANGLE_DEG, MAX_SCALE, MAX_SHIFT_PX, MEMBERS, Draw, TransformFamily,
                                       mean_offset_px)


@pytest.fixture(scope="module")
def faces(aligned):
    return aligned(load_split("celebrities").files("Colin_Powell", "inference")[:4])


def as_tensor(faces_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(faces_uint8).permute(0, 3, 1, 2).float().div(255)


def fixed_draw(n: int, u0: float) -> Draw:
    """Every photo through member 0 with its first uniform at ``u0`` (the others mid-range)."""
    u = torch.full((n, 4), 0.5, dtype=torch.float64)
    u[:, 0] = u0
    return Draw(torch.zeros(n, dtype=torch.long), u)


@pytest.mark.parametrize("member", [m for m in MEMBERS if m != "identity"])
def test_each_member_is_differentiable_in_the_image(member):
    family = TransformFamily((member,))
    x = (torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1)
    draw = fixed_draw(2, 0.9)  # near the range end, where every member changes the image
    assert torch.autograd.gradcheck(lambda a: family(a, draw), (x.requires_grad_(True),), eps=1e-6, atol=1e-5,
                                    fast_mode=True)
    y = family(x, draw)
    assert not torch.allclose(y, x, atol=1e-3), f"{member} at full strength changed nothing"


@pytest.mark.parametrize("member", list(MEMBERS))
def test_zero_strength_is_the_identity(member, faces):
    x = as_tensor(faces)
    draw = TransformFamily((member,)).draw(len(x), torch.Generator().manual_seed(0))
    assert torch.equal(TransformFamily((member,), strength=0.0)(x, draw), x)


def test_draws_are_seeded_and_each_photo_gets_its_own(faces):
    family = TransformFamily()
    x = as_tensor(faces).repeat(4, 1, 1, 1)  # 16 photos: every member drawn at least once is likely, not needed
    a = family(x, family.draw(len(x), torch.Generator().manual_seed(7)))
    b = family(x, family.draw(len(x), torch.Generator().manual_seed(7)))
    c = family(x, family.draw(len(x), torch.Generator().manual_seed(8)))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    draw = family.draw(64, torch.Generator().manual_seed(7))
    assert len(set(draw.member.tolist())) == len(MEMBERS)  # a batch mixes members
    one = TransformFamily(("shift",))
    same = as_tensor(faces)[:1].repeat(3, 1, 1, 1)
    out = one(same, one.draw(3, torch.Generator().manual_seed(0)))
    assert not torch.equal(out[0], out[1]), "each photo of a batch draws its own shift"


def test_members_at_the_range_end_reproduce_the_benchmarks_attackers(faces):
    """blur sigma 1, down-up resize to 0.5 and JPEG 75 against the benchmark's (OpenCV / PIL) transforms on real
    faces: measured MAE (0-255) 0.25, 0.45 and 1.07 where the transforms themselves change the face by 2.9, 3.8
    and 2.2. The JPEG is an approximation (kornia's tables and rounding), the others are the same filters."""
    x = as_tensor(faces)
    cases = [("blur", 1.0, "blur:1", 0.5), ("resize", 1.0, "resize:0.5", 0.8), ("jpeg", 20 / 35, "jpeg:75", 1.5)]
    for member, u0, spec, limit in cases:
        ours = TransformFamily((member,))(x, fixed_draw(len(x), u0)).permute(0, 2, 3, 1).numpy() * 255
        theirs = parse_chain(spec)(faces).astype(np.float64)
        mae, change = np.abs(ours - theirs).mean(), np.abs(theirs - faces).mean()
        print(f"{member} vs {spec}: MAE {mae:.2f}, the transform itself {change:.2f}")
        assert mae < limit and mae < change / 2, (spec, mae, change)


def test_geometric_ranges_match_the_measured_realignment_jitter():
    """The attacker's re-alignment moves the mask 0.9-1.1 crop px on average (tests/test_pipeline.py). Each of
    shift, rotation and scale moves the crop ~1.5 px at its extreme; a random similarity draw ~1 px."""
    for extreme in (mean_offset_px(MAX_ANGLE_DEG, 1, (0, 0)), mean_offset_px(0, 1 + MAX_SCALE, (0, 0)),
                    mean_offset_px(0, 1, (MAX_SHIFT_PX, 0))):
        assert 1.3 < extreme < 1.7
    u = torch.rand(200, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    typical = np.mean([mean_offset_px(a * MAX_ANGLE_DEG, 1 + s * MAX_SCALE, (tx * MAX_SHIFT_PX, ty * MAX_SHIFT_PX))
                       for a, s, tx, ty in u.tolist()])
    assert 0.8 < typical < 1.6, typical


def test_the_family_follows_the_device_and_refuses_bad_settings(faces):
    x = as_tensor(faces)
    family = TransformFamily()
    out = family(x.double(), family.draw(len(x), torch.Generator().manual_seed(0)))
    assert out.dtype == torch.float64 and out.device == x.device
    if torch.cuda.is_available():
        cuda = family(x.cuda(), family.draw(len(x), torch.Generator().manual_seed(0)))
        torch.testing.assert_close(cuda.cpu(), family(x, family.draw(len(x), torch.Generator().manual_seed(0))),
                                   atol=2e-3, rtol=0)
    with pytest.raises(BenchError, match="unknown member.*members: identity, shift"):
        TransformFamily(("rotate",))
    with pytest.raises(BenchError, match="strength must be in"):
        TransformFamily(strength=1.5)
    with pytest.raises(BenchError, match="3 draws for a batch"):
        family(x, family.draw(3, torch.Generator()))
