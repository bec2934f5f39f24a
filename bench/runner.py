"""``bench run``: a short loop over the stages of :mod:`bench.stages`, one stored row per cell.

A cell is (split content, gallery content, source, method + config, target, budget, seed, number of
inference images, transform chain, protocol). Masks are crafted once per (split, source, method,
config, seed, n_inference) and reused for every target, budget, transform and protocol; finished
cells are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import open_dataset
from .data.splits import Split, load_split
from .errors import BenchError
from .provenance import provenance
from .search import INDEX_KINDS, check_index_kind
from .stages.attacker import AttackerCell, AttackerPeople, attacker_split, check_disjoint
from .stages.bank import MaskBank, MaskJob, person_seed, weights_of  # noqa: F401 (person_seed: public name)
from .stages.evaluator import TargetEvaluator
from .stages.faces import FaceBank
from .stages.protector import Protector
from .stages.protocols import create_protocol
from .stages.transforms import parse_chain
from .stage_clock import StageClock, cuda_sync, stage
from .store import ResultStore
from .zoo import card_of, create_recognizer, recognizer_names


# A run this long also measures its machine's per-image model costs (~30 s on 2 cores, once per machine: cached)
# for the profile's floor; shorter runs (tests, single cells) record none, and their floors stay empty.
UNIT_COSTS_AFTER_S = 600.0


@dataclass
class RunConfig:
    methods: list[str]
    sources: list[str]  # recognizer names; "a+b" is an ensemble; baselines ignore it
    targets: list[str]
    split: str = "celebrities"
    gallery_split: str = "distractors"
    budgets: list[float] = field(default_factory=lambda: [1200.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    n_inference: list[int] = field(default_factory=lambda: [10])
    backend: str = "faiss"
    index: str = "flat"  # flat (exact) | ivf | hnsw (approximate FAISS search: its own cells, see cell_key)
    ks: tuple[int, ...] = (1, 5)
    far: float = 1e-3
    device: str = "cpu"
    params: dict[str, dict] = field(default_factory=dict)  # method name -> parameter overrides
    batch_size: int = 64
    transforms: list[str] = field(default_factory=lambda: [""])  # chains such as 'jpeg:75+resize:0.5'; '' = as saved
    protocols: list[str] = field(default_factory=lambda: ["identification"])
    split_folder: str | None = None  # where the split files are (default: datasets/splits or BENCH_SPLITS)
    # person masks crafted per batched forward/backward (MaskMethod.craft_masks); 1 = one person at a time.
    # Masks agree across batch sizes to float rounding, so this is not part of a cell's key.
    craft_batch: int = 1


def network_of(name: str) -> str:
    """Two zoo entries running the same network (dlib-resnet in torch, dlib-native) are one model."""
    return card_of(name).extra.get("network", name)


def is_white_box(trained_against: list[str], target: str) -> bool:
    return network_of(target) in {network_of(s) for s in trained_against}


class Runner:
    def __init__(self, config: RunConfig, store: ResultStore | None = None, progress: bool = True):
        from methods import METHODS, create_method

        self.cfg, self.store, self.progress = config, store or ResultStore(), progress
        for m in config.methods:
            METHODS.entry(m)
        for name in {n for s in config.sources for n in s.split("+")} | set(config.targets):
            card_of(name)
        if check_index_kind(config.index) != "flat" and config.backend != "faiss":
            raise BenchError(f"--index {config.index} is a FAISS index; use --backend faiss (torch is exhaustive: --index flat)")
        self.chains = [parse_chain(t) for t in config.transforms]
        self.protocols = [create_protocol(p, config.ks, config.far) for p in config.protocols]
        self.methods = {m: create_method(m, **config.params.get(m, {})) for m in config.methods}
        for algo in self.methods.values():  # a missing or altered trained checkpoint fails now, not mid-run
            for source in config.sources if algo.needs_surrogate else ():
                algo.config(source)
        folder = Path(config.split_folder) if config.split_folder else None
        self.split: Split = load_split(config.split, folder)
        self.gallery: Split = load_split(config.gallery_split, folder)
        self.identities = self.split.identities()
        photo_level = [c.spec for c in self.chains if c.photo is not None]
        if photo_level and open_dataset(self.split.dataset).pre_aligned:
            raise BenchError(f"{', '.join(photo_level)} needs the original photos, but split {self.split.name!r} comes from "
                             f"the pre-aligned dataset {self.split.dataset!r}")
        self.faces = FaceBank([self.split, self.gallery], progress=progress)
        self._models: dict[str, torch.nn.Module] = {}
        self._evaluators: dict[str, TargetEvaluator] = {}
        self.provenance = provenance(config.device)
        self.bank = MaskBank(self.store, self.split, self.faces, self.model, config.device, self.provenance, progress,
                             people_per_batch=config.craft_batch)
        self.protector = Protector(self.split, self.faces)
        self._attackers: dict[tuple, AttackerPeople] = {}
        for protocol in self.protocols:
            if protocol.learns:
                protocol.attach(self.attacker_people(protocol.train_split, protocol.train_inference, protocol.train_photos))

    def model(self, name: str):
        if name not in self._models:
            self._models[name] = create_recognizer(name, device=self.cfg.device)
        return self._models[name]

    def attacker_people(self, train_split: str, n_inference: int, n_protected: int) -> AttackerPeople:
        """The adaptive attacker's own people (one set per configuration, shared by its protocols)."""
        spec = (train_split, n_inference, n_protected)
        if spec not in self._attackers:
            folder = Path(self.cfg.split_folder) if self.cfg.split_folder else None
            split = attacker_split(load_split(train_split, folder), n_inference, n_protected)
            check_disjoint(split, [self.split, self.gallery])
            self._attackers[spec] = AttackerPeople(split, self.store, self.model, self.cfg.device, self.provenance, self.progress)
        return self._attackers[spec]

    def evaluator(self, target: str) -> TargetEvaluator:
        if target not in self._evaluators:
            self._evaluators[target] = TargetEvaluator(target, self.model(target), self.split, self.gallery, self.faces,
                                                       self.cfg.backend, self.cfg.batch_size, self.progress, self.cfg.index)
        return self._evaluators[target]

    # the plan -----------------------------------------------------------------------------------
    def plan(self) -> list[MaskJob]:
        """Mask sets to obtain; each serves every (budget, transform, target, protocol) cell below it."""
        jobs = []
        for name in self.cfg.methods:
            algo = self.methods[name]
            sources = self.cfg.sources if algo.needs_surrogate else ["-"]
            # only person masks use inference photos: image and universal masks get n_inference 0
            n_infs = sorted({n if algo.kind == "person" else 0 for n in self.cfg.n_inference})
            jobs += [MaskJob(name, algo, s, seed, n) for s in sources for seed in self.cfg.seeds for n in n_infs]
        return jobs

    def cell_key(self, job: MaskJob, target: str, budget: float, chain: str, protocol) -> dict:
        # an approximate index names itself and its parameters in the protocol field (part of the cell id, and
        # what tables group by), so its results never mix with exact ones; flat adds nothing, so cells written
        # before --index existed keep their ids
        index = "" if self.cfg.index == "flat" else f"/index:{INDEX_KINDS[self.cfg.index]}"
        return {"split": self.split.name, "split_hash": self.split.content_hash(), "gallery_hash": self.gallery.content_hash(),
                "source": job.source, "method": job.method_name,
                "method_config": job.config_hash, "target": target,
                "weights": f"{weights_of(job.source)}->{weights_of(target)}",
                "budget": float(budget), "seed": job.seed, "n_inference": job.n_inference, "transforms": chain,
                "protocol": protocol.key(self.gallery.name) + index}

    def cells(self, job: MaskJob):
        for budget in self.cfg.budgets:
            for chain in self.chains:
                for target in self.cfg.targets:
                    for protocol in self.protocols:
                        yield budget, chain, target, protocol, self.cell_key(job, target, budget, chain.spec, protocol)

    # the loop -----------------------------------------------------------------------------------
    def run(self) -> list[dict]:
        """Every planned cell; the wall time of each stage goes to ``self.clock`` (and the store's profiles/)."""
        self.clock = StageClock(sync=cuda_sync(self.cfg.device))
        finished = False
        try:
            with self.clock:
                rows = self._run()
            finished = True
        finally:  # an interrupted run keeps the profile of what it did (without the unit-cost measurement)
            profile = self.profile()
            if finished and self.clock.wall >= UNIT_COSTS_AFTER_S:  # the floor's unit costs, on the machine that ran it
                from .run_profile import models_in, unit_costs

                profile["unit_costs"] = unit_costs(models_in([profile]), self.cfg.device)
            self.profile_path = self.store.put_profile(profile)
        return rows

    def profile(self) -> dict:
        """Where this run's time went: one row per stage (see :mod:`bench.stage_clock`)."""
        cfg = self.cfg
        return {"wall_s": round(self.clock.wall, 3), "device": cfg.device, "split": cfg.split,
                "gallery": cfg.gallery_split, "methods": cfg.methods, "sources": cfg.sources, "targets": cfg.targets,
                "budgets": cfg.budgets, "n_inference": cfg.n_inference, "transforms": cfg.transforms,
                "protocols": cfg.protocols, "provenance": self.provenance, "stages": self.clock.rows()}

    def pending(self) -> list[tuple[MaskJob, list[tuple], int]]:
        """(job, its cells not stored yet, its number of cells) for every planned job, in plan order."""
        out = []
        for job in self.plan():
            cells = list(self.cells(job))
            out.append((job, [c for c in cells if not self.store.has(c[-1])], len(cells)))
        return out

    def _run(self) -> list[dict]:
        pending = self.pending()
        bar = tqdm(total=sum(n for *_, n in pending), desc="cells", disable=not self.progress, unit="cell")
        for job, todo, n in pending:
            bar.update(n - len(todo))
            if not todo:
                continue
            for key, row in self.job_rows(job, self.bank.get(job), todo):
                with stage("write", items=1):
                    self.store.put(key, row)
                bar.update(1)
        bar.close()
        return self.planned_rows()

    def planned_rows(self) -> list[dict]:
        """The stored rows of every planned cell (this run's and earlier runs')."""
        ids = {ResultStore.cell_id(cell[-1]) for job in self.plan() for cell in self.cells(job)}
        return [r for r in self.store.rows() if r["cell"] in ids]

    def job_rows(self, job: MaskJob, masks, todo: list[tuple]):
        """(key, row) for each of ``todo`` (cells of ``job``, in :meth:`cells` order) with ``masks``, its MaskSet."""
        photos = probes = None  # the latest protected set and its features: one at a time, for memory
        for budget, chain, target, protocol, key in todo:
            if photos is None or (photos.budget, photos.transforms) != (float(budget), chain.spec):
                with stage("protect", items=self.split_test_photos):
                    photos, probes = self.protector.protect(masks.masks, budget, chain), None
            evaluator = self.evaluator(target)
            evaluator.clean  # the clean gallery (cached features, or align + embed once) is its own stage
            if probes is None or probes[0] != target:
                with stage(f"embed:{target}", items=self.split_test_photos):
                    probes = (target, evaluator.embed(photos.photos))
            with stage(f"score:{protocol.name}", items=1):
                if protocol.learns:  # the attacker rebuilds itself on its own people: it needs the cell
                    cell = AttackerCell(job, float(budget), chain, target, self.model(target), evaluator, photos.photos,
                                        self.cfg.backend)
                    scores = protocol.score(evaluator.clean, probes[1], cell)
                else:
                    scores = protocol.score(evaluator.clean, probes[1])
            yield key, {**key, **scores, **photos.quality, **masks.timing(),
                        "kind": masks.kind, "method_params": masks.config,
                        "white_box": is_white_box(job.method.trained_against(job.source), target),
                        "backend": self.cfg.backend, "provenance": self.provenance}

    @property
    def split_test_photos(self) -> int:
        return sum(len(self.split.files(i, "test")) for i in self.identities)


def default_targets() -> list[str]:
    return recognizer_names()


def default_sources() -> list[str]:
    return recognizer_names(differentiable=True)
