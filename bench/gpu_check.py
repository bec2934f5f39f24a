"""``make gpu-check``: one prepared script for a lent GPU, writing one JSON in under ten minutes.

What it measures, each section timed and guarded (a failing section records its traceback and the
next one runs, so one CUDA bug costs one section, not the lease):

* ``environment``: the GPU, torch and CUDA versions.
* ``zoo``: per differentiable zoo model, CUDA vs CPU embeddings of the same real crops (lowest cosine:
  the CUDA kernels compute the same model) and throughput: forward-only images/s at batch 256 and
  forward+backward (gradient to the input, as crafting needs) at batch 32.
* ``alignment``: MTCNN on CUDA vs the CPU on the same LFW photos: photos/s each, and how far the
  landmarks and crops move (the cache keeps CPU crops; this says what a CUDA aligner would change).
* ``regress``: the CI regression slice (``bench regress``'s people, gallery, methods and targets) on
  CUDA, compared with the committed CPU baseline at its tolerance.
* ``default_run``: every method of the default run (gradient methods and shipped generators) from the
  three white-box sources against the three torch targets, on the regression slice's people and
  gallery, on CUDA: wall time per stage (``bench.stage_clock``), and each method's t1/t2 per source.
* ``training``: stage I (AdvFaces) and GAP at the ``paper`` profile's width, steps/s and images/s
  per source, and what the paper's 100k stage-I steps would take.

The device machine has no ``../shared``: ``python -m bench.gpu_check pack DIR`` copies the few
files the check reads (the regression slice's LFW photos, a slice of the training identities, the
zoo weights it needs) into ``DIR`` (a git-ignored staging folder, deleted after the run; never
committed), and ``BENCH_SHARED=DIR/shared`` points the check at them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write
from .run_profile import seconds_per_call

ZOO = ("dlib-resnet", "hse-faceres", "mobileface")  # the differentiable (torch) models: sources and targets here
TRAIN_IDENTITIES, TRAIN_PHOTOS, VAL_IDENTITIES = 6, 24, 2  # the training slice: enough for throughput, not for quality
DEFAULT_GRADIENT = ("none", "noise", "fi-uap", "opom-center", "opom-affine", "opom-convex")  # the Makefile's METHODS
CRAFT_BATCH = 64  # people per batched craft on the GPU (the regression slice's 8 people: one batch)
DEFAULT_GENERATORS = ("advcloak", "advcloak-center", "advcloak-affine", "advcloak-convex", "advfaces-plus", "advfaces", "gap")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str, repeats: int) -> float:
    return seconds_per_call(fn, repeats, sync=lambda: _sync(device))


# the data the check reads ---------------------------------------------------------------------
SMOKE = {"n_people": 2, "gallery_size": 40}  # --smoke: the same code on a sliver, to try the script on a CPU first


def regression_splits(folder: Path):
    from .regress import RegressionConfig, write_splits

    cfg = RegressionConfig(**(SMOKE if os.environ.get("BENCH_GPU_CHECK_SMOKE") else {}))
    write_splits(cfg, folder)
    from .data.splits import load_split
    from .regress import GALLERY, PEOPLE

    return cfg, load_split(PEOPLE, folder), load_split(GALLERY, folder)


def training_slice() -> tuple[list[str], list[str]]:
    """(training files, validation files): the first identities of the ``train`` split with enough photos."""
    from .data.splits import load_split

    sp = load_split("train")
    idents = [i for i in sp.identities() if len(sp.files(i, "train")) >= TRAIN_PHOTOS][: TRAIN_IDENTITIES + VAL_IDENTITIES]
    train = [f for i in idents[:TRAIN_IDENTITIES] for f in sp.files(i, "train")[:TRAIN_PHOTOS]]
    val = [f for i in idents[TRAIN_IDENTITIES:] for f in sp.files(i, "train")[:20]]
    return train, val


def pack(dest: Path) -> Path:
    """Copy what the check reads into ``dest``: ``dest/shared`` (a BENCH_SHARED) and ``dest/site`` (the two
    weight packages the device machine lacks: facenet-pytorch's MTCNN and dlib's ResNet .dat)."""
    import face_recognition_models
    import facenet_pytorch

    from .paths import data_dir, models_dir, shared_dir

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shared = dest / "shared"
    with tempfile.TemporaryDirectory() as tmp:
        _, people, gallery = regression_splits(Path(tmp))
        lfw = sorted({r.file for s in (people, gallery) for r in s.rows})
    train, val = training_slice()
    copies = [(data_dir() / "lfw" / "images" / f, shared / "data/lfw/images" / f) for f in lfw]
    copies += [(data_dir() / "lfw" / name, shared / "data/lfw" / name) for name in ("pairs.txt", "people.txt")]
    copies += [(data_dir() / "vggface2-subset/train" / f, shared / "data/vggface2-subset/train" / f) for f in train + val]
    copies += [(models_dir() / "human-models" / n, shared / "models/human-models" / n)
               for n in ("faceres.json", "faceres.bin", "mobileface.json", "mobileface.bin", "LICENSE")]
    copies += [(shared_dir() / "DATA.md", shared / "DATA.md")]
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    site = dest / "site"
    shutil.copytree(Path(facenet_pytorch.__file__).parent, site / "facenet_pytorch",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    frm = Path(face_recognition_models.__file__).parent
    (site / "face_recognition_models" / "models").mkdir(parents=True)
    shutil.copyfile(frm / "__init__.py", site / "face_recognition_models" / "__init__.py")
    dat = Path(face_recognition_models.face_recognition_model_location())
    shutil.copyfile(dat, site / "face_recognition_models" / "models" / dat.name)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"packed {len(copies)} files + 2 packages into {dest} ({size / 2**20:.1f} MiB)")
    return dest


# sections -------------------------------------------------------------------------------------
def environment(device: str, work: Path) -> dict:
    from .provenance import provenance

    out = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "python": platform.python_version(),
           "cpu_count": os.cpu_count(), "provenance": provenance(device),
           # the device machine gets a copy of the working tree without .git: the caller names the commit
           "commit": os.environ.get("BENCH_GIT_COMMIT") or provenance(device)["commit"]}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   multiprocessors=props.multi_processor_count)
    return out


def _crops(files: list[str], dataset: str = "lfw") -> np.ndarray:
    from .data import open_dataset, prepare

    return prepare(open_dataset(dataset), only=sorted(set(files)), progress=False).faces(files)


def zoo(device: str, work: Path) -> dict:
    from .zoo import create_recognizer
    from .zoo.base import to_canonical

    _, people, gallery = regression_splits(work / "splits")
    files = gallery.all_files()[:512]  # 40 in --smoke
    crops = torch.from_numpy(_crops(files))
    out = {}
    for name in ZOO:
        gpu, cpu = create_recognizer(name, device=device), create_recognizer(name, device="cpu")
        with torch.no_grad():
            a = cpu.embed_all(crops[:64], batch_size=64)
            b = gpu.embed_all(crops[:64], batch_size=64)
        cos = torch.nn.functional.cosine_similarity(a.double(), b.double()).min().item()
        batch = to_canonical(crops[:256]).to(device)

        def forward():
            with torch.inference_mode():
                gpu(batch)

        small = to_canonical(crops[:32]).to(device)

        def backward():
            x = small.clone().requires_grad_(True)
            gpu(x).sum().backward()

        repeats = 1 if os.environ.get("BENCH_GPU_CHECK_SMOKE") else 10
        fwd, bwd = _timed(forward, device, repeats), _timed(backward, device, repeats)
        out[name] = {"min_cosine_cuda_vs_cpu": round(cos, 7), "forward_img_per_s_b256": round(256 / fwd, 1),
                     "forward_backward_img_per_s_b32": round(32 / bwd, 1)}
    return out


def alignment(device: str, work: Path) -> dict:
    from .data import open_dataset
    from .data.align import MtcnnDetector, nearest_to_centre, warp_to_template
    from .data.images import decode_rgb

    _, people, _ = regression_splits(work / "splits")
    lfw = open_dataset("lfw")
    files = people.all_files()[: 6 if os.environ.get("BENCH_GPU_CHECK_SMOKE") else 80]
    images = [decode_rgb((lfw.images_root / f).read_bytes(), f)[0] for f in files]
    out = {"photos": len(images)}
    found = {}
    for dev in ("cpu", device):
        det = MtcnnDetector(dev)
        det.detect(images[0])  # warm-up
        _sync(dev)
        start = time.perf_counter()
        found[dev] = [det.detect(im) for im in images]
        _sync(dev)
        out[f"{dev}_photos_per_s"] = round(len(images) / (time.perf_counter() - start), 2)
    moved, crops_differ, max_grey = [], 0, 0
    for im, a, b in zip(images, found["cpu"], found[device]):
        if not a or not b:
            continue
        fa, fb = nearest_to_centre(a, im.shape), nearest_to_centre(b, im.shape)
        moved.append(float(np.abs(fa.landmarks - fb.landmarks).max()))
        ca, cb = warp_to_template(im, fa.landmarks), warp_to_template(im, fb.landmarks)
        diff = int(np.abs(ca.astype(int) - cb.astype(int)).max())
        crops_differ += diff > 0
        max_grey = max(max_grey, diff)
    out.update(landmark_shift_px_max=round(max(moved), 6) if moved else None,
               landmark_shift_px_median=round(float(np.median(moved)), 6) if moved else None,
               crops_that_differ=crops_differ, crop_max_grey_level_difference=max_grey)
    return out


def regress(device: str, work: Path) -> dict:
    from .regress import Baseline, compare, measure

    cfg, _, _ = regression_splits(work / "splits")
    start = time.perf_counter()
    measured = measure(cfg, work / "regress", device=device, backend="torch")
    baseline = Baseline.load()
    problems = compare(baseline.rates, measured, cfg.tolerance_points)
    diffs = {c: round(measured[c]["top1"] - baseline.rates[c]["top1"], 3) for c in measured if c in baseline.rates}
    return {"seconds": round(time.perf_counter() - start, 1), "passes": not problems, "problems": problems,
            "top1_minus_cpu_baseline": diffs, "measured": measured}


def default_run(device: str, work: Path) -> dict:
    from .regress import GALLERY, PEOPLE
    from .runner import RunConfig, Runner
    from .store import ResultStore

    regression_splits(work / "splits")
    out = {}
    store = ResultStore(work / "default-run")
    runs = [("gradient", list(DEFAULT_GRADIENT)), ("generators", list(DEFAULT_GENERATORS))]
    smoke = bool(os.environ.get("BENCH_GPU_CHECK_SMOKE"))
    for label, methods in runs:
        # --smoke: 2 gradient steps instead of 16, the same code paths at an eighth of the cost
        params = {m: {"steps": 2} for m in methods if smoke and (m == "fi-uap" or m.startswith("opom"))}
        cfg = RunConfig(methods=methods, sources=list(ZOO), targets=list(ZOO), split=PEOPLE, gallery_split=GALLERY,
                        split_folder=str(work / "splits"), device=device, backend="torch", params=params,
                        craft_batch=CRAFT_BATCH)
        runner = Runner(cfg, store, progress=False)
        rows = runner.run()
        out[label] = {"cells": len(rows), "profile": runner.profile()}
    timing = {}
    for r in store.rows():
        key = f"{r['method']}@{r['source']}"
        timing[key] = {"t1_s": r.get("t1"), "t2_s": r.get("t2")}
    out["timing"] = timing
    return out


def training(device: str, work: Path) -> dict:
    from .data import open_dataset, prepare
    from .training.config import make_config
    from .training.data import TrainingFaces
    from .training.trainer import Trainer

    train, val = training_slice()
    prepared = prepare(open_dataset("vggface2-train"), only=sorted(set(train + val)), progress=False)
    labels = np.repeat(np.arange(TRAIN_IDENTITIES), TRAIN_PHOTOS)
    faces = TrainingFaces(prepared.faces(train), labels, [f"id{k}" for k in range(TRAIN_IDENTITIES)],
                          prepared.faces(val), [f"val{k}" for k in range(VAL_IDENTITIES)], "gpu-check-slice")
    cfg = make_config("paper", **({"width": 8, "d_width": 8, "gap_width": 8} if os.environ.get("BENCH_GPU_CHECK_SMOKE") else {}))
    out = {"profile": "paper", "width": cfg.width, "d_width": cfg.d_width, "batch_size": cfg.batch_size}
    for method in ("advfaces", "gap"):
        for source in ZOO:
            trainer = Trainer(method, source, cfg, device=device, progress=False, faces=faces,
                              runs_root=work / "train-runs", checkpoints_root=work / "train-ckpt")
            step = lambda: trainer.one_step(0.5)  # noqa: E731
            seconds = _timed(step, device, 1 if os.environ.get("BENCH_GPU_CHECK_SMOKE") else 10)
            per_step = trainer.images_per_step()
            total = cfg.steps_for(trainer.spec.stage)
            out[f"{method}@{source}"] = {"s_per_step": round(seconds, 4), "img_per_s": round(per_step / seconds, 1),
                                         "paper_steps": total, "paper_hours": round(total * seconds / 3600, 2)}
    return out


SECTIONS: dict[str, Callable[[str, Path], dict]] = {
    # quick sections first: a lease that runs out loses the longest (the default run), not the rest
    "environment": environment, "zoo": zoo, "alignment": alignment, "training": training, "regress": regress,
    "default_run": default_run,
}


def check(out_path: Path, device: str, only: list[str] | None = None) -> dict:
    result = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))
        for name, fn in SECTIONS.items():
            if only and name not in only:
                continue
            start = time.perf_counter()
            print(f"[gpu-check] {name} ...", flush=True)
            try:
                section = {"ok": True, **fn(device, Path(tmp))}
            except Exception as exc:  # noqa: BLE001 - record and go on: one bug must not cost the other sections
                section = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            section["wall_s"] = round(time.perf_counter() - start, 2)
            result["sections"][name] = section
            print(f"[gpu-check] {name}: {'ok' if section['ok'] else section['error']} ({section['wall_s']} s)", flush=True)
            atomic_write(out_path, lambda p: p.write_text(json.dumps(result, indent=1, default=str)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    p_pack = sub.add_parser("pack", help="copy what the check reads into a staging folder for the device machine")
    p_pack.add_argument("dest", type=Path)
    p_run = sub.add_parser("run", help="run the check and write one JSON")
    p_run.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    p_run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p_run.add_argument("--only", default="", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    p_run.add_argument("--smoke", action="store_true", help="a sliver of each section (2 people, 40 gallery photos, "
                       "few repeats): to try the script on a CPU before a lease")
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.dest)
        return 0
    if args.command != "run":
        parser.print_help()
        return 2
    if args.smoke:
        os.environ["BENCH_GPU_CHECK_SMOKE"] = "1"
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; sections: {', '.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: `make gpu-check` is for a machine with a GPU (use --device cpu to try it)")
    result = check(args.out, args.device, only)
    failed = [n for n, s in result["sections"].items() if not s["ok"]]
    print(f"[gpu-check] wrote {args.out}; failed sections: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
