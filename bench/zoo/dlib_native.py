"""``dlib-native``: the same dlib ResNet-29, run by dlib itself (PyPI dlib-bin) as a black box.

It is the exact reference for the torch port ``dlib-resnet`` and a non-differentiable target: masks
crafted elsewhere are evaluated on it the way a deployed system would see them. Canonical faces are
rounded to uint8 (as in a saved photo), warped to dlib's 150x150 chip with cv2 and handed to
``face_recognition_model_v1.compute_face_descriptor``'s batch overload for aligned chips (list of
150x150x3 uint8 arrays; dlib runs them in mini-batches of 16). About 0.1 s per face on one CPU core.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import ModelCard, Recognizer
from .dlib_chip import CHIP_SIZE, canonical_to_chip_uint8, to_uint8_images
from .dlib_dat import EMBEDDING_DIM
from .dlib_resnet import DLIB_DAT, LICENCE, NETWORK, PREPROCESSING
from .registry import register_recognizer
from .weights import WeightFile


class DlibNative(Recognizer):
    def __init__(self, card: ModelCard, dat_file: WeightFile = DLIB_DAT):
        super().__init__(card)
        import dlib  # dlib-bin; imported here so the zoo loads without it

        self._dat_path = dat_file.verified_path()
        self._net = dlib.face_recognition_model_v1(str(self._dat_path))

    def parameter_count(self) -> int:
        from .dlib_dat import load_dlib_dat

        return sum(a.size for a in load_dlib_dat(self._dat_path).params.values())

    def embed_chips(self, chips: np.ndarray) -> torch.Tensor:
        """uint8 N x 150 x 150 x 3 RGB chips -> N x 128 dlib descriptors."""
        if len(chips) == 0:
            return torch.empty(0, EMBEDDING_DIM)
        out = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return torch.from_numpy(np.asarray([np.asarray(v) for v in out], dtype=np.float32))

    @torch.no_grad()
    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        chips = canonical_to_chip_uint8(to_uint8_images(faces))
        return self.embed_chips(chips).to(faces.device)


CARD = ModelCard(
    name="dlib-native",
    source="dlib's dlib_face_recognition_resnet_model_v1 run by dlib-bin (PyPI), black box",
    input_size=(CHIP_SIZE, CHIP_SIZE),
    embedding_dim=EMBEDDING_DIM,
    differentiable=False,
    licence=LICENCE,
    files=(DLIB_DAT,),
    description="dlib ResNet-29 run natively by dlib-bin on uint8 chips (canonical crop rounded to uint8, "
    "cv2 similarity warp to dlib's 150x150 chip). Exact reference for dlib-resnet; ~0.1 s per face.",
    extra={"network": NETWORK, "preprocessing": "canonical rounded to uint8; " + PREPROCESSING},
)


@register_recognizer(CARD)
def create_dlib_native(card: ModelCard) -> DlibNative:
    return DlibNative(card)


__all__ = ["CARD", "DlibNative", "create_dlib_native"]
