"""The profile table: where the runs of a result store spent their time, against a compute floor.

Every ``bench run`` stores one profile (``results/profiles/run-*.json``: exclusive wall seconds and
items per stage, from :mod:`bench.stage_clock`). This module sums a store's profiles by stage and puts
a **floor** beside each stage: the work the stage must do times the cheapest per-item cost of the model
that does it, measured here by :func:`unit_costs` at the best of a few batch sizes:

* ``embed:M``: images embedded x M's forward cost per image;
* ``craft:METHOD@S``: images passed through surrogate S with a gradient x S's forward+backward cost per
  image (a generator method passes none: its floor is its generator's forward, not modelled, so 0);
* ``align:D``: photos aligned x MTCNN's cost per photo on one thread / the cores (it is parallel);
* everything else (``protect``, ``score:*``, ``write``, ``masks:load``) is bookkeeping with no model
  in it: its floor is not modelled and shown as empty; the total floor counts it at its measured time,
  so the ratio "measured / floor" is never flattered by leaving work out.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .data.prepare import one_per_core
from .paths import cache_dir

BATCHES_FORWARD = (32, 128)
BATCHES_BACKWARD = (8, 32)
MTCNN_PHOTOS = 16


def seconds_per_call(fn, repeats: int = 1, sync=None) -> float:
    """Seconds per call of ``fn`` after one warm-up call (kernels chosen, caches filled); ``sync`` waits for a
    device's queued work before each clock read (CUDA)."""
    sync = sync or (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def _per_item(fn, n: int) -> float:
    return seconds_per_call(fn) / n


def measure_model_costs(name: str, device: str = "cpu") -> dict[str, float]:
    """A zoo model's cheapest seconds per image: forward only (inference mode) and forward+backward to the
    input (what crafting does), each at the best of a few batch sizes, on real LFW crops."""
    from .zoo import create_recognizer

    model = create_recognizer(name, device=device)
    faces = _sample_faces(max(BATCHES_FORWARD)).to(device)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)

    def forward(b):
        def run():
            with torch.inference_mode():
                model(faces[:b])
            sync()
        return run

    def backward(b):
        def run():
            x = faces[:b].clone().requires_grad_(True)
            model(x).sum().backward()
            sync()
        return run

    out = {"forward_s_per_image": min(_per_item(forward(b), b) for b in BATCHES_FORWARD)}
    if model.differentiable:
        out["forward_backward_s_per_image"] = min(_per_item(backward(b), b) for b in BATCHES_BACKWARD)
    return out


def measure_mtcnn_cost() -> float:
    """MTCNN's seconds per LFW photo on one thread (the aligner runs it so)."""
    from .data import open_dataset
    from .data.align import MtcnnDetector
    from .data.images import decode_rgb

    lfw = open_dataset("lfw")
    files = sorted(p for p in lfw.images_root.glob("A*/*.jpg"))[:MTCNN_PHOTOS]
    images = [decode_rgb(p.read_bytes(), p.name)[0] for p in files]
    det = MtcnnDetector()
    det.detect(images[0])
    start = time.perf_counter()
    for im in images:
        det.detect(im)
    return (time.perf_counter() - start) / len(images)


def _sample_faces(n: int) -> torch.Tensor:
    """n canonical faces: LFW's first photos, aligned (cached like every crop)."""
    from .data import open_dataset, prepare
    from .zoo.base import to_canonical

    lfw = open_dataset("lfw")
    files = sorted(str(p.relative_to(lfw.images_root)) for p in lfw.images_root.glob("A*/*.jpg"))[: max(n, 1) * 2]
    prepared = prepare(lfw, only=files, progress=False)
    usable = [f for f in files if prepared.status_of(f) in ("ok", "grayscale")][:n]
    crops = prepared.faces(usable)
    reps = int(np.ceil(n / len(crops)))
    return to_canonical(torch.from_numpy(np.concatenate([crops] * reps)[:n]))


def unit_costs(models: list[str], device: str = "cpu") -> dict:
    """Per-item costs for ``models`` and MTCNN on this machine, measured once and cached (by device and
    thread count: the same model costs differently on 1 and 2 threads)."""
    from .provenance import device_description

    where = device_description(device)
    path = cache_dir() / "unit-costs" / f"{where.replace('/', '_').replace(' ', '_')}.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in models:
        if name not in known:
            known[name] = measure_model_costs(name, device)
            changed = True
    if "mtcnn_s_per_photo" not in known:
        known["mtcnn_s_per_photo"] = measure_mtcnn_cost()
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: p.write_text(json.dumps(known, indent=1)))
    return {"device": where, "cores": os.cpu_count() or 1, **known}


def stage_floor(stage: str, items: int, costs: dict) -> float | None:
    """The stage's floor in seconds, or None where it is not modelled or its unit cost was not measured
    (a short run records none: its floor is left empty rather than measured at report time, so a report
    is a function of the stored profiles alone)."""
    kind, _, what = stage.partition(":")
    if kind == "embed":
        return items * costs[what]["forward_s_per_image"] if what in costs else None
    if kind == "craft":
        if not items:
            return 0.0  # baselines and generator methods: no image passes through a surrogate with a gradient
        sources = (what.split("@", 1)[1] if "@" in what else "").split("+")
        if not all(s in costs for s in sources):
            return None
        return items * sum(costs[s].get("forward_backward_s_per_image", costs[s]["forward_s_per_image"]) for s in sources) / len(sources)
    if kind == "align" and "mtcnn_s_per_photo" in costs:
        return items * costs["mtcnn_s_per_photo"] / one_per_core(costs.get("cores", 1))
    return None


def profile_rows(profiles: list[dict], costs: dict) -> list[dict]:
    """Stages summed over ``profiles``, slowest first, with floor and measured/floor ratio."""
    seconds: dict[str, float] = {}
    items: dict[str, int] = {}
    for prof in profiles:
        for row in prof.get("stages", []):
            seconds[row["stage"]] = seconds.get(row["stage"], 0.0) + row["seconds"]
            items[row["stage"]] = items.get(row["stage"], 0) + (row.get("items") or 0)
    rows = []
    for stage_name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        floor = stage_floor(stage_name, items[stage_name], costs)
        rows.append({"stage": stage_name, "seconds": round(s, 2), "items": items[stage_name],
                     "floor_s": None if floor is None else round(floor, 2),
                     "ratio": None if not floor else round(s / floor, 2)})
    return rows


def models_in(profiles: list[dict]) -> list[str]:
    """The zoo models whose per-image cost the profiles' floors need (embedding targets, crafting sources)."""
    names = set()
    for prof in profiles:
        for row in prof.get("stages", []):
            kind, _, what = row["stage"].partition(":")
            if kind == "embed":
                names.add(what)
            elif kind == "craft" and "@" in what:
                names.update(s for s in what.split("@", 1)[1].split("+") if s != "-")
    return sorted(names)


def recorded_costs(profiles: list[dict]) -> dict:
    """The unit costs ``profiles`` recorded on the machines that ran them (the newest wins); measures nothing."""
    costs = {}
    for prof in profiles:
        costs.update(prof.get("unit_costs") or {})
    return costs


def profile_costs(profiles: list[dict]) -> dict:
    """The recorded unit costs of ``profiles``, the missing ones measured here (cached): what ``bench records
    export`` stores, so that a report from the records never has to measure."""
    costs = recorded_costs(profiles)
    missing = [m for m in models_in(profiles) if m not in costs]
    if missing or "mtcnn_s_per_photo" not in costs:  # profiles from before unit costs were recorded, or short runs
        costs.update(unit_costs(missing, "cpu"))
    return costs


def write_profile(profiles: list[dict], out_dir: Path, costs: dict | None = None) -> Path | None:
    """``profile.csv`` (one row per stage, then a total row) from a store's run profiles; None without any.
    ``costs``: the unit costs to use (the records keep them); default :func:`recorded_costs`. A report never
    measures: a stage whose unit cost is missing gets no floor rather than one timed on the reporting machine."""
    import pandas as pd

    if not profiles:
        return None
    costs = recorded_costs(profiles) if costs is None else costs
    rows = profile_rows(profiles, costs)
    wall = sum(p.get("wall_s", 0.0) for p in profiles)
    floor = sum(r["floor_s"] if r["floor_s"] is not None else r["seconds"] for r in rows)
    rows.append({"stage": "total", "seconds": round(wall, 2), "items": len(profiles), "floor_s": round(floor, 2),
                 "ratio": round(wall / floor, 2) if floor else None})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "profile.csv"
    atomic_write(path, lambda p: pd.DataFrame(rows).to_csv(p, index=False))
    atomic_write(out_dir / "profile-unit-costs.json", lambda p: p.write_text(json.dumps(costs, indent=1)))
    return path
