"""The "grating" number of masks: the share of each mask's energy above half the Nyquist frequency
(:func:`bench.metrics.high_frequency_share`), mean / min / max over the first N celebrities of LFW, per method
and source. Generator methods use their shipped checkpoints (BENCH_GENERATORS to point elsewhere). Usage:

    python tools/grating.py --people 4 --methods advcloak-convex,opom-convex --sources mobileface,dlib-resnet

White noise gives 1 - pi/16 = 0.80; a row-by-row stripe 1.0; a smooth mask ~0.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=4)
    ap.add_argument("--methods", default="noise,advcloak-convex,opom-convex")
    ap.add_argument("--sources", default="mobileface")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from bench.data import open_dataset, prepare
    from bench.data.splits import load_split
    from bench.metrics import high_frequency_share
    from bench.zoo import create_recognizer, to_canonical
    from methods import create_method

    split = load_split("celebrities")
    people = split.identities()[:args.people]
    files = {p: split.files(p, "inference") for p in people}
    prepared = prepare(open_dataset("lfw"), only=sorted(f for fs in files.values() for f in fs), progress=False)
    for source in args.sources.split(","):
        surrogate = create_recognizer(source)
        for name in args.methods.split(","):
            start = time.perf_counter()
            method = create_method(name)
            shares = [high_frequency_share(method.craft_mask(to_canonical(prepared.faces(files[p])), [surrogate],
                                                             seed=args.seed).numpy()) for p in people]
            print(json.dumps({"source": source, "method": name, "people": len(people), "mean": round(float(np.mean(shares)), 3),
                              "min": round(float(np.min(shares)), 3), "max": round(float(np.max(shares)), 3),
                              "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
