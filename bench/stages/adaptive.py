"""Adaptive attackers: they know the masking method and learn to undo it, then identify probe-side.

``adaptive-ridge`` (a linear map, folds over the test people). People are split into ``folds``; for each
fold the attacker fits a ridge regression from protected-photo features to the same photo's clean
features on every *other* fold's people (the photos they were given), then maps this fold's protected
probes through it (re-normalised) and runs the paper's probe-side identification against the clean
gallery. No photo or person is ever used to fit the map that scores it. Protection that survives this
is protection against an attacker who can collect (protected, clean) pairs, e.g. from people who
published both. A cheap linear, feature-space attacker on the probe side only.

``adaptive-head`` and ``adaptive-finetune`` (the attacker adapts the recognizer, trained on its own
people). The attacker protects photos of the *training identities* (:mod:`.attacker`: the committed
``train`` split, VGGFace2 people disjoint from every LFW split) with the very method, source and budget
of the cell (person-specific masks crafted from 10 of each training person's photos by the run's mask
bank, as for a test person), then trains on the target:

- ``adaptive-head``: a linear metric head (``D x D``, initialised to the identity) on the frozen,
  normalised embedding;
- ``adaptive-finetune``: a copy of the target's last layer(s) on cached trunk outputs
  (:mod:`bench.zoo.tails`: dlib-resnet's last residual block + fc, mobileface's dense layer); a
  target without a torch tail (hse-faceres, black-box models) gets the metric head, and the row's
  ``finetune_layers`` says so.

Loss (both; :func:`fit_metric`), in batches of ``batch_people`` people x ``batch_photos`` photos, g the
module being trained and g0 the module as it started: ``pair`` x (1 - cos(g(protected photo), g0(the same
photo clean))) maps each protected photo onto its own clean feature, and ``keep`` x (1 - cos(g(clean),
g0(clean))) keeps clean photos where the gallery has them. Adam, ``steps`` steps, each weight tensor's
step ``lr`` x its RMS; seeded (the protocol's ``seed`` and the mask job's). With no mask the loss is zero
and the model stays as it was. ``contrast`` > 0 adds a supervised contrastive term (protected photos
against the batch's clean photos, Khosla et al. 2020).

The settings were chosen on the attacker's own people only (45 training identities fitted, 15 held out,
their protected photos identified among the LFW distractors; `advcloak-convex` and `opom-convex` from
mobileface; 300 steps): the contrastive term over-fits the few training identities (mobileface,
held-out clean Top-1 37.9% -> 7-31%, protection still 95-99%), so it is off; cosine-to-clean with
``keep`` 3 took advcloak-convex's white-box protection from 99.6% to 86-87% (clean Top-1 33.5-33.8%) and
its black-box protection on dlib-resnet from 36.1% to 30-32% (clean 80.5% -> 79.7-80.0%); `keep` 1 or
10 and 1,000 steps moved neither by more than ~3 points. Absolute step sizes fail: 1e-3 made dlib's tail
diverge (its loss rose, held-out clean Top-1 fell to 62%), hence steps relative to each tensor's RMS
(dlib's convolutions 0.002, mobileface's dense layer 0.17).

Then the test people's protected probes *and* the whole clean gallery (their clean photos and the
distractors) go through the adapted model, and the paper's probe-side 1:N identification runs on that:
``{prefix}_top{k}_protection`` is comparable with ``identification``'s ``top{k}_protection`` and the
ridge's. ``{prefix}_top{k}_clean_accuracy`` is clean identification through the adapted model (beside
``..._clean_accuracy_static``, the target's own): with no mask it must stay where it was. Nothing is
fitted on a test person or a distractor: the fit sees the attacker's people only, before the test
photos are looked at.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BenchError
from ..features import Layer, clean_features, embed_uint8, layer_uint8
from ..protocol import identification
from ..search import make_index
from ..zoo.tails import split_tail
from .attacker import AttackerCell, AttackerPeople
from .bank import person_seed
from .evaluator import CleanGallery, split_features
from .protocols import Protocol, _check_pairs, register_protocol


def ridge_map(protected: np.ndarray, clean: np.ndarray, strength: float) -> np.ndarray:
    """``A`` minimising ||protected A - clean||^2 + lam ||A - I||^2, with lam = ``strength`` x the mean
    squared feature norm; the pull towards the identity keeps an unfitted direction as it was."""
    p, c = protected.astype(np.float64), clean.astype(np.float64)
    d = p.shape[1]
    lam = strength * float((p**2).sum(1).mean())
    return np.linalg.solve(p.T @ p + lam * np.eye(d), p.T @ c + lam * np.eye(d))


@register_protocol
@dataclass
class AdaptiveRidge(Protocol):
    """Probe-side identification after an attacker's ridge map from protected to clean features (folds over people)."""

    name: ClassVar[str] = "adaptive-ridge"
    version: ClassVar[str] = "adaptive-ridge-v1"
    folds: int = 5
    strength: float = 0.1

    def key(self, gallery_name: str) -> str:
        return f"{super().key(gallery_name)}/folds{self.folds}/ridge{self.strength:g}"

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray]) -> dict:
        ids = sorted(probes)
        fold_of = {ident: i % self.folds for i, ident in enumerate(ids)}
        mapped: dict[str, np.ndarray] = {}
        for fold in range(min(self.folds, len(ids))):
            train = [i for i in ids if fold_of[i] != fold]
            test = [i for i in ids if fold_of[i] == fold]
            if not train:  # a single person: nobody else's photos to learn from
                mapped.update({i: probes[i] for i in test})
                continue
            a = ridge_map(np.concatenate([probes[i] for i in train]), np.concatenate([clean.people[i] for i in train]),
                          self.strength)
            for i in test:
                m = probes[i].astype(np.float64) @ a
                mapped[i] = (m / np.linalg.norm(m, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
        ident = identification(clean.index, mapped, clean.people, self.ks)
        out = {"identities": len(ids), "pairs": ident.pairs}
        for k in self.ks:
            out[f"adaptive_top{k}_protection"] = ident.protection(k)
        out.update(self.per_identity(ident, probes))
        return out


# -- attackers that adapt the recognizer, trained on their own people ---------------------------------


def supcon(anchors: torch.Tensor, candidates: torch.Tensor, a_labels: torch.Tensor, c_labels: torch.Tensor,
           temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020) of unit ``anchors`` against unit
    ``candidates``: the mean over anchors of -mean log-softmax over the candidates of the same label."""
    logits = anchors @ candidates.T / temperature
    positive = a_labels[:, None] == c_labels[None, :]
    log_prob = logits.log_softmax(dim=1).masked_fill(~positive, 0.0)
    return -(log_prob.sum(1) / positive.sum(1).clamp(min=1)).mean()


@dataclass
class FitResult:
    loss_first: float
    loss_last: float
    drift: float  # relative squared drift of the weights at the end
    seconds: float


def fit_metric(module: nn.Module, clean: torch.Tensor, protected: torch.Tensor, labels: torch.Tensor, *, steps: int,
               lr: float, temperature: float, contrast: float, pair: float, keep: float, batch_people: int,
               batch_photos: int, seed: int) -> FitResult:
    """Train ``module`` (``N x F`` inputs -> ``N x D``, normalised here) so that protected photos find their
    person's clean photos (row i of ``clean`` and ``protected`` is one photo; ``labels`` its person).

    Per batch of ``batch_people`` x ``batch_photos`` photos, with g the module and g0 a frozen copy of it
    as it started: ``pair`` x mean (1 - cos(g(protected_i), g0(clean_i))) (each protected photo mapped onto
    its own clean feature), ``keep`` x mean (1 - cos(g(clean), g0(clean))) (clean photos stay where the
    gallery has them) and ``contrast`` x :func:`supcon` of g(protected) against the batch's g(clean).
    Adam, with each weight tensor's step size ``lr`` x its RMS at the start: one setting fits weights of
    very different scales (dlib's convolutions have RMS 0.002, mobileface's dense layer 0.17)."""
    start = time.perf_counter()
    if contrast == 0 and torch.equal(clean, protected):  # no pixel changed: the loss is zero whatever the weights
        return FitResult(0.0, 0.0, 0.0, time.perf_counter() - start)
    generator = torch.Generator().manual_seed(int(seed))
    people = torch.unique(labels)
    rows = [torch.nonzero(labels == p).ravel() for p in people]
    params = [p for p in module.parameters() if p.requires_grad]
    initial = [p.detach().clone() for p in params]
    frozen = copy.deepcopy(module).requires_grad_(False).eval()
    optimiser = torch.optim.Adam([{"params": [p], "lr": lr * float(p0.pow(2).mean().sqrt())} for p, p0 in zip(params, initial)])
    losses = []
    module.train()
    for _ in range(steps):
        chosen = torch.randperm(len(people), generator=generator)[:batch_people]
        idx = torch.cat([rows[k][torch.randperm(len(rows[k]), generator=generator)[:batch_photos]] for k in chosen.tolist()])
        with torch.no_grad():
            ref = F.normalize(frozen(clean[idx]), dim=1)  # the same batch through the same ops: exactly g at step 0
        ec = F.normalize(module(clean[idx]), dim=1)
        ep = F.normalize(module(protected[idx]), dim=1)
        loss = pair * (1 - (ep * ref).sum(1)).mean() + keep * (1 - (ec * ref).sum(1)).mean()
        if contrast:
            loss = loss + contrast * supcon(ep, ec, labels[idx], labels[idx], temperature)
        losses.append(float(loss.detach()))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    module.eval()
    with torch.no_grad():
        drift = sum(float(((p - p0) ** 2).sum()) for p, p0 in zip(params, initial))
        drift /= sum(float((p0**2).sum()) for p0 in initial) or 1.0
    return FitResult(losses[0] if losses else float("nan"), losses[-1] if losses else float("nan"), drift,
                     time.perf_counter() - start)


def through(module: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """``module`` on ``N x F`` inputs (features or a layer's outputs) in blocks, normalised: float32 unit vectors."""
    with torch.no_grad():
        out = [F.normalize(module(torch.from_numpy(np.ascontiguousarray(x[i : i + batch], np.float32))), dim=1).numpy()
               for i in range(0, len(x), batch)]
    return np.concatenate(out).astype(np.float32) if out else np.empty((0, 0), np.float32)


class MetricHead(nn.Module):
    """The metric head on the frozen, normalised embedding: a ``D x D`` linear map from the identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


@dataclass
class _Network:
    """What the attacker trains for one target: its input (None = the normalised embedding), the
    trainable module as it starts, and a label."""

    layer: Layer | None
    start: nn.Module
    label: str


@dataclass
class TrainedAttacker(Protocol):
    """Base of the attackers that adapt the target on their own people (``learns``)."""

    learns: ClassVar[bool] = True
    prefix: ClassVar[str] = ""
    tunes_tail: ClassVar[bool] = False
    train_split: str = "train"
    train_inference: int = 10  # photos per training person the mask is crafted from (as for a test person)
    train_photos: int = 10  # protected photos per training person: what the attacker trains on
    steps: int = 300
    lr: float = 1e-2  # relative: each weight tensor's step is lr x its RMS
    temperature: float = 0.1
    contrast: float = 0.0
    pair: float = 1.0
    keep: float = 3.0
    batch_people: int = 16
    batch_photos: int = 4
    seed: int = 0

    def __post_init__(self):
        self.people: AttackerPeople | None = None
        self._networks: dict[str, _Network] = {}
        self._static: dict[str, object] = {}

    def attach(self, people: AttackerPeople) -> None:
        """The attacker's people (from the runner): their split is part of every cell key."""
        self.people = people

    def _people(self) -> AttackerPeople:
        if self.people is None:
            raise BenchError(f"protocol {self.name!r} trains an attacker: attach() its training people first")
        return self.people

    def key(self, gallery_name: str) -> str:
        split = self._people().split
        return (f"{super().key(gallery_name)}/train:{split.name}@{split.content_hash()}/steps{self.steps}/lr{self.lr:g}"
                f"/t{self.temperature:g}/contrast{self.contrast:g}/pair{self.pair:g}/keep{self.keep:g}"
                f"/batch{self.batch_people}x{self.batch_photos}/seed{self.seed}")

    def network(self, model) -> _Network:
        if model.name not in self._networks:
            split = split_tail(model) if self.tunes_tail and model.differentiable else None
            if split is None:
                label = "metric head" if not self.tunes_tail else "metric head (no torch tail)"
                net = _Network(None, MetricHead(model.embedding_dim), label)
            else:
                with torch.no_grad():
                    dim = int(split.trunk(torch.zeros(1, 3, 112, 112, device=model.device)).shape[1])
                layer = Layer(f"tail-input-{split.layers}", dim, split.trunk)
                net = _Network(layer, split.tail, split.layers)
            self._networks[model.name] = net
        return self._networks[model.name]

    def _inputs(self, cell: AttackerCell, net: _Network, photos: np.ndarray) -> np.ndarray:
        return (layer_uint8(net.layer, photos, device=cell.model.device) if net.layer is not None else
                embed_uint8(cell.model, photos))

    def fit(self, cell: AttackerCell) -> tuple[nn.Module, FitResult, int]:
        """The attacker's adapted module for this cell, trained on its own people only."""
        people, net = self._people(), self.network(cell.model)
        source = people.faces.source(people.dataset)
        clean = clean_features(cell.model, source, people.files(), progress=False, layer=net.layer)
        protected = people.protected(cell.job, cell.budget, cell.chain)
        prot = self._inputs(cell, net, np.concatenate([protected[i] for i in people.identities]))
        labels = torch.from_numpy(np.repeat(np.arange(len(people.identities)), people.counts()))
        module = copy.deepcopy(net.start).requires_grad_(True)
        result = fit_metric(module, torch.from_numpy(clean), torch.from_numpy(prot), labels, steps=self.steps, lr=self.lr,
                            temperature=self.temperature, contrast=self.contrast, pair=self.pair, keep=self.keep,
                            batch_people=self.batch_people, batch_photos=self.batch_photos,
                            seed=person_seed(cell.job.seed, f"attacker:{self.seed}"))
        return module, result, len(labels)

    def _gallery_inputs(self, cell: AttackerCell, net: _Network, clean: CleanGallery) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The clean gallery as the module reads it: the embeddings, or the layer's outputs (cached)."""
        if net.layer is None:
            return clean.distractors, clean.people
        ev = cell.evaluator
        distractors = split_features(cell.model, ev.faces, ev.gallery_split, ev.batch_size, ev.progress, layer=net.layer)
        ids = sorted(clean.people)
        files = [f for i in ids for f in ev.people.files(i, "test")]
        flat = clean_features(cell.model, ev.faces.source(ev.people.dataset), files, ev.batch_size, False, layer=net.layer)
        ends = np.cumsum([len(clean.people[i]) for i in ids])
        return distractors, dict(zip(ids, np.split(flat, ends[:-1])))

    def score(self, clean: CleanGallery, probes: dict[str, np.ndarray], cell: AttackerCell | None = None) -> dict:
        if cell is None:
            raise BenchError(f"protocol {self.name!r} trains an attacker and needs the cell (bench run passes it)")
        ids = _check_pairs(clean, probes)
        if clean.target not in self._static:
            self._static[clean.target] = identification(clean.index, clean.people, clean.people, self.ks)
        net = self.network(cell.model)
        module, fitted, n_train = self.fit(cell)  # before any test photo is looked at
        distractors, people = self._gallery_inputs(cell, net, clean)
        adapted_distractors = through(module, distractors)
        adapted_people = {i: through(module, people[i]) for i in ids}
        adapted_probes = {i: through(module, self._inputs(cell, net, cell.photos[i]) if net.layer is not None else probes[i])
                          for i in ids}
        index = make_index(cell.backend, adapted_distractors, cell.evaluator.index)
        ident = identification(index, adapted_probes, adapted_people, self.ks)
        clean_ident = identification(index, adapted_people, adapted_people, self.ks)
        p = self.prefix
        out = {"identities": len(ids), "pairs": ident.pairs}
        for k in self.ks:
            out[f"{p}_top{k}_protection"] = ident.protection(k)
            out[f"{p}_top{k}_clean_accuracy"] = clean_ident.accuracy(k)
            out[f"{p}_top{k}_clean_accuracy_static"] = self._static[clean.target].accuracy(k)
        out.update({f"{p}_layers": net.label, f"{p}_trained_parameters": sum(x.numel() for x in module.parameters()),
                    f"{p}_train_people": len(self._people().identities), f"{p}_train_photos": n_train,
                    f"{p}_train_seconds": fitted.seconds, f"{p}_loss_first": fitted.loss_first,
                    f"{p}_loss_last": fitted.loss_last, f"{p}_drift": fitted.drift})
        out.update(self.per_identity(ident, probes))
        return out


@register_protocol
@dataclass
class AdaptiveHead(TrainedAttacker):
    """Probe-side identification after a metric head on the target's embedding, trained on the attacker's own protected people."""

    name: ClassVar[str] = "adaptive-head"
    version: ClassVar[str] = "adaptive-head-v1"
    prefix: ClassVar[str] = "head"


@register_protocol
@dataclass
class AdaptiveFinetune(TrainedAttacker):
    """Probe-side identification after fine-tuning the target's last layer(s) on the attacker's own protected people."""

    name: ClassVar[str] = "adaptive-finetune"
    version: ClassVar[str] = "adaptive-finetune-v1"
    prefix: ClassVar[str] = "finetune"
    tunes_tail: ClassVar[bool] = True
