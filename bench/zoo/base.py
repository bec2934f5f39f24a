"""The one interface every face recognizer meets.

Input: faces in the canonical space, a float tensor ``N x 3 x 112 x 112`` in [0, 1], RGB,
ArcFace-aligned (5-point similarity warp to the insightface 112x112 template).
Output: ``N x D`` L2-normalised embeddings.

Each recognizer owns its preprocessing (resize / crop / colour / normalisation), differentiably for
white-box models, so a mask optimised in the canonical space reaches the network's input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from .weights import WeightFile

CANONICAL_SIZE = 112


@dataclass(frozen=True)
class ModelCard:
    """Per-model pretrained config (timm's pretrained_cfg): what it is, where its weights come from."""

    name: str
    source: str
    input_size: tuple[int, int]  # the network's native (H, W)
    embedding_dim: int
    differentiable: bool
    licence: str
    files: tuple[WeightFile, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


def weights_in_use(card: ModelCard) -> tuple[WeightFile, ...]:
    """The files a plain ``create_recognizer(card.name)`` loads here: ``card.files``, unless the model
    picks its weights by what is installed (``extra["weights_in_use"]``, a function; dlib-resnet falls
    back to face-api's copy without its .dat package). Fingerprints must name these, not the default."""
    pick = card.extra.get("weights_in_use")
    return tuple(pick()) if callable(pick) else card.files


def check_faces(faces: torch.Tensor) -> None:
    if faces.dim() != 4 or faces.shape[1] != 3 or faces.shape[2:] != (CANONICAL_SIZE, CANONICAL_SIZE):
        raise ShapeError(
            f"faces must be N x 3 x {CANONICAL_SIZE} x {CANONICAL_SIZE} (canonical aligned space), got {tuple(faces.shape)}"
        )
    if not faces.is_floating_point():
        raise ShapeError(f"faces must be a float tensor in [0, 1], got dtype {faces.dtype}")


class Recognizer(nn.Module):
    """Subclasses implement ``embed(faces) -> N x D`` (raw features); ``forward`` checks and normalises."""

    card: ModelCard

    def __init__(self, card: ModelCard):
        super().__init__()
        self.card = card

    # convenience mirrors of the card
    @property
    def name(self) -> str:
        return self.card.name

    @property
    def embedding_dim(self) -> int:
        return self.card.embedding_dim

    @property
    def differentiable(self) -> bool:
        return self.card.differentiable

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input_size

    @property
    def licence(self) -> str:
        return self.card.licence

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def parameter_count(self) -> int | None:
        """Learned numbers in the network (TFJS graphs keep their weights as buffers)."""
        n = sum(p.numel() for p in self.parameters()) or sum(b.numel() for b in self.buffers() if b.is_floating_point())
        return n or None

    def embed(self, faces: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        check_faces(faces)
        return F.normalize(self.embed(faces).float(), dim=1)

    @torch.no_grad()
    def embed_all(self, faces: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Embeddings of many faces (any device, any dtype in [0,1] or uint8 NHWC) in batches, on CPU."""
        from tqdm.auto import tqdm

        out = []
        steps = range(0, len(faces), batch_size)
        for i in tqdm(steps, desc=f"embed {self.name}", disable=not progress, leave=False):
            batch = to_canonical(faces[i : i + batch_size]).to(self.device)
            out.append(self(batch).cpu())
        return torch.cat(out) if out else torch.empty(0, self.embedding_dim)


def to_canonical(faces) -> torch.Tensor:
    """uint8 ``N x 112 x 112 x 3`` (as stored) or float NCHW -> float NCHW in [0, 1]."""
    faces = torch.as_tensor(faces)
    if faces.dtype == torch.uint8:
        if faces.dim() == 4 and faces.shape[-1] == 3:
            faces = faces.permute(0, 3, 1, 2)
        return faces.float().div_(255.0)
    return faces.float()
