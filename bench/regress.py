"""The CI regression of protection rates: a small fixed benchmark (a few people, a reduced distractor
gallery, three targets) whose rates are compared with a committed baseline.

A rate that moves by more than the baseline's tolerance, or a flipped ordering of two methods on a
target, fails the check with a readable diff. ``bench regress --update --reason "..."`` blesses new
rates and records why (with the commit) in the baseline's history.
"""

from __future__ import annotations

import datetime
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_write
from .data.splits import load_split
from .errors import BenchError
from .paths import repo_root
from .validate import finite, rate_percent

BASELINE = Path("tests") / "regression_baseline.json"
PEOPLE, GALLERY = "regress-people", "regress-gallery"


@dataclass(frozen=True)
class RegressionConfig:
    people_from: str = "commons"
    n_people: int = 8
    gallery_from: str = "distractors"
    gallery_size: int = 600
    seed: int = 0
    # advcloak-eot: the transform-robust generator (issue 21), so a change to its shipped weights or to the
    # generator path shows here too
    methods: tuple[str, ...] = ("none", "noise", "opom-convex", "advcloak-convex", "advcloak-eot")
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

    stale = sorted((work / "results" / "cells").glob("*.json")) if (work / "results" / "cells").is_dir() else []
    if stale:  # the runner would reuse them, and the check would compare old rates with themselves
        raise BenchError(f"{work} already holds {len(stale)} result cell(s) of an earlier run; they would be reused, not "
                         "measured: give an empty --work folder (or none)")
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

    @property
    def tolerance(self) -> float:
        """The baseline's own ``tolerance_points`` (checked finite and >= 0 on load)."""
        return float(self.config["tolerance_points"])

    @classmethod
    def load(cls, path: Path | None = None, cfg: RegressionConfig | None = None) -> "Baseline":
        """The baseline, checked in full before anything is measured: readable JSON, every rate a finite
        percentage, a tolerance that is a finite number >= 0, and (with ``cfg``) the configuration the
        regression runs now. Any fault is one BenchError naming the file and the first bad field."""
        path = path or repo_root() / BASELINE
        if not path.exists():
            raise BenchError(f"no regression baseline at {path}: run `bench regress --update --reason \"first baseline\"`")
        try:
            data = json.loads(path.read_text())  # NaN/Infinity parse; check() names the field holding one
            if not isinstance(data, dict) or set(data) - {"config", "rates", "history"} or not {"config", "rates"} <= set(data):
                raise ValueError("expected the keys config, rates and history")
            baseline = cls(**data)
            baseline.check(cfg)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, BenchError) as exc:  # JSONDecodeError is a ValueError
            raise BenchError(f"regression baseline {path} is not usable: {exc}; restore it from git "
                             "(`git checkout -- tests/regression_baseline.json`) or bless a new one with --update") from None
        return baseline

    def check(self, cfg: RegressionConfig | None = None) -> None:
        if not isinstance(self.config, dict) or not isinstance(self.rates, dict) or not isinstance(self.history, list):
            raise ValueError("config and rates must be objects, history a list")
        finite(self.config.get("tolerance_points"), "tolerance_points", 0.0)
        if not self.rates:
            raise ValueError("it holds no rates")
        for cell, r in self.rates.items():
            if not isinstance(cell, str) or cell.count("|") != 1 or not isinstance(r, dict) or set(r) != {"top1", "top5"}:
                raise ValueError(f"cell {cell!r} must be 'method|target' with top1 and top5")
            for k in ("top1", "top5"):
                if not isinstance(r[k], (int, float)) or isinstance(r[k], bool):
                    raise ValueError(f"{cell} {k} must be a number, got {r[k]!r}")
                rate_percent(r[k], f"{cell} {k}")
        if cfg is not None:
            want = {k: v for k, v in _config_dict(cfg).items() if k != "tolerance_points"}
            have = {k: v for k, v in self.config.items() if k != "tolerance_points"}
            if have != want:
                diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
                raise ValueError(f"its configuration differs from the regression's in {', '.join(diff)}: "
                                 "bless a new baseline with `bench regress --update --reason ...`")

    def save(self, path: Path | None = None) -> Path:
        path = path or repo_root() / BASELINE
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(asdict(self), indent=1, allow_nan=False) + "\n"))
        return path


def _config_dict(cfg: RegressionConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as the file holds them


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
            if not (math.isfinite(was) and math.isfinite(now)):  # NaN is never "within" any tolerance
                problems.append(f"{cell} {k}: {was}% -> {now}% (not a finite rate)")
            elif abs(now - was) > tolerance:
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
    target = path or repo_root() / BASELINE
    # an unusable old baseline is an error here too: its history would be lost without a word
    history = Baseline.load(path).history if target.exists() else []
    history.append({"date": datetime.date.today().isoformat(), "commit": commit, "reason": reason.strip()})
    return Baseline(_config_dict(cfg), measured, history).save(path)
