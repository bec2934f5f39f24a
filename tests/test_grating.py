"""The "grating" number (bench.metrics.high_frequency_share): known answers on synthetic masks, and the measured
split between the shipped generators' masks on real LFW faces (mobileface's row-by-row grating vs dlib-resnet's
smooth masks)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.data.splits import load_split
from bench.metrics import high_frequency_share
from bench.zoo import create_recognizer, to_canonical
from methods import create_method


def test_known_answers():
    rows = np.arange(112)[:, None] * np.ones((1, 112))
    stripes = np.where(rows % 2 == 0, 1.0, -1.0)  # a horizontal stripe alternating row by row: fy = Nyquist
    assert high_frequency_share(np.stack([stripes] * 3)) == pytest.approx(1.0, abs=1e-12)
    assert high_frequency_share(stripes) == pytest.approx(1.0, abs=1e-12)  # H x W as well
    yy, xx = np.mgrid[:112, :112] - 55.5
    blob = np.exp(-(xx**2 + yy**2) / (2 * 8.0**2))
    assert high_frequency_share(np.stack([blob, -blob, 2 * blob])) < 1e-6
    # whole cycles across the crop, just above / below 0.25 cycles per pixel: all or nothing
    assert high_frequency_share(np.cos(2 * np.pi * 30 / 112 * rows)) == pytest.approx(1.0, abs=1e-9)  # 0.268
    assert high_frequency_share(np.cos(2 * np.pi * 26 / 112 * rows.T)) == pytest.approx(0.0, abs=1e-9)  # 0.232
    # white noise spreads its energy evenly: the share is the area outside the radius-0.25 disc, 1 - pi/16
    noise = np.random.default_rng(0).standard_normal((3, 112, 112))
    assert high_frequency_share(noise) == pytest.approx(1 - math.pi / 16, abs=0.01)
    assert math.isnan(high_frequency_share(np.zeros((3, 8, 8))))
    with pytest.raises(ValueError, match="C x H x W or H x W"):
        high_frequency_share(np.zeros(8))


@pytest.mark.parametrize("source, low, high", [("mobileface", 0.8, 1.0), ("dlib-resnet", 0.0, 0.1)])
def test_shipped_advcloak_convex_masks_on_real_faces(source, low, high, aligned):
    """Measured on 4 LFW celebrities (mean share): advcloak-convex from mobileface 0.87 (more than white noise's
    0.80: a grating), from dlib-resnet 0.02, from hse-faceres 0.06 (tools/grating.py)."""
    faces = to_canonical(aligned(load_split("celebrities").files("Colin_Powell", "inference")))
    mask = create_method("advcloak-convex").craft_mask(faces, [create_recognizer(source)])
    share = high_frequency_share(mask.numpy())
    assert low < share < high, share
