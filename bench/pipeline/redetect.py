"""The attacker's view of one saved protected photo: the one re-detect stage every photo-level path shares.

``bench run --transform realistic`` (:mod:`bench.stages.realistic`), ``bench cloak`` and its offline
check ``bench verify-cloak`` (:mod:`bench.cloak`), and ``bench evaluate`` (:mod:`bench.evaluate`) all
hand a saved protected photo (pixels as decoded from the file) and the clean photo's face geometry to
:func:`attacker_view`, and score what it returns; none of them re-detects on its own.

The attacker re-detects and re-aligns the photo with our aligner (:func:`attacker_location`: the first
detector that finds a face, the face nearest the centre). **A re-detection failure is not a success**:
when it finds no face, or one whose alignment lies more than ``MAX_OFFSET_PX`` crop pixels (mean over the
crop) from the clean photo's (another face, e.g. a bystander), the photo is cut at the clean photo's
geometry instead (what an attacker who finds the face by other means, another detector or a human, gets)
and counted as not re-detected. So a mask that only defeats our detector earns no protection in the rates.

:func:`saved_quality` is the full photo's quality beside it: SSIM/PSNR of the whole photo and of the face
region, and the realised L2 on the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.align import warp_to_template
from .photo import FaceLocation, attacker_location, mask_offset, photo_quality

# measured jitter on LFW: 0.9-1.1 crop px mean (tests/test_pipeline.py); a bystander's face is far more
MAX_OFFSET_PX = 10.0


@dataclass
class AttackerView:
    crop: np.ndarray  # 112 x 112 x 3 uint8: what the targets embed and the protocols score
    redetected: bool  # the attacker found the face itself (within MAX_OFFSET_PX of the clean geometry)
    offset_px: float | None  # how far its alignment puts the face from the clean one (None: no face found)

    def record(self) -> dict:
        return {"redetected": self.redetected, "offset_px": self.offset_px}


def attacker_view(saved: np.ndarray, clean: FaceLocation, aligner=None, max_offset: float = MAX_OFFSET_PX) -> AttackerView:
    """The crop an attacker scores from the saved protected photo ``saved`` (uint8 H x W x 3, as decoded),
    whose clean original's face is ``clean`` (see the module docstring for the fallback)."""
    seen = attacker_location(saved, aligner)
    offset = None if seen is None else mask_offset(clean.matrix, seen.matrix)[0]
    found = offset is not None and offset <= max_offset
    crop = seen.crop if found else clean_geometry_crop(saved, clean)
    return AttackerView(crop, found, offset)


def clean_geometry_crop(photo: np.ndarray, clean: FaceLocation) -> np.ndarray:
    """``photo`` cut at the clean photo's face geometry (no re-detection)."""
    return warp_to_template(np.ascontiguousarray(photo, np.uint8), clean.landmarks)


def saved_quality(clean: np.ndarray, saved: np.ndarray, region: tuple[int, int, int, int] | None) -> dict:
    """The saved protected photo against its original: SSIM/PSNR (photo, face region) and the photo's L2 (0-255)."""
    diff = saved.astype(np.float64) - clean.astype(np.float64)
    return {"l2_photo": float(np.sqrt((diff ** 2).sum())), **photo_quality(clean, saved, region)}
