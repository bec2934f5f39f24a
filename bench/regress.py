"""The CI regression of protection rates: a small fixed benchmark (a few people, a reduced distractor
gallery, three targets) whose rates are compared with a committed baseline.

A rate that moves by more than the baseline's tolerance, or a flipped ordering of two methods on a
target, fails the check with a readable diff. ``bench regress --update --reason "..."`` blesses new
rates and records why (with the commit) in the baseline's history.
"""

from __future__ import annotations

import datetime
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data.splits import load_split
from .errors import BenchError
from .paths import repo_root

BASELINE = Path("tests") / "regression_baseline.json"
PEOPLE, GALLERY = "regress-people", "regress-gallery"


@dataclass(frozen=True)
class RegressionConfig:
    people_from: str = "commons"
    n_people: int = 8
    gallery_from: str = "distractors"
    gallery_size: int = 600
    seed: int = 0
    methods: tuple[str, ...] = ("none", "noise", "opom-convex", "advcloak-convex")
    source: str = "mobileface"
    targets: tuple[str, ...] = ("mobileface", "hse-faceres", "dlib-resnet")
    budget: float = 1200.0
    # A cell has n_people x 5 x 4 = 160 pairs: one pair is 0.625 points. Re-runs on one machine are
    # bit-identical; other CPUs (BLAS kernels, thread counts) may swap a near-tie, so a rate may move
    # by this much before the check fails.
    tolerance_points: float = 2.0


def write_splits(cfg: RegressionConfig, folder: Path) -> Path:
    """The regression's people (the first ``n_people`` of ``people_from``) and gallery (a seeded sample)."""
    people = load_split(cfg.people_from)
    chosen = set(people.identities()[: cfg.n_people])
    gallery = load_split(cfg.gallery_from)
    sample = sorted(random.Random(cfg.seed).sample(range(len(gallery.rows)), cfg.gallery_size))
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in ((PEOPLE, [r for r in people.rows if r.identity in chosen]), (GALLERY, [gallery.rows[i] for i in sample])):
        lines = ["dataset,identity,role,file"] + [f"{r.dataset},{r.identity},{r.role},{r.file}" for r in rows]
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return folder


def measure(cfg: RegressionConfig, work: Path, progress: bool = False, device: str = "cpu",
            backend: str = "faiss") -> dict[str, dict[str, float]]:
    """``{"method|target": {"top1": %, "top5": %}}`` from a fresh result store under ``work`` (``device`` and
    ``backend`` for ``bench.gpu_check``: the baseline itself is measured on the CPU with FAISS)."""
    from .runner import RunConfig, Runner
    from .store import ResultStore

    folder = write_splits(cfg, work / "splits")
    run = RunConfig(methods=list(cfg.methods), sources=[cfg.source], targets=list(cfg.targets), split=PEOPLE,
                    gallery_split=GALLERY, budgets=[cfg.budget], split_folder=str(folder), device=device, backend=backend)
    rows = Runner(run, ResultStore(work / "results"), progress=progress).run()
    return {f"{r['method']}|{r['target']}": {"top1": round(100 * r["top1_protection"], 3), "top5": round(100 * r["top5_protection"], 3)}
            for r in sorted(rows, key=lambda r: (r["method"], r["target"]))}


def orderings(rates: dict[str, dict[str, float]], k: str = "top1") -> dict[str, list[str]]:
    """Per target, the methods from most to least protective (ties keep the method order)."""
    by_target: dict[str, list[tuple[float, str]]] = {}
    for cell, r in rates.items():
        method, target = cell.split("|")
        by_target.setdefault(target, []).append((r[k], method))
    return {t: [m for _, m in sorted(v, key=lambda x: -x[0])] for t, v in sorted(by_target.items())}


@dataclass
class Baseline:
    config: dict
    rates: dict[str, dict[str, float]]
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> "Baseline":
        path = path or repo_root() / BASELINE
        if not path.exists():
            raise BenchError(f"no regression baseline at {path}: run `bench regress --update --reason \"first baseline\"`")
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path | None = None) -> Path:
        path = path or repo_root() / BASELINE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def compare(baseline: dict[str, dict[str, float]], measured: dict[str, dict[str, float]], tolerance: float) -> list[str]:
    """Human-readable differences: missing/new cells, rates beyond the tolerance, flipped orderings."""
    problems = []
    for cell in sorted(set(baseline) | set(measured)):
        if cell not in measured:
            problems.append(f"{cell}: in the baseline, not measured")
            continue
        if cell not in baseline:
            problems.append(f"{cell}: measured, not in the baseline")
            continue
        for k in ("top1", "top5"):
            was, now = baseline[cell][k], measured[cell][k]
            if abs(now - was) > tolerance:
                problems.append(f"{cell} {k}: {was:.1f}% -> {now:.1f}% ({now - was:+.1f} points; tolerance {tolerance:g})")
    want, got = orderings(baseline), orderings(measured)
    for target in sorted(set(want) & set(got)):
        a, b = want[target], got[target]
        for i, m in enumerate(a):  # a pair is flipped only when both rates differ by more than the tolerance
            for n in a[i + 1:]:
                if m in b and n in b and b.index(m) > b.index(n):
                    gap = measured[f"{n}|{target}"]["top1"] - measured[f"{m}|{target}"]["top1"]
                    if gap > tolerance:
                        problems.append(f"{target}: ordering flipped, {n} now above {m} by {gap:.1f} points Top-1")
    return problems


def bless(measured: dict[str, dict[str, float]], cfg: RegressionConfig, reason: str, path: Path | None = None) -> Path:
    from .provenance import git_commit

    if not reason.strip():
        raise BenchError("--update needs --reason: say why the protection rates changed")
    commit = git_commit()
    if commit.endswith("-dirty") or commit == "unknown":
        raise BenchError(f"the checkout is not a clean commit ({commit}): commit the code first, so the baseline "
                         "records the commit that measured it")
    try:
        history = Baseline.load(path).history
    except BenchError:
        history = []
    history.append({"date": datetime.date.today().isoformat(), "commit": commit, "reason": reason.strip()})
    return Baseline(asdict(cfg), measured, history).save(path)
