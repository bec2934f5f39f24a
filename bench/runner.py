"""``bench run``: craft masks, protect test photos, identify them with every target, store one row per cell.

A cell is (split, source, method + config, target, budget, seed, number of inference images). Masks
are crafted once per (split, source, method, config, seed, n_inference) and reused for every target
and budget; finished cells are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .budget import l2_255, protect, realised_l2, scale_to_budget
from .data.splits import Split, load_split
from .errors import BenchError
from .features import FaceSource, clean_features, embed_uint8, model_fingerprint, split_files
from .metrics import linf_255, psnr, ssim
from .protocol import identification, threshold_at_far, tpr_at_threshold
from .provenance import config_hash, provenance
from .search import make_index
from .store import ResultStore
from .zoo import card_of, create_recognizer, recognizer_names
from .zoo.base import to_canonical

PROTOCOL = "ident-v1"  # bump when the protocol's definition changes: old cells then stop matching


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
    ks: tuple[int, ...] = (1, 5)
    far: float = 1e-3
    device: str = "cpu"
    params: dict[str, dict] = field(default_factory=dict)  # method name -> parameter overrides
    batch_size: int = 64


def network_of(name: str) -> str:
    """Two zoo entries running the same network (dlib-resnet in torch, dlib-native) are one model."""
    return card_of(name).extra.get("network", name)


def is_white_box(source: str, target: str) -> bool:
    return source != "-" and network_of(target) in {network_of(s) for s in source.split("+")}


def person_seed(seed: int, identity: str) -> int:
    return int(hashlib.sha1(f"{seed}:{identity}".encode()).hexdigest()[:8], 16)


class Runner:
    def __init__(self, config: RunConfig, store: ResultStore | None = None, progress: bool = True):
        from methods import METHODS, create_method

        self.cfg, self.store, self.progress = config, store or ResultStore(), progress
        for m in config.methods:
            METHODS.entry(m)
        for name in {n for s in config.sources for n in s.split("+")} | set(config.targets):
            card_of(name)
        self.methods = {m: create_method(m, **config.params.get(m, {})) for m in config.methods}
        for algo in self.methods.values():  # a missing or altered trained checkpoint fails now, not mid-run
            for source in config.sources if algo.needs_surrogate else ():
                algo.config(source)
        self.split: Split = load_split(config.split)
        self.gallery_split: Split = load_split(config.gallery_split)
        self.test_files = split_files(self.split, "test")
        self.inference_files = split_files(self.split, "inference")
        self.identities = self.split.identities()
        self._models: dict[str, torch.nn.Module] = {}
        self._faces: FaceSource | None = None
        self._clean: dict[str, dict] = {}
        self.provenance = provenance(config.device)

    # lazily built pieces ------------------------------------------------------------------------
    @property
    def faces(self) -> FaceSource:
        if self._faces is None:
            files = self.split.all_files() + self.gallery_split.all_files()
            self._faces = FaceSource(self.split.dataset, files, progress=self.progress)
        return self._faces

    def model(self, name: str):
        if name not in self._models:
            self._models[name] = create_recognizer(name, device=self.cfg.device)
        return self._models[name]

    def clean_state(self, target: str) -> dict:
        """Distractor index, clean test features, clean accuracy and impostor scores of a target."""
        if target in self._clean:
            return self._clean[target]
        model = self.model(target)
        gallery_files = self.gallery_split.all_files()
        distractors = clean_features(model, self.faces, gallery_files, self.cfg.batch_size, self.progress)
        flat_test = [f for i in self.identities for f in self.test_files[i]]
        test = clean_features(model, self.faces, flat_test, self.cfg.batch_size, self.progress)
        clean, offset = {}, 0
        for i in self.identities:
            clean[i] = test[offset : offset + len(self.test_files[i])]
            offset += len(self.test_files[i])
        index = make_index(self.cfg.backend, distractors)
        ident = identification(index, clean, clean, self.cfg.ks)
        # verification threshold at the FAR: clean test photos against other people's photos
        threshold = threshold_at_far((test @ distractors.T).ravel(), self.cfg.far)
        state = {"index": index, "clean": clean, "clean_ident": ident, "threshold": threshold}
        self._clean[target] = state
        return state

    # masks ------------------------------------------------------------------------------------
    def n_inference_for(self, method: str, n_inf: int) -> int:
        return n_inf if self.methods[method].kind == "person" else 0  # universal masks use no photos

    @staticmethod
    def weights_of(names: str) -> str:
        return "" if names == "-" else "+".join(model_fingerprint(card_of(n)) for n in names.split("+"))

    def mask_key(self, method: str, source: str, seed: int, n_inf: int) -> dict:
        return {"split": self.cfg.split, "source": source, "source_weights": self.weights_of(source), "method": method,
                "method_config": config_hash(self.methods[method].config(source)), "seed": seed, "n_inference": n_inf}

    def masks(self, method: str, source: str, seed: int, n_inf: int) -> tuple[dict[str, torch.Tensor], dict]:
        key = self.mask_key(method, source, seed, n_inf)
        cached = self.store.load_masks(key)
        if cached is not None:
            return cached
        algo = self.methods[method]
        surrogates = [] if source == "-" else [self.model(s) for s in source.split("+")]
        masks, t1, t2 = {}, {}, []
        if algo.kind == "universal":  # one mask for everyone, crafted once (its inputs are ignored)
            first = self.identities[0]
            inputs = to_canonical(torch.from_numpy(self.faces.faces(self.inference_files[first][:1]))).to(self.cfg.device)
            start = time.perf_counter()
            universal = algo.craft(inputs, surrogates, seed=seed).float().cpu()
            t1["*"] = time.perf_counter() - start
            masks = {ident: universal.clone() for ident in self.identities}  # safetensors refuses shared storage
        for ident in tqdm([] if algo.kind == "universal" else self.identities, desc=f"craft {method} ({source})",
                          disable=not self.progress, leave=False):
            files = self.test_files[ident] if algo.kind == "image" else self.inference_files[ident][:max(n_inf, 1)]
            if algo.kind in ("person", "universal") and len(self.inference_files[ident]) < n_inf:
                raise BenchError(f"{ident} has {len(self.inference_files[ident])} inference photos, {n_inf} requested")
            inputs = to_canonical(torch.from_numpy(self.faces.faces(files))).to(self.cfg.device)
            start = time.perf_counter()
            masks[ident] = algo.craft(inputs, surrogates, seed=person_seed(seed, ident)).float().cpu()
            elapsed = time.perf_counter() - start
            if algo.kind == "image":
                t2.append(elapsed / len(files))
            else:
                t1[ident] = elapsed
        meta = {"config": algo.config(source), "kind": algo.kind, "t1": t1,
                "t2": float(np.mean(t2)) if t2 else None, "provenance": self.provenance}
        self.store.save_masks(key, masks, meta)
        return masks, meta

    # cells ------------------------------------------------------------------------------------
    def cell_key(self, method: str, source: str, target: str, budget: float, seed: int, n_inf: int) -> dict:
        return {"split": self.cfg.split, "source": source, "method": method,
                "method_config": config_hash(self.methods[method].config(source)), "target": target,
                "weights": f"{self.weights_of(source)}->{self.weights_of(target)}",
                "budget": float(budget), "seed": seed, "n_inference": n_inf,
                "protocol": f"{PROTOCOL}/{self.cfg.gallery_split}/k{','.join(map(str, self.cfg.ks))}/far{self.cfg.far}"}

    def plan(self) -> list[tuple[str, str, int, int]]:
        """(method, source, seed, n_inference) groups; each shares one set of masks."""
        groups = []
        for m in self.cfg.methods:
            sources = ["-"] if not self.methods[m].needs_surrogate else self.cfg.sources
            n_infs = sorted({self.n_inference_for(m, n) for n in self.cfg.n_inference})
            groups += [(m, s, seed, n) for s in sources for seed in self.cfg.seeds for n in n_infs]
        return groups

    def run(self) -> list[dict]:
        rows = []
        groups = self.plan()
        total = len(groups) * len(self.cfg.budgets) * len(self.cfg.targets)
        bar = tqdm(total=total, desc="cells", disable=not self.progress, unit="cell")
        for method, source, seed, n_inf in groups:
            todo = [(b, t) for b in self.cfg.budgets for t in self.cfg.targets
                    if not self.store.has(self.cell_key(method, source, t, b, seed, n_inf))]
            bar.update(len(self.cfg.budgets) * len(self.cfg.targets) - len(todo))
            if not todo:
                continue
            masks, meta = self.masks(method, source, seed, n_inf)
            for budget in self.cfg.budgets:
                targets = [t for b, t in todo if b == budget]
                if not targets:
                    continue
                protected, quality = self.protect_all(masks, budget)
                for target in targets:
                    key = self.cell_key(method, source, target, budget, seed, n_inf)
                    row = {**key, **self.evaluate(target, protected), **quality, **self.timing(meta),
                           "kind": meta["kind"], "method_params": meta["config"], "white_box": is_white_box(source, target),
                           "backend": self.cfg.backend, "provenance": self.provenance}
                    self.store.put(key, row)
                    bar.update(1)
        bar.close()
        wanted = {ResultStore.cell_id(self.cell_key(m, s, t, b, seed, n)) for m, s, seed, n in groups
                  for b in self.cfg.budgets for t in self.cfg.targets}
        rows = [r for r in self.store.rows() if r["cell"] in wanted]
        return rows

    def protect_all(self, masks: dict[str, torch.Tensor], budget: float) -> tuple[dict[str, np.ndarray], dict]:
        protected, ssims, psnrs, l2s, linfs, nominal = {}, [], [], [], [], []
        for ident in self.identities:
            clean = self.faces.faces(self.test_files[ident])
            scaled = scale_to_budget(masks[ident], budget)
            nominal.append(float(l2_255(scaled).mean()))
            out = protect(clean, scaled)
            protected[ident] = out
            ssims.append(ssim(clean, out)); psnrs.append(psnr(clean, out))
            l2s.append(realised_l2(clean, out)); linfs.append(linf_255(clean, out))
        l2 = np.concatenate(l2s)
        return protected, {
            "l2_nominal": float(np.mean(nominal)),  # 0 for the no-mask baseline
            "l2_realised": float(l2.mean()), "l2_realised_min": float(l2.min()), "l2_realised_max": float(l2.max()),
            "linf": float(np.concatenate(linfs).mean()),
            "ssim": float(np.concatenate(ssims).mean()),
            "psnr": float(np.mean([p for p in np.concatenate(psnrs) if np.isfinite(p)] or [np.inf])),
        }

    def evaluate(self, target: str, protected: dict[str, np.ndarray]) -> dict:
        state = self.clean_state(target)
        model = self.model(target)
        flat = np.concatenate([protected[i] for i in self.identities])
        feats = embed_uint8(model, flat, self.cfg.batch_size)
        probes, offset = {}, 0
        for i in self.identities:
            probes[i] = feats[offset : offset + len(protected[i])]
            offset += len(protected[i])
        ident = identification(state["index"], probes, state["clean"], self.cfg.ks)
        clean = state["clean_ident"]
        out = {"identities": len(self.identities), "pairs": ident.pairs, "far": self.cfg.far}
        for k in self.cfg.ks:
            out[f"top{k}_protection"] = ident.protection(k)
            out[f"top{k}_clean_accuracy"] = clean.accuracy(k)
        out["tpr_at_far"] = tpr_at_threshold(ident.genuine, state["threshold"])
        out["tpr_at_far_clean"] = tpr_at_threshold(clean.genuine, state["threshold"])
        # per identity: identified pairs within top k (of T x (T - 1)), for intervals over people
        out["per_identity_hits"] = {i: {str(k): ident.per_identity[i][k] for k in self.cfg.ks} for i in self.identities}
        out["per_identity_pairs"] = {i: len(protected[i]) * (len(protected[i]) - 1) for i in self.identities}
        return out

    @staticmethod
    def timing(meta: dict) -> dict:
        t1 = list(meta["t1"].values())
        return {"t1": float(np.mean(t1)) if t1 else None, "t2": meta["t2"]}


def default_targets() -> list[str]:
    return recognizer_names()


def default_sources() -> list[str]:
    return recognizer_names(differentiable=True)
