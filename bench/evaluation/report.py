"""The per-photo report of one ``bench evaluate``: ``evaluations/NAME.json`` and ``.md`` in the result store.

It names files and gives measurements and fixed phrases only (no metadata value, no pixels), and lists
every line the command printed about a photo it could not score or scored with a remark.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write
from .photos import Evaluated


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def write_evaluation_report(root: Path, name: str, people: dict[str, list[Evaluated]], rows: list[dict],
                            split_label: str, lines: list[str]) -> Path:
    folder = Path(root) / "evaluations"
    folder.mkdir(parents=True, exist_ok=True)
    photos = [{"person": p.person, "name": p.name, "original": p.original, "notes": p.notes,
               **{v: {k: s.record[k] for k in ("redetected", "offset_px", "l2_photo", "ssim_photo", "psnr_photo", "ssim_face")
                      if k in s.record} for v, s in p.versions.items()}}
              for ps in people.values() for p in ps]
    headline = [{k: r.get(k) for k in ("method", "target", "transforms", "top1_protection", "top5_protection",
                                        "l2_realised", "ssim_photo", "realistic_not_redetected", "cell")}
                for r in rows if str(r["protocol"]).startswith("ident")]
    report = {"tool": name, "split": split_label, "people": len(people), "photos": photos, "lines": lines,
              "identification": headline}
    text = json.dumps(report, indent=2, default=lambda x: None if x != x else float(x)) + "\n"
    atomic_write(folder / f"{name}.json", lambda tmp: tmp.write_text(text))
    md = [f"# `bench evaluate`: {name}", "",
          f"{sum(len(ps) for ps in people.values())} protected photos of {len(people)} people scored (rows filed under split "
          f"`{split_label}`). Each was re-detected and re-aligned by the attacker from the saved file, as "
          "`bench run --transform realistic` does; a photo it did not re-detect is scored at its original's face geometry.", "",
          "| tool | target | transform | Top-1 protection | Top-5 protection | crop L2 | SSIM photo | not re-detected |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in headline:
        md.append(f"| {r['method']} | {r['target']} | {r['transforms'] or 'as saved'} | {_pct(r['top1_protection'])} | "
                  f"{_pct(r['top5_protection'])} | {r['l2_realised']:.0f} | {r['ssim_photo']:.4f} | {r['realistic_not_redetected']} |")
    if lines:
        md += ["", "## Photos not scored, or scored with a remark", ""] + [f"- {line}" for line in lines]
    atomic_write(folder / f"{name}.md", lambda tmp: tmp.write_text("\n".join(md) + "\n"))
    return folder / f"{name}.md"
