"""Stage-II ablations from one source's shipped stage-I generator: learning rate and image-wise stage II.

For each setting (an experiment file of ``configs/train/ablation-stage2/``, run by ``bench train --config``),
trains the plain AdvCloak stage II for the same number of steps into its own
checkpoint folder (the shipped checkpoints are not touched) and reports how far the generator's
weights moved from stage I and the validation protection before and after (held-back training
identities, L2 1,200). Usage:

    python tools/stage2_ablation.py --source mobileface --steps 150 --out results/ablation-stage2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.paths import repo_root

SETTINGS = sorted((repo_root() / "configs/train/ablation-stage2").glob("*.toml"))  # one experiment file per setting


def weight_change(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    keys = [k for k in wa if k.startswith("generator.") and wa[k].is_floating_point()]
    num = sum(float((wb[k].float() - wa[k].float()).square().sum()) for k in keys)
    den = sum(float(wa[k].float().square().sum()) for k in keys)
    return (num / den) ** 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mobileface")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", type=Path, default=Path("results/ablation-stage2"))
    args = ap.parse_args()
    from methods.checkpoints import SHIPPED

    stage1 = SHIPPED / args.source / "stage1.safetensors"
    rows = []
    for config in SETTINGS:
        name = config.stem
        root = args.out / name
        (root / args.source).mkdir(parents=True, exist_ok=True)
        for suffix in (".safetensors", ".json"):
            shutil.copy(stage1.with_suffix(suffix), root / args.source / f"stage1{suffix}")
        cmd = [sys.executable, "-m", "bench.cli", "train", "--config", str(config), "--source", args.source,
               "--steps", str(args.steps)]
        subprocess.run(cmd, check=True, env={**os.environ, "BENCH_GENERATORS": str(root)})
        card = json.loads((root / args.source / "advcloak.json").read_text())
        history = card["validation_history"]
        rows.append({"setting": name, "steps": card["steps"], "relative_weight_change": weight_change(stage1, root / args.source / "advcloak.safetensors"),
                     "val_top1_before": history[0]["val_top1_protection"], "val_top1_after": history[-1]["val_top1_protection"],
                     "val_cos_before": history[0]["val_cos"], "val_cos_after": history[-1]["val_cos"]})
        print(json.dumps(rows[-1]), flush=True)
    (args.out / f"{args.source}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
