"""Face detection and 5-point alignment to the ArcFace 112x112 template (the canonical mask space).

MTCNN (weights ship in facenet-pytorch) is the primary detector; dlib's HOG detector with its
68-point landmarks is the fallback (its 5-point model marks eye corners, not the eye centres and mouth
corners the template needs). Where several faces are found, the one nearest the image centre wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .images import BadImage

CANONICAL = 112
# insightface's ArcFace template for 112x112 crops: eyes, nose tip, mouth corners (x, y)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
ALIGNER_VERSION = "arcface112-mtcnn-dlib68-v1"  # bump when detection, landmarks or warp change


@dataclass
class Face:
    box: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # 5 x 2, template order
    score: float


@dataclass
class Aligned:
    crop: np.ndarray  # 112 x 112 x 3 uint8
    landmarks: np.ndarray  # 5 x 2 in the source image
    detector: str


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping src points onto dst (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1  # no reflections
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def warp_to_template(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    # constant black border, as insightface's norm_crop: the models were trained on such crops
    return cv2.warpAffine(image, matrix, (CANONICAL, CANONICAL), flags=cv2.INTER_LINEAR, borderValue=0)


def nearest_to_centre(faces: list[Face], shape: tuple[int, ...]) -> Face:
    centre = np.array([shape[1] / 2, shape[0] / 2])
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


class MtcnnDetector:
    """facenet-pytorch's MTCNN. ``device='cuda'`` runs it on a GPU (``bench.gpu_check`` measures how far
    its landmarks move from the CPU's); the cache's crops are made on the CPU, one thread, so that a
    crop is the same on every machine."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu"):
        self.device = device

    @cached_property
    def _net(self):
        import torch
        from facenet_pytorch import MTCNN

        with torch.inference_mode():
            return MTCNN(keep_all=True, device=self.device)

    def detect(self, image: np.ndarray) -> list[Face]:
        import torch

        # One thread, always: with two, the convolutions sum in another order and the landmarks move by
        # ~1e-5 px, which moved 4 of 120 LFW crops by one grey level (and table rates by a pair or two)
        # between runs with different OMP_NUM_THREADS. On these small images one thread is also faster
        # (measured on 40 LFW photos, 2 busy cores: 104-127 ms/img with 1 thread, 272-356 ms with 2).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                boxes, probs, points = self._net.detect(image, landmarks=True)
        finally:
            torch.set_num_threads(threads)
        if boxes is None:
            return []
        return [Face(b.astype(np.float64), p.astype(np.float64), float(s)) for b, s, p in zip(boxes, probs, points)]


class DlibDetector:
    name = "dlib"

    def __init__(self, upsample: int = 1):
        self.upsample = upsample

    @cached_property
    def _models(self):
        import dlib
        import face_recognition_models as frm

        return dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location())

    def detect(self, image: np.ndarray) -> list[Face]:
        detector, predictor = self._models
        rects, scores, _ = detector.run(image, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            shape = predictor(image, rect)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            five = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)
            faces.append(Face(box, five, float(score)))
        return faces


class Aligner:
    """Detect (primary, then fallback), keep the face nearest the centre, warp to the template."""

    version = ALIGNER_VERSION

    def __init__(self, detectors=None):
        self.detectors_are_default = detectors is None  # only then can a worker process rebuild the same aligner
        self.detectors = detectors if detectors is not None else [MtcnnDetector(), DlibDetector()]

    def align(self, image: np.ndarray) -> Aligned:
        for det in self.detectors:
            faces = det.detect(image)
            if faces:
                face = nearest_to_centre(faces, image.shape)
                return Aligned(warp_to_template(image, face.landmarks), face.landmarks, det.name)
        raise BadImage("no face", f"none of {', '.join(d.name for d in self.detectors)} found a face")
