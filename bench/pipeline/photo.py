"""Protecting a full photo with a canonical-crop mask, and what an attacker gets back from it.

The aligner maps the photo onto the 112x112 ArcFace crop with a similarity ``M`` (2x3, photo pixels ->
crop pixels, fitted to the five landmarks). A mask crafted in the crop is put back with the inverse
of ``M`` (``cv2.warpAffine``, bilinear, border 0): only the crop's footprint in the photo (a rotated
square of side ``112 / s`` photo pixels, ``s`` the scale of ``M``) changes; every other pixel keeps its
exact value. The sum is clipped and rounded to uint8, as a saved photo is.

**Budget.** The L2 budget (1,200 on 0-255) is defined on the 112x112 crop. Warped back, each crop
pixel covers ``1 / s**2`` photo pixels at the same amplitude, so the full photo's L2 becomes about
``budget / s`` (``info["l2_photo_expected"]``; ``l2_photo`` is what interpolation, rounding and clipping
really left): larger on a high-resolution photo, the same per-pixel strength. That figure holds for a
smooth mask; bilinear interpolation loses the part of a mask's energy near the pixel frequency (measured
on LFW's 250x250 photos, where ``s`` is 0.77-0.91, i.e. the face is slightly upsampled: a smooth mask
keeps 92-96% of ``budget / s``, an advcloak-convex/mobileface mask, ~80% of whose energy is a stripe
alternating row by row (the dlib-resnet generator's masks have almost none), keeps ~67%: 956 of 1,425). Re-aligned back to 112x112 at the same geometry, the
attacker's crop holds L2 ~1,100 of a smooth mask's 1,200 but ~730 of that advcloak mask's.

Several faces: :func:`locate_face` finds every face with the aligner's first detector that finds any.
Faces other than the one the aligner would take (the one nearest the centre) count when they are
confident (score >= ``OTHER_FACE_SCORE``) and not tiny (box side >= ``OTHER_FACE_RELATIVE_SIZE`` of
the main face's); ``multi_face="refuse"`` then refuses the photo, ``"main"`` protects the main face only
(the others stay unprotected, and ``info`` says how many).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
import torch

from ..budget import PIXEL_SCALE, l2_255, scale_to_budget
from ..data.align import ARCFACE_TEMPLATE, CANONICAL, Aligner, Face, nearest_to_centre, similarity_transform
from ..data.images import BadImage
from ..metrics import psnr, ssim
from .io import read_photo

OTHER_FACE_SCORE = 0.95
OTHER_FACE_RELATIVE_SIZE = 0.5
MULTI_FACE_POLICIES = ("refuse", "main")


@dataclass
class FaceLocation:
    """The face a photo is protected at, and the geometry that maps it to the canonical crop."""

    landmarks: np.ndarray  # 5 x 2, photo pixels
    box: np.ndarray  # x1, y1, x2, y2
    score: float
    detector: str
    matrix: np.ndarray  # 2 x 3, photo -> crop
    crop: np.ndarray | None  # 112 x 112 x 3 uint8, what the aligner gives (None: not cut)
    others: list[Face] = field(default_factory=list)  # further confident faces (unprotected with "main")

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel (the similarity's scale)."""
        return transform_scale(self.matrix)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray, detector: str = "", crop: np.ndarray | None = None) -> "FaceLocation":
        """A face known by its five landmarks alone (e.g. from the aligned-face cache); box and score unknown (NaN)."""
        pts = np.asarray(landmarks, np.float64)
        return cls(pts, np.full(4, np.nan), float("nan"), detector, alignment_matrix(pts), crop)


def transform_scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The similarity (2x3) the aligner uses: photo landmarks -> ArcFace template."""
    return similarity_transform(landmarks, ARCFACE_TEMPLATE)


@lru_cache(maxsize=1)
def default_aligner() -> Aligner:
    return Aligner()


def detect_all(image: np.ndarray, aligner: Aligner) -> tuple[str, list[Face]]:
    """Every face found by the aligner's first detector that finds any (as ``Aligner.align`` searches)."""
    for det in aligner.detectors:
        faces = det.detect(image)
        if faces:
            return det.name, faces
    return "", []


def significant_others(main: Face, faces: list[Face]) -> list[Face]:
    side = lambda f: float(min(f.box[2] - f.box[0], f.box[3] - f.box[1]))  # noqa: E731
    return [f for f in faces if f is not main and f.score >= OTHER_FACE_SCORE
            and side(f) >= OTHER_FACE_RELATIVE_SIZE * side(main)]


def locate_face(image: np.ndarray, aligner: Aligner | None = None, multi_face: str = "refuse") -> FaceLocation:
    """The face to protect. Raises BadImage("no face") or, with ``multi_face="refuse"``, BadImage("several faces")."""
    if multi_face not in MULTI_FACE_POLICIES:
        raise ValueError(f"multi_face must be one of {MULTI_FACE_POLICIES}, got {multi_face!r}")
    aligner = aligner or default_aligner()
    detector, faces = detect_all(image, aligner)
    if not faces:
        raise BadImage("no face", f"none of {', '.join(d.name for d in aligner.detectors)} found a face")
    main = nearest_to_centre(faces, image.shape)
    others = significant_others(main, faces)
    if others and multi_face == "refuse":
        raise BadImage("several faces", f"{1 + len(others)} faces found ({detector})")
    matrix = alignment_matrix(main.landmarks)
    crop = cv2.warpAffine(image, matrix, (CANONICAL, CANONICAL), flags=cv2.INTER_LINEAR, borderValue=0)
    return FaceLocation(main.landmarks, main.box, main.score, detector, matrix, crop, others)


def _mask_hwc_255(mask) -> np.ndarray:
    """Canonical mask (3 x 112 x 112, [0, 1] units; torch or numpy) -> float32 112 x 112 x 3 in 0-255 units."""
    m = mask.detach().cpu().double().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask, np.float64)
    if m.shape != (3, CANONICAL, CANONICAL):
        raise ValueError(f"mask must be 3 x {CANONICAL} x {CANONICAL}, got {m.shape}")
    return np.ascontiguousarray((m * PIXEL_SCALE).transpose(1, 2, 0), dtype=np.float32)


def footprint_box(matrix: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1; x1/y1 exclusive) of the crop's footprint in the photo, clipped to it."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    # bilinear sampling with a zero border reaches photo pixels whose crop coordinates lie in (-1, 112):
    # one crop pixel beyond the pixel centres 0..111 on every side
    lo, hi = -1.0, float(CANONICAL)
    corners = np.array([[lo, lo, 1], [hi, lo, 1], [lo, hi, 1], [hi, hi, 1]], np.float64)
    pts = corners @ inv.T
    h, w = shape[:2]
    x0, y0 = (int(max(0, np.floor(pts[:, i].min()) - 1)) for i in (0, 1))
    x1, y1 = int(min(w, np.ceil(pts[:, 0].max()) + 2)), int(min(h, np.ceil(pts[:, 1].max()) + 2))
    return x0, y0, max(x0, x1), max(y0, y1)


def inverse_warp_region(mask, matrix: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The mask warped back into the photo, computed only over the footprint's bounding box:
    (float32 h x w x 3 in 0-255 units, (x0, y0, x1, y1))."""
    x0, y0, x1, y1 = footprint_box(matrix, shape)
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    inv[:, 2] -= (x0, y0)  # output pixel (u, v) is photo pixel (x0 + u, y0 + v)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((y1 - y0, x1 - x0, 3), np.float32), (x0, y0, x1, y1)
    region = cv2.warpAffine(_mask_hwc_255(mask), inv, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return region.reshape(y1 - y0, x1 - x0, 3), (x0, y0, x1, y1)


def inverse_warp(mask, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The canonical mask in full-photo coordinates: float32 H x W x 3, 0-255 units, 0 outside the face crop."""
    full = np.zeros((shape[0], shape[1], 3), np.float32)
    region, (x0, y0, x1, y1) = inverse_warp_region(mask, matrix, shape)
    full[y0:y1, x0:x1] = region
    return full


def face_footprint(matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean H x W: the photo pixels the inverse warp can change (the crop square's image, bilinear edge included)."""
    ones = torch.ones(3, CANONICAL, CANONICAL, dtype=torch.float64) / PIXEL_SCALE
    return inverse_warp(ones, matrix, shape)[..., 0] > 0


def protect_photo(image: np.ndarray, mask, budget: float | None, aligner: Aligner | None = None, *,
                  location: FaceLocation | None = None, multi_face: str = "refuse") -> tuple[np.ndarray, dict]:
    """Add a canonical-crop mask to a full photo at its face. Returns (protected uint8 H x W x 3, info).

    ``mask``: 3 x 112 x 112 in [0, 1] units, rescaled to L2 ``budget`` (0-255, on the crop) unless
    ``budget`` is None. ``location``: a face found earlier by :func:`locate_face` (else it is found now).
    ``info``: the face (detector, landmarks, scale), the changed region, the nominal crop L2 and what
    the full photo's L2 became (expected ``budget / scale``, and realised), L-inf, and the full-photo
    SSIM/PSNR of the protected pixels (before any saving; see :func:`photo_quality` for the saved file).
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.shape}")
    location = location or locate_face(image, aligner, multi_face)
    mask = torch.as_tensor(mask).double()
    scaled = scale_to_budget(mask, budget) if budget is not None else mask
    region, (x0, y0, x1, y1) = inverse_warp_region(scaled, location.matrix, image.shape)
    out = image.copy()
    patch = image[y0:y1, x0:x1].astype(np.float32) + region
    out[y0:y1, x0:x1] = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    diff = out.astype(np.float64) - image.astype(np.float64)
    l2_crop = float(l2_255(scaled))
    info = {
        "detector": location.detector,
        "face_score": round(location.score, 4),
        "landmarks": np.round(location.landmarks, 2).tolist(),
        "other_faces_unprotected": len(location.others),
        "scale": round(location.scale, 5),
        "region": [x0, y0, x1, y1],
        "l2_crop": l2_crop,
        "l2_photo_expected": l2_crop / location.scale if location.scale > 0 else float("inf"),
        "l2_photo": float(np.sqrt((diff ** 2).sum())),
        "linf": float(np.abs(diff).max()) if diff.size else 0.0,
        "changed_pixels": int((diff != 0).any(axis=2).sum()),
        **photo_quality(image, out, (x0, y0, x1, y1)),
    }
    return out, info


def photo_quality(clean: np.ndarray, protected: np.ndarray, region: tuple[int, int, int, int] | None = None) -> dict:
    """Full-photo SSIM (Wang et al., Gaussian 11x11, as bench.metrics) and PSNR; with ``region`` also the
    SSIM of the face region alone (the full-photo figure is diluted by every unchanged pixel)."""
    out = {"ssim_photo": float(ssim(clean[None], protected[None])[0]), "psnr_photo": float(psnr(clean[None], protected[None])[0])}
    if region is not None:
        x0, y0, x1, y1 = region
        if min(x1 - x0, y1 - y0) >= 11:
            out["ssim_face"] = float(ssim(clean[None, y0:y1, x0:x1], protected[None, y0:y1, x0:x1])[0])
    return out


def attacker_location(photo, aligner: Aligner | None = None) -> FaceLocation | None:
    """The attacker's view of a photo (bytes as published, or pixels): re-detected and re-aligned by our
    aligner exactly as ``Aligner.align`` does (first detector that finds a face, the face nearest the
    centre; other faces ignored); None when no face is found or the bytes are not an image."""
    aligner = aligner or default_aligner()
    try:
        pixels = read_photo(bytes(photo)).pixels if isinstance(photo, (bytes, bytearray, memoryview)) else np.asarray(photo, np.uint8)
        return locate_face(np.ascontiguousarray(pixels), aligner, "main")
    except BadImage:
        return None


def attacker_crop(photo, aligner: Aligner | None = None) -> np.ndarray | None:
    """What an attacker gets: the 112 x 112 x 3 uint8 crop of :func:`attacker_location`, or None."""
    loc = attacker_location(photo, aligner)
    return None if loc is None else loc.crop


def crop_to_crop(matrix_from: np.ndarray, matrix_to: np.ndarray) -> np.ndarray:
    """2x3 map from the crop coordinates of ``matrix_to``'s alignment to those of ``matrix_from``'s: where a
    pixel of the attacker's crop (``matrix_to``) lies in the crop the mask was made in (``matrix_from``)."""
    inv = cv2.invertAffineTransform(np.asarray(matrix_to, np.float64))
    a = np.asarray(matrix_from, np.float64)
    return np.hstack([a[:, :2] @ inv[:, :2], (a[:, :2] @ inv[:, 2] + a[:, 2])[:, None]])


def mask_offset(matrix_mask: np.ndarray, matrix_attacker: np.ndarray) -> tuple[float, float]:
    """How far (crop pixels; mean and max over the 112x112 grid) the mask sits from where it was made, in
    the crop an attacker re-aligns with ``matrix_attacker``: the detector's landmark jitter on the
    protected photo, as the mask sees it."""
    a = crop_to_crop(matrix_mask, matrix_attacker)
    grid = np.stack(np.meshgrid(np.arange(CANONICAL), np.arange(CANONICAL)), -1).reshape(-1, 2).astype(np.float64)
    d = np.linalg.norm(grid @ a[:, :2].T + a[:, 2] - grid, axis=1)
    return float(d.mean()), float(d.max())


def mask_in_attacker_crop(mask, matrix_mask: np.ndarray, matrix_attacker: np.ndarray) -> np.ndarray:
    """The canonical mask (0-255 units, float32 112 x 112 x 3) as it should appear in the attacker's crop:
    resampled through the jitter between the two alignments."""
    a = crop_to_crop(matrix_mask, matrix_attacker)
    return cv2.warpAffine(_mask_hwc_255(mask), a, (CANONICAL, CANONICAL), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderValue=0)
