"""Re-verifying zoo models on real data (RobustBench's idea): LFW 10-fold verification accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Verification:
    accuracy: float  # mean over folds
    std: float
    fold_accuracies: list[float]
    pairs: int
    threshold: float  # best threshold on all pairs (for information)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy of ``score > t`` (candidates: midpoints of sorted scores)."""
    s = np.sort(np.unique(scores))
    cands = np.concatenate([[s[0] - 1e-6], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    acc = [((scores > t) == same).mean() for t in cands]
    return float(cands[int(np.argmax(acc))])


def kfold_verification(scores: np.ndarray, same: np.ndarray, fold_of: np.ndarray, invalid: np.ndarray | None = None) -> Verification:
    """LFW's protocol: for each fold, the threshold is chosen on the other folds and tested on it.

    ``invalid`` pairs (an image without an aligned face) count as errors, so the accuracy is always
    over every pair of the protocol.
    """
    scores, same, fold_of = np.asarray(scores, float), np.asarray(same, bool), np.asarray(fold_of)
    invalid = np.zeros(len(scores), bool) if invalid is None else np.asarray(invalid, bool)
    valid = ~invalid
    accs = []
    for f in np.unique(fold_of):
        test = fold_of == f
        train = ~test & valid
        thr = best_threshold(scores[train], same[train]) if train.any() else best_threshold(scores[valid], same[valid])
        correct = ((scores[test] > thr) == same[test]) & valid[test]
        accs.append(float(correct.mean()))
    return Verification(float(np.mean(accs)), float(np.std(accs)), accs, len(scores), best_threshold(scores[valid], same[valid]))


def lfw_pairs(lfw, per_fold: int | None = None) -> tuple[list[tuple[str, str, bool]], np.ndarray]:
    """The official pairs (all 6,000, or the first ``per_fold``/2 same + different pairs of each fold)."""
    pairs, fold_of = [], []
    for k, fold in enumerate(lfw.pairs()):
        if per_fold is not None:
            same = [p for p in fold if p[2]][: per_fold // 2]
            diff = [p for p in fold if not p[2]][: per_fold // 2]
            fold = same + diff
        pairs += fold
        fold_of += [k] * len(fold)
    return pairs, np.array(fold_of)


def lfw_verification(model, per_fold: int | None = None, batch_size: int = 64, progress: bool = True) -> Verification:
    """LFW verification accuracy of ``model`` through our own alignment (every pair image must align)."""
    from .data import open_dataset
    from .features import FaceSource, clean_features

    lfw = open_dataset("lfw")
    pairs, fold_of = lfw_pairs(lfw, per_fold)
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    source = FaceSource("lfw", files, progress=progress)
    usable = [f for f in files if source.prepared.status_of(f) in ("ok", "grayscale")]
    feats = clean_features(model, source, usable, batch_size, progress)
    by_file = dict(zip(usable, feats))
    invalid = np.array([a not in by_file or b not in by_file for a, b, _ in pairs])
    scores = np.array([float(np.dot(by_file[a], by_file[b])) if ok else np.nan for (a, b, _), ok in zip(pairs, ~invalid)])
    same = np.array([s for _, _, s in pairs])
    return kfold_verification(scores, same, fold_of, invalid)
