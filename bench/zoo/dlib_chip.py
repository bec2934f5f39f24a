"""The fixed warp from the canonical ArcFace 112x112 crop to dlib's 150x150 face chip.

dlib's face descriptor expects the chip ``dlib.get_face_chip(img, shape5, size=150, padding=0.25)``
cuts out, placed by its 5-point model (eye corners, nose base). The canonical crop is placed by eye
centres, nose tip and mouth corners, and the two frames differ by a nearly constant similarity: the
chip sits inside the 112 crop, larger and shifted up. Resizing the 112 crop to 150 instead costs the
model about 12 points of LFW accuracy, so every dlib model in the zoo goes through this warp.

Two versions that agree to within interpolation rounding:

* :func:`canonical_to_chip`: torch, differentiable (``grid_sample``, bilinear, border padding), for
  the white-box port;
* :func:`canonical_to_chip_uint8`: numpy/cv2 (``warpAffine``, bilinear, ``BORDER_REPLICATE``) on
  uint8 images, for dlib-bin, which only takes uint8 photos.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ShapeError
from .base import CANONICAL_SIZE

CHIP_SIZE = 150

# 112-crop pixel (x, y, 1) -> chip pixel (x, y); pixel centres at integer coordinates (cv2's and
# dlib's convention). Fitted by tools/derive_dlib_chip_warp.py (--n 400 --seed 0 --landmarks mtcnn)
# on 400 LFW images (398 with a dlib HOG detection): per image, the canonical crop placed by MTCNN's
# five landmarks (as bench.data.align does) and the true chip from dlib's 5-point model via
# dlib.get_face_chip_details(size=150, padding=0.25); least-squares chip-pixel error over the chip,
# worst 5% of images dropped. Result: scale 1.53312, rotation +0.660 deg, shift (-9.807, -34.967);
# a single face's own chip differs from it by 3.8 chip px RMS (median; p90 6.7).
# Measured LFW 10-fold accuracy of dlib-resnet through our MTCNN alignment with this warp: 98.83%;
# with the warp fitted on dlib 68-point crops (scale 1.509, shift (-10.18, -33.73)): 98.55%; with
# ../shared/DATA.md's rounded (1.48, -9, -31): 98.60%. Analytic, from dlib's mean face shape:
# scale 1.44947, rotation +0.318 deg, shift (-7.116, -30.006).
CHIP_FROM_CANONICAL = np.array(
    [[1.5331246100e+00, -1.7668730050e-02, -9.8072435545e+00],
     [1.7668730050e-02, 1.5331246100e+00, -3.4967473078e+01]],
    dtype=np.float64,
)


def _homogeneous(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _pixel_to_normalised(size: int) -> np.ndarray:
    # grid_sample with align_corners=False: pixel centre i sits at (2i + 1) / size - 1
    return np.array([[2.0 / size, 0, 1.0 / size - 1], [0, 2.0 / size, 1.0 / size - 1], [0, 0, 1]])


@lru_cache(maxsize=1)
def _theta() -> np.ndarray:
    """affine_grid's theta: normalised chip coordinates -> normalised canonical coordinates."""
    chip_to_canonical = np.linalg.inv(_homogeneous(CHIP_FROM_CANONICAL))
    theta = _pixel_to_normalised(CANONICAL_SIZE) @ chip_to_canonical @ np.linalg.inv(_pixel_to_normalised(CHIP_SIZE))
    return theta[:2]


def _check(faces: torch.Tensor) -> None:
    if faces.dim() != 4 or faces.shape[1:] != (3, CANONICAL_SIZE, CANONICAL_SIZE):
        raise ShapeError(f"expected N x 3 x {CANONICAL_SIZE} x {CANONICAL_SIZE} canonical faces, got {tuple(faces.shape)}")


def canonical_to_chip(faces: torch.Tensor) -> torch.Tensor:
    """Canonical faces (float N x 3 x 112 x 112) -> dlib chips (N x 3 x 150 x 150), differentiably."""
    _check(faces)
    theta = torch.as_tensor(_theta(), dtype=faces.dtype, device=faces.device)
    grid = F.affine_grid(theta[None], [1, 3, CHIP_SIZE, CHIP_SIZE], align_corners=False)
    grid = grid.expand(faces.shape[0], -1, -1, -1)
    return F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_uint8_images(faces: torch.Tensor) -> np.ndarray:
    """Float N x 3 x H x W in [0, 1] -> uint8 N x H x W x 3, rounded as a saved photo would be."""
    return faces.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def canonical_to_chip_uint8(faces: np.ndarray) -> np.ndarray:
    """uint8 canonical crops (112 x 112 x 3, or N of them) -> uint8 dlib chips (150 x 150 x 3)."""
    faces = np.asarray(faces)
    if faces.dtype != np.uint8 or faces.shape[-3:] != (CANONICAL_SIZE, CANONICAL_SIZE, 3):
        raise ShapeError(f"expected uint8 ... x {CANONICAL_SIZE} x {CANONICAL_SIZE} x 3 crops, got {faces.dtype} {faces.shape}")
    if faces.ndim == 3:
        return _warp_one(faces)
    return np.stack([_warp_one(f) for f in faces]) if len(faces) else np.empty((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


def _warp_one(face: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(
        np.ascontiguousarray(face), CHIP_FROM_CANONICAL, (CHIP_SIZE, CHIP_SIZE),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )


__all__ = ["CHIP_SIZE", "CHIP_FROM_CANONICAL", "canonical_to_chip", "canonical_to_chip_uint8", "to_uint8_images"]


def chip_warp_summary() -> str:
    m = CHIP_FROM_CANONICAL
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    return f"scale {scale:.4f}, rotation {angle:+.3f} deg, shift ({m[0, 2]:.3f}, {m[1, 2]:.3f})"
