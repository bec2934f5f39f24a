"""A PNG grid of aligned faces, for looking at what the pipeline produced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def face_grid(faces: np.ndarray, columns: int = 8, pad: int = 2) -> np.ndarray:
    """``N x H x W x 3`` uint8 -> one uint8 image, ``columns`` faces per row, white gaps."""
    n, h, w, _ = faces.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, face in enumerate(faces):
        r, c = divmod(i, columns)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = face
    return out


def save_grid(faces: np.ndarray, path: Path, columns: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(face_grid(faces, columns)).save(path)
    return path
