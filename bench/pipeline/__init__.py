"""The realistic pipeline: a canonical-crop mask put back into the full-resolution photo (inverse
similarity warp, only the face region changes), saved as PNG or JPEG, and re-detected and re-aligned by
the attacker with our own aligner. See :mod:`bench.pipeline.photo` for the budget on a full photo."""

from .io import DEFAULT_JPEG_QUALITY, FORMATS, LoadedPhoto, encode_photo, read_photo, save_and_reload
from .photo import (
    MULTI_FACE_POLICIES, FaceLocation, alignment_matrix, attacker_crop, attacker_location, crop_to_crop,
    default_aligner, face_footprint, footprint_box, inverse_warp, inverse_warp_region, locate_face,
    mask_in_attacker_crop, mask_offset, photo_quality, protect_photo, transform_scale,
)
from .redetect import MAX_OFFSET_PX, AttackerView, attacker_view, clean_geometry_crop, saved_quality

__all__ = [
    "DEFAULT_JPEG_QUALITY", "FORMATS", "LoadedPhoto", "encode_photo", "read_photo", "save_and_reload",
    "MULTI_FACE_POLICIES", "FaceLocation", "alignment_matrix", "attacker_crop", "attacker_location", "crop_to_crop",
    "default_aligner", "face_footprint", "footprint_box", "inverse_warp", "inverse_warp_region", "locate_face",
    "mask_in_attacker_crop", "mask_offset", "photo_quality", "protect_photo", "transform_scale",
    "MAX_OFFSET_PX", "AttackerView", "attacker_view", "clean_geometry_crop", "saved_quality",
]
