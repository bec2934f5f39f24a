"""Stage-I (AdvFaces) settings compared at the same number of steps against one source.

For each setting, trains a stage-I generator from scratch into its own folder (the shipped checkpoints
are not touched), then measures on the held-back training identities (the trainer's validation: each
person's mask = mean generator output over 10 photos, rescaled to L2 1,200, added to 10 other photos,
saved as uint8) the cosine(protected, clean) and Top-1 protection on *every* differentiable zoo model:
white-box on the source, a cheap transfer proxy on the others. It also records the training throughput.

The benchmark's own numbers for a setting come from its checkpoint folder afterwards::

    BENCH_GENERATORS=<out>/<setting>/weights BENCH_RESULTS=<out>/<setting>/results \\
        bench run --methods advfaces-plus --source SOURCE --target all

Usage (one row per setting in ``<out>/<source>.json``)::

    python tools/stage1_sweep.py --source mobileface --steps 300 --settings cpu,width16,lr5e-4

The settings are the experiment files of ``configs/train/ablation-stage1/`` (by file name).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.paths import repo_root
from bench.training.experiment import load_experiment

# name -> training-option overrides on the cpu profile: one experiment file each (`bench train --config` runs one alone)
SETTINGS = {p.stem: load_experiment(p).options for p in sorted((repo_root() / "configs/train/ablation-stage1").glob("*.toml"))}


def transfer_rows(trainer, targets: list[str]) -> dict[str, dict[str, float]]:
    """Validation protection of the trainer's current generator on each target model."""
    from bench.training.validate import validation_protection
    from bench.zoo import create_recognizer

    inference, test = trainer.faces.validation()
    masks = trainer.masks(inference)
    out = {}
    for name in targets:
        model = trainer.surrogate if name == trainer.source else create_recognizer(name, device=trainer.device)
        out[name] = validation_protection(masks, model, inference, test)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="mobileface")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--settings", default="cpu,width16", help=f"comma-separated, from: {', '.join(SETTINGS)}")
    ap.add_argument("--targets", default="dlib-resnet,hse-faceres,mobileface")
    ap.add_argument("--out", type=Path, default=Path("results/ablation-stage1"))
    args = ap.parse_args()

    from bench.training import make_config
    from bench.training.data import TrainingFaces
    from bench.training.trainer import Trainer

    names = [s for s in args.settings.split(",") if s]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    faces = TrainingFaces.load()
    report = args.out / f"{args.source}.json"
    for name in names:
        cfg = make_config("cpu", **SETTINGS[name])
        root = args.out / name
        trainer = Trainer("advfaces", args.source, cfg, runs_root=root / "runs", checkpoints_root=root / "weights", faces=faces)
        start = time.perf_counter()
        trainer.run(steps=args.steps)
        row = {"setting": name, "source": args.source, "overrides": SETTINGS[name], "steps": trainer.step,
               "train_s": round(trainer.elapsed, 1), "images_per_s": round(trainer.step * cfg.batch_size / trainer.elapsed, 1),
               "wall_s": round(time.perf_counter() - start, 1), "final_losses": trainer.final_losses(),
               "validation": transfer_rows(trainer, args.targets.split(","))}
        # read just before writing: two sweeps of one source may run at once (each trains other settings)
        rows = json.loads(report.read_text()) if report.exists() else []
        rows = [r for r in rows if not (r["setting"] == name and r["steps"] == row["steps"])] + [row]
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(rows, indent=1))
        print(json.dumps({"setting": name, "images_per_s": row["images_per_s"],
                          **{t: (round(v["val_cos"], 3), v["val_top1_protection"]) for t, v in row["validation"].items()}}), flush=True)


if __name__ == "__main__":
    main()
