"""The mask bank: a method's masks for every person of a split, crafted once and then loaded.

A mask set is keyed by everything that defines it: the split's content (not only its name), the
method's full configuration (trained methods include their weights' checksum), the surrogate's
weights, the seed and the number of inference photos. Universal masks are crafted once per set.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.splits import Split
from ..errors import BenchError
from ..features import model_fingerprint
from ..provenance import config_hash
from ..stage_clock import SurrogatePasses, record_items, stage
from ..store import ResultStore
from ..zoo import card_of
from ..zoo.base import to_canonical
from .faces import FaceBank


def person_seed(seed: int, identity: str) -> int:
    """Each person's own seed: a person's mask never depends on who else is in the split."""
    return int(hashlib.sha1(f"{seed}:{identity}".encode()).hexdigest()[:8], 16)


def weights_of(names: str) -> str:
    """Fingerprint of the weights of a source ('a+b' ensembles, '-' for none) or a target."""
    return "" if names == "-" else "+".join(model_fingerprint(card_of(n)) for n in names.split("+"))


@dataclass(frozen=True)
class MaskJob:
    """One mask set to obtain: ``method`` (a created MaskMethod) from ``source`` for ``split``'s people."""

    method_name: str
    method: object  # methods.base.MaskMethod
    source: str  # '-' for methods that need no surrogate
    seed: int
    n_inference: int  # 0 for image and universal methods (they use no inference photos)

    @property
    def scope(self) -> str:
        return self.method.kind

    @cached_property
    def config_hash(self) -> str:
        """Once per job: a trained method's config hashes its checkpoint file."""
        return config_hash(self.method.config(self.source))

    def key(self, split: Split) -> dict:
        return {"split": split.name, "split_hash": split.content_hash(), "source": self.source,
                "source_weights": weights_of(self.source), "method": self.method_name,
                "method_config": self.config_hash, "seed": self.seed,
                "n_inference": self.n_inference}


@dataclass
class MaskSet:
    """Masks by identity (``3 x H x W`` per person, ``N x 3 x H x W`` per test photo for image methods)."""

    masks: dict[str, torch.Tensor]
    config: dict
    kind: str
    t1: dict[str, float] = field(default_factory=dict)  # seconds to craft each person's mask ('*': the universal one)
    t2: float | None = None  # seconds per photo (image methods)

    def timing(self) -> dict:
        t1 = list(self.t1.values())
        return {"t1": float(np.mean(t1)) if t1 else None, "t2": self.t2}

    def meta(self, provenance: dict) -> dict:
        return {"config": self.config, "kind": self.kind, "t1": self.t1, "t2": self.t2, "provenance": provenance}

    @classmethod
    def from_stored(cls, masks: dict[str, torch.Tensor], meta: dict) -> "MaskSet":
        return cls(masks, meta["config"], meta["kind"], meta.get("t1") or {}, meta.get("t2"))


class MaskBank:
    def __init__(self, store: ResultStore, split: Split, faces: FaceBank, models, device: str = "cpu",
                 provenance: dict | None = None, progress: bool = True, people_per_batch: int = 1):
        self.store, self.split, self.faces, self.models = store, split, faces, models
        self.people_per_batch = max(1, int(people_per_batch))
        self.device, self.provenance, self.progress = device, provenance or {}, progress
        self.identities = split.identities()

    def _faces(self, files: list[str]) -> torch.Tensor:
        crops = self.faces.faces(self.split.dataset, files)
        return to_canonical(torch.from_numpy(crops)).to(self.device)

    def get(self, job: MaskJob) -> MaskSet:
        key = job.key(self.split)
        with stage("masks:load"):
            stored = self.store.load_masks(key, expected=self.identities)
        if stored is not None:
            return MaskSet.from_stored(*stored)
        # the profile's work unit for crafting: images through the surrogate with a gradient (its floor's basis)
        with stage(f"craft:{job.method_name}@{job.source}"), SurrogatePasses(self._surrogates(job)) as passes:
            masks = self.craft(job)
        record_items(f"craft:{job.method_name}@{job.source}", passes.with_grad)
        self.store.save_masks(key, masks.masks, masks.meta(self.provenance))
        return masks

    def _inference_files(self, job: MaskJob, ident: str) -> list[str]:
        available = self.split.files(ident, "inference")
        if len(available) < job.n_inference:
            raise BenchError(f"{ident} has {len(available)} inference photos in split {self.split.name!r}, "
                             f"{job.n_inference} requested (--n-inference)")
        return available[: max(job.n_inference, 1)]

    def _craft_people(self, job: MaskJob, algo, surrogates: list, out: MaskSet) -> None:
        """Person masks, ``people_per_batch`` people per batched craft (``MaskMethod.craft_masks``); each
        person's t1 is its batch's time shared equally (what crafting one person costs at that batch size)."""
        bar = tqdm(total=len(self.identities), desc=f"craft {job.method_name} ({job.source})", disable=not self.progress,
                   leave=False)
        for i in range(0, len(self.identities), self.people_per_batch):
            batch = self.identities[i : i + self.people_per_batch]
            inputs = [self._faces(self._inference_files(job, ident)) for ident in batch]
            start = time.perf_counter()
            masks = algo.craft_masks(inputs, surrogates, seeds=[person_seed(job.seed, ident) for ident in batch])
            elapsed = (time.perf_counter() - start) / len(batch)
            for ident, mask in zip(batch, masks):
                out.masks[ident], out.t1[ident] = mask.float().cpu(), elapsed
            bar.update(len(batch))
        bar.close()

    def _surrogates(self, job: MaskJob) -> list:
        return [] if job.source == "-" else [self.models(s) for s in job.source.split("+")]

    def craft(self, job: MaskJob) -> MaskSet:
        algo = job.method
        surrogates = self._surrogates(job)
        out = MaskSet({}, algo.config(job.source), algo.kind)
        if algo.kind == "universal":  # one mask for everyone: its inputs are ignored, so one photo is enough
            first = self.identities[0]
            inputs = self._faces(self.split.files(first, "inference")[:1])
            start = time.perf_counter()
            universal = algo.craft_mask(inputs, surrogates, seed=job.seed).float().cpu()
            out.t1["*"] = time.perf_counter() - start
            out.masks = {ident: universal.clone() for ident in self.identities}  # safetensors refuses shared storage
            return out
        if algo.kind == "person":
            self._craft_people(job, algo, surrogates, out)
            return out
        per_photo = []
        for ident in tqdm(self.identities, desc=f"craft {job.method_name} ({job.source})", disable=not self.progress, leave=False):
            files = self.split.files(ident, "test")
            inputs = self._faces(files)
            start = time.perf_counter()
            out.masks[ident] = algo.craft_mask(inputs, surrogates, seed=person_seed(job.seed, ident)).float().cpu()
            per_photo.append((time.perf_counter() - start) / len(files))
        out.t2 = float(np.mean(per_photo)) if per_photo else None
        return out
