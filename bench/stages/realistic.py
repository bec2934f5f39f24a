"""The realistic pipeline as a ``bench run`` delivery: what a protected person really faces.

``--transform realistic`` (saved as PNG) or ``--transform realistic:jpeg75`` (JPEG, quality 75). For each
test photo the person's mask, at the run's budget on the 112x112 crop, is warped back into the
*original* full-resolution photo with the inverse of the very similarity its cached crop was cut with
(the landmarks ``bench data prepare`` stored; :func:`bench.pipeline.protect_photo`): only the face
region changes. The photo is saved and decoded (:func:`bench.pipeline.save_and_reload`), the attacker
re-detects and re-aligns it with our aligner (:func:`bench.pipeline.attacker_view`, the re-detect stage
``bench cloak`` and ``bench evaluate`` share: MTCNN, dlib's fallback, the face nearest the centre), and that crop is what every target embeds and every protocol
scores. The masks are the crop-level rows' own (the mask bank is shared); the chain's spec
(``realistic:png``) is the cells' ``transforms`` field, so crop-level and realistic cells differ in that
field only and both are cached.

**Re-detection failures are not successes.** A protected photo in which the attacker finds no face, or
finds one elsewhere (its alignment more than ``MAX_OFFSET_PX`` crop pixels, on average, from the clean
one: another face, e.g. a bystander), is counted in ``realistic_not_redetected`` (files in
``realistic_not_redetected_files``) and scored as the saved protected photo cut at the clean photo's
geometry, what an attacker who finds the face by other means (another detector, a human) gets. So a
mask that only defeats our detector earns no protection in the rates; read that column beside them.

**Quality.** ``ssim``, ``psnr``, ``l2_realised``... stay the crop's (the same mask added to the crop,
as in the crop-level rows: the crop SSIM); ``ssim_photo`` / ``psnr_photo`` compare the saved full photo
with the original (diluted by every unchanged pixel), ``ssim_face`` the face region alone, and
``l2_photo`` is the full photo's realised L2 (about budget / scale, see :mod:`bench.pipeline.photo`).
``realistic_offset_px``: how far (crop px, mean) the attacker's re-alignment puts the mask from where it
was made (the detector's jitter on the protected photo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..data.images import decode_rgb, file_digest
from ..errors import BenchError
from ..pipeline import MAX_OFFSET_PX, FaceLocation, attacker_view, protect_photo, save_and_reload, saved_quality  # noqa: F401
from .transforms import TRANSFORMS


@dataclass(frozen=True)
class Realistic:
    """Full photo protected at its face, saved as PNG or JPEG ``quality``, re-detected by the attacker."""

    fmt: str = "png"
    quality: int = 0  # JPEG only

    name: ClassVar[str] = "realistic"

    @property
    def spec(self) -> str:
        return f"{self.name}:png" if self.fmt == "png" else f"{self.name}:jpeg{self.quality}"

    @classmethod
    def parse(cls, value: str) -> "Realistic":
        """'' or 'png' -> PNG; 'jpegQ' (Q from 1 to 100) -> JPEG at quality Q."""
        value = value.strip().lower()
        if value in ("", "png"):
            return cls()
        q = value[4:] if value.startswith("jpeg") else ""
        if not (q.isdigit() and 1 <= int(q) <= 100):
            raise BenchError(f"transform 'realistic' takes png or jpegQ with Q from 1 to 100 (e.g. realistic:jpeg75), got {value!r}")
        return cls("jpeg", int(q))

    def deliver(self, prepared, files: list[str], masks: torch.Tensor) -> tuple[np.ndarray, list[dict]]:
        """The attacker's crops (uint8 N x 112 x 112 x 3) of ``files`` (relpaths in ``prepared``, a
        :class:`bench.data.prepare.PreparedDataset`) protected with ``masks`` (3 x 112 x 112 for all, or
        N x 3 x 112 x 112; canonical units, already at the budget), and one record per photo."""
        crops, records = [], []
        for i, (rel, key, (detector, landmarks)) in enumerate(zip(files, prepared.content_keys(files), prepared.landmarks(files))):
            if landmarks is None:
                raise BenchError(f"{prepared.name} is pre-aligned: there is no original photo for the realistic pipeline")
            data = (prepared.images_root / rel).read_bytes()
            if file_digest(data) != key:
                raise BenchError(f"{prepared.name} {rel!r} changed since it was aligned: run `bench data prepare {prepared.name}`")
            image, _ = decode_rgb(data, rel)  # as `bench data prepare` decoded it, so the landmarks fit
            clean = FaceLocation.from_landmarks(landmarks, detector)
            protected, info = protect_photo(image, masks if masks.dim() == 3 else masks[i], None, location=clean)
            _, saved = save_and_reload(protected, self.fmt, self.quality or 95)
            view = attacker_view(saved, clean)  # the shared re-detect stage (bench.pipeline.redetect)
            crops.append(view.crop)
            records.append({"file": rel, **view.record(), **saved_quality(image, saved, tuple(info["region"]))})
        return np.stack(crops), records

    @staticmethod
    def summary(records: list[dict]) -> dict:
        """Row fields from every photo's record (see the module docstring)."""
        def mean(key, finite=False):
            vals = [r[key] for r in records if r.get(key) is not None and (not finite or np.isfinite(r[key]))]
            return float(np.mean(vals)) if vals else (float("inf") if finite else None)

        missed = [r["file"] for r in records if not r["redetected"]]
        return {"ssim_photo": mean("ssim_photo"), "psnr_photo": mean("psnr_photo", finite=True),
                "ssim_face": mean("ssim_face"), "l2_photo": mean("l2_photo"),
                "realistic_photos": len(records), "realistic_not_redetected": len(missed),
                "realistic_not_redetected_files": missed,
                "realistic_offset_px": mean("offset_px")}


TRANSFORMS.add(Realistic.name, Realistic.parse, photo=True,
               valid="png (the default) or jpegQ, Q 1-100: the full photo protected, saved, re-detected (stands alone)")
