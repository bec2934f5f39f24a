"""One protected photo against its original: checked, then seen by the attacker (the shared re-detect stage).

Per matched pair (:mod:`.match`): the protected file is decoded as anyone reading it would
(:func:`bench.pipeline.read_photo`: upright, sRGB, no metadata kept), its original is read and its face
located (the clean geometry), and the protected photo goes through :func:`bench.pipeline.attacker_view`,
the re-detect stage ``bench run --transform realistic`` and ``bench cloak`` use. Problems get one line:

- refused (not scored): an unreadable or non-image file, an original with no face, a photo whose size
  differs from its original's (a resize; scored at the original's size with ``allow_resize``, and said);
- scored with a line: a photo identical to its original (the tool changed nothing: it protects nothing,
  and skipping it would overstate the tool), a photo re-encoded or filtered as a whole (most pixels outside
  the face changed), a photo in which the attacker finds no face (scored at the clean geometry, counted).

**Matched budget** (``rescale_to``): the difference protected - original, taken in the aligned crop space
(both cut at the clean geometry), is rescaled to that L2 (0-255, on the 112x112 crop) and put back into the
original photo with the inverse warp every method's mask takes (:func:`bench.pipeline.protect_photo`),
saved as PNG and seen by the attacker again: the tool compared at the benchmark's strength. Only the face
crop's footprint changes in that version (what the tool did elsewhere in the photo is not carried over).

Nothing of a photo's metadata is printed or kept; only pixels, file names and measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..budget import PIXEL_SCALE, scale_to_budget
from ..data.images import BadImage, decode_rgb, file_digest
from ..errors import BenchError
from ..pipeline import (
    AttackerView, FaceLocation, attacker_view, clean_geometry_crop, default_aligner, footprint_box, locate_face,
    protect_photo, read_photo, save_and_reload, saved_quality,
)
from .match import Pair

ASPECT_TOLERANCE = 0.01  # a resize keeps the aspect ratio; more than 1% off is a crop, not a resize
# "re-encoded": most pixels outside the face changed (a JPEG re-compression or a filter over the whole photo)
REENCODED_FRACTION = 0.5


@dataclass
class Seen:
    """One version of a protected photo (the tool's own, or rescaled) as the attacker and the metrics see it."""

    view: AttackerView
    cut: np.ndarray  # the saved photo cut at the clean geometry (crop-space quality; the rescale's input)
    record: dict  # file, redetected, offset_px, l2_photo, ssim_photo, psnr_photo, ssim_face


@dataclass
class Evaluated:
    person: str
    name: str
    original: str
    clean_crop: np.ndarray  # 112 x 112 x 3 uint8, the original's face as the attacker aligns it
    versions: dict[str, Seen] = field(default_factory=dict)  # "native", and "rescaled" with rescale_to
    notes: list[str] = field(default_factory=list)


class FolderOriginals:
    """Originals in a folder of the user's: read like the protected photos, the face located by our aligner."""

    def __init__(self, root: Path, aligner=None):
        self.root, self.aligner = root, aligner or default_aligner()

    def load(self, rel: str) -> tuple[np.ndarray, FaceLocation]:
        path = self.root / rel
        if not path.is_file():
            raise BadImage("missing", "the original is not there any more")
        pixels = read_photo(path.read_bytes(), rel).pixels
        # the face the attacker would take (the one nearest the centre); other faces are not this person's
        return pixels, locate_face(pixels, self.aligner, "main")


class SplitOriginals:
    """A split's own photos: decoded and located exactly as `bench data prepare` did (cached landmarks), so
    the clean geometry and crop are those of ``bench run``'s cells."""

    def __init__(self, prepared):
        self.prepared = prepared

    def load(self, rel: str) -> tuple[np.ndarray, FaceLocation]:
        (key,), ((detector, landmarks),) = self.prepared.content_keys([rel]), self.prepared.landmarks([rel])
        if landmarks is None:
            raise BenchError(f"{self.prepared.name} is pre-aligned: it has no original photos to compare with")
        data = (self.prepared.images_root / rel).read_bytes()
        if file_digest(data) != key:
            raise BenchError(f"{self.prepared.name} {rel!r} changed since it was aligned: run `bench data prepare {self.prepared.name}`")
        image, _ = decode_rgb(data, rel)
        return image, FaceLocation.from_landmarks(landmarks, detector, self.prepared.faces([rel])[0])


def evaluate_photo(pair: Pair, originals, *, allow_resize: bool = False, rescale_to: float | None = None,
                   aligner=None, echo: Callable[[str], None] = print) -> Evaluated | None:
    """``pair`` checked and seen by the attacker, or None (after its one line) when it cannot be scored."""
    aligner = aligner or default_aligner()
    try:
        data = pair.protected.read_bytes()
        loaded = read_photo(data, pair.name)
    except OSError as exc:
        echo(f"{pair.name}: not scored, unreadable ({type(exc).__name__})")
        return None
    except BadImage as exc:
        echo(f"{pair.name}: not scored, {exc.reason} ({exc.detail})")
        return None
    try:
        image, clean = originals.load(pair.original)
    except BadImage as exc:
        what = "no face in its original" if exc.reason == "no face" else f"its original is {exc.reason}"
        echo(f"{pair.name}: not scored, {what} ({exc.detail}): there is no clean face to compare with")
        return None
    except OSError as exc:
        echo(f"{pair.name}: not scored, its original is unreadable ({type(exc).__name__})")
        return None
    protected, notes = loaded.pixels, []
    if protected.shape != image.shape:
        (h, w), (h0, w0) = protected.shape[:2], image.shape[:2]
        if not allow_resize:
            echo(f"{pair.name}: not scored, resized: {w}x{h} px, its original is {w0}x{h0} px "
                 "(--allow-resize scores it at the original's size)")
            return None
        if abs(w / h - w0 / h0) > ASPECT_TOLERANCE * (w0 / h0):
            echo(f"{pair.name}: not scored, cropped or padded: {w}x{h} px has another shape than its original's {w0}x{h0} px")
            return None
        interp = cv2.INTER_AREA if w > w0 else cv2.INTER_LINEAR
        protected = cv2.resize(protected, (w0, h0), interpolation=interp)
        notes.append(f"resized from {w}x{h} to its original's {w0}x{h0} px (--allow-resize)")
    region = footprint_box(clean.matrix, image.shape)
    if np.array_equal(protected, image):
        notes.append("not changed: the same pixels as its original (the tool protected nothing here); scored as it is")
    elif not notes:  # a resized photo changed everywhere by the resize itself: its one line says so already
        outside = np.ones(image.shape[:2], bool)
        x0, y0, x1, y1 = region
        outside[y0:y1, x0:x1] = False
        changed = (protected != image).any(axis=2)[outside]
        if changed.size and changed.mean() > REENCODED_FRACTION:
            notes.append(f"re-encoded or filtered as a whole: {100 * changed.mean():.0f}% of the pixels outside the face "
                         "changed; scored as it is")
    out = Evaluated(pair.person, pair.name, pair.original, clean.crop, notes=notes)
    out.versions["native"] = _seen(pair.name, image, protected, clean, region, aligner)
    if rescale_to is not None:
        diff = out.versions["native"].cut.astype(np.float64) - clean.crop.astype(np.float64)
        mask = scale_to_budget(torch.from_numpy(diff.transpose(2, 0, 1) / PIXEL_SCALE), rescale_to)
        rescaled, info = protect_photo(image, mask, None, location=clean)
        _, saved = save_and_reload(rescaled, "png")
        out.versions["rescaled"] = _seen(pair.name, image, saved, clean, tuple(info["region"]), aligner)
        out.versions["rescaled"].record["l2_crop_native"] = float(np.sqrt((diff ** 2).sum()))
    seen = out.versions["native"]
    if not seen.view.redetected:
        why = "no face" if seen.view.offset_px is None else f"a face {seen.view.offset_px:.0f} crop px away"
        out.notes.append(f"the attacker found {why} in it: scored at its original's face geometry, counted as not re-detected")
    for note in out.notes:
        echo(f"{pair.name}: {note}")
    return out


def _seen(name: str, image: np.ndarray, saved: np.ndarray, clean: FaceLocation, region, aligner) -> Seen:
    view = attacker_view(saved, clean, aligner)
    record = {"file": name, **view.record(), **saved_quality(image, saved, tuple(region))}
    return Seen(view, clean_geometry_crop(saved, clean), record)
