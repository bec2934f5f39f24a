"""Training faces: the committed ``train`` split (VGGFace2 identities, disjoint from every LFW protocol
split), aligned like every other face, held in memory as uint8, with a few identities held back for
validation. All sampling draws from one seeded ``torch.Generator`` whose state is checkpointed, so a
resumed run sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import open_dataset, prepare
from ..data.splits import load_split
from ..errors import BenchError
from ..zoo.base import to_canonical

VAL_INFERENCE = 10  # per held-back identity: 10 photos craft the mask, 10 others are protected and identified
VAL_TEST = 10


def held_back_identities(split: str = "train", val_identities: int = 4, seed: int = 0) -> list[str]:
    """The identities a training run keeps out of training for validation (a seeded draw among those
    with enough photos); ``bench train select`` (:mod:`.select`) scores checkpoints on all their photos."""
    sp = load_split(split)
    idents = sp.identities()
    need = VAL_INFERENCE + VAL_TEST
    eligible = [i for i in idents if len(sp.files(i, "train")) >= need]
    if len(eligible) < val_identities + 2:
        raise BenchError(f"split {split!r} has {len(eligible)} identities with >= {need} photos; "
                         f"{val_identities} are held back for validation and training needs 2 more")
    order = torch.randperm(len(eligible), generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(eligible[j] for j in order[:val_identities])


@dataclass
class TrainingFaces:
    faces: np.ndarray  # uint8 N x 112 x 112 x 3, the training identities' photos
    labels: np.ndarray  # int identity index per face
    identities: list[str]
    val_faces: np.ndarray  # uint8, per held-back identity VAL_INFERENCE + VAL_TEST photos, in order
    val_identities: list[str]
    split_hash: str

    @classmethod
    def load(cls, split: str = "train", val_identities: int = 4, seed: int = 0, progress: bool = True,
             training: bool = True) -> "TrainingFaces":
        """``training=False`` loads (and aligns) only the held-back validation photos: enough to re-check a
        checkpoint's recorded validation protection without the whole training set."""
        sp = load_split(split)
        idents = sp.identities()
        files = {i: sp.files(i, "train") for i in idents}
        need = VAL_INFERENCE + VAL_TEST
        held = held_back_identities(split, val_identities, seed)
        train_ids = [i for i in idents if i not in held]
        if not training:
            train_ids = []
        train_files = [f for i in train_ids for f in files[i]]
        val_files = [f for i in held for f in files[i][:need]]
        prepared = prepare(open_dataset(sp.dataset), only=sorted(set(train_files + val_files)), progress=progress)
        labels = np.array([k for k, i in enumerate(train_ids) for _ in files[i]], dtype=np.int64)
        train_faces = prepared.faces(train_files) if train_files else np.empty((0, 112, 112, 3), np.uint8)
        return cls(train_faces, labels, train_ids, prepared.faces(val_files) if held else
                   np.empty((0, 112, 112, 3), np.uint8), held, sp.content_hash())

    def __post_init__(self):
        self._by_label = [np.flatnonzero(self.labels == k) for k in range(len(self.identities))]

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """``size`` random training faces (float, [0, 1])."""
        idx = torch.randint(len(self.faces), (size,), generator=generator).numpy()
        return to_canonical(torch.from_numpy(self.faces[idx]))

    def identity_batch(self, identities: int, photos: int, generator: torch.Generator) -> torch.Tensor:
        """``identities`` distinct people x ``photos`` of each: ``identities x photos x 3 x 112 x 112``."""
        people = torch.randperm(len(self.identities), generator=generator)[:identities].tolist()
        picks = []
        for k in people:
            pool = self._by_label[k]
            picks.append(pool[torch.randperm(len(pool), generator=generator)[:photos].numpy()])
            if len(picks[-1]) < photos:
                raise BenchError(f"identity {self.identities[k]} has {len(pool)} training photos, {photos} needed per batch")
        faces = to_canonical(torch.from_numpy(self.faces[np.concatenate(picks)]))
        return faces.reshape(identities, photos, *faces.shape[1:])

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inference faces ``V x 10 x 3 x 112 x 112``, test faces ``V x 10 x 3 x 112 x 112``) of the held-back people."""
        v = to_canonical(torch.from_numpy(self.val_faces)).reshape(len(self.val_identities), VAL_INFERENCE + VAL_TEST, 3, 112, 112)
        return v[:, :VAL_INFERENCE], v[:, VAL_INFERENCE:]
