"""``bench cloak``: protect a person's own folder of photos, and measure offline how well it protects.

The photos of PHOTOS_DIR (directly in it, not in subfolders) are read upright (EXIF orientation
applied, colour profile converted to sRGB), their faces found and aligned by our aligner, one person
mask crafted from up to ``max_inference`` of the aligned crops (person methods; image methods craft
one per photo, universal methods use theirs), warped back into every full-resolution photo
(:mod:`bench.pipeline`) and saved to ``--out`` as PNG or JPEG, with no metadata of the originals.

Every file gets a status and one line: ``protected``, or why not (``unreadable``, ``too small``,
``too large``, ``no face``, ``several faces``). A photo with several faces is refused by default (its
protected copy would leave the other faces, and possibly the person, unprotected: crop it to one face
and run again), or with ``multi_face="main"`` only the face our aligner (and so the attacker) takes, the
one nearest the centre, is protected and the report says how many faces stayed unprotected. Nothing is
skipped silently and nothing is written for a photo that was not protected.

Protection is measured offline, per zoo model (target), as the benchmark's probe-side protocol does:
the attacker re-detects and re-aligns each *saved* protected photo and searches it among a sample of
the LFW distractors (committed split ``distractors``) plus the person's *other clean* photos; the
report gives the Top-1/Top-5 identification rate of clean photos (no protection), of protected
crops (the benchmark's crop-level number) and of the protected, saved, re-aligned photos (what a
person really gets), and the linkability rate (a protected photo found among the person's other
protected photos). Protection rate = 1 - identification rate.

The output folder follows :mod:`bench.outdir` (a manifest of what was written: foreign files are replaced
only with ``--overwrite``, stale outputs of an earlier run are removed, an unfinished folder says so),
and a folder whose photos do not look like one person to ``IDENTITY_CHECKER`` gets a warning (or, with
``--strict``, a refusal), since one person mask is crafted from all of them.

EXIF and other metadata are never printed or copied: logs and reports name files and give fixed
phrases only ("EXIF orientation 6 applied", "metadata not copied").
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write
from .budget import DEFAULT_BUDGET, protect, scale_to_budget
from .cloak_defaults import DEFAULT_METHOD, DEFAULT_SOURCE
from .data.images import BadImage
from .data.readers import printable_name
from .errors import BenchError
from .outdir import MANIFEST, OutputFolder, add_to_manifest, read_manifest
from .validate import budget as valid_budget
from .validate import plain_name
from .pipeline import (
    DEFAULT_JPEG_QUALITY, FORMATS, attacker_location, attacker_view, clean_geometry_crop, default_aligner, locate_face, photo_quality,
    protect_photo, read_photo,
)
from .pipeline.io import encode_photo

REPORT_JSON, REPORT_MD, FIGURE, VERIFY_JSON = "report.json", "report.md", "before_after.png", "verify.json"
REPORT_VERSION = 1
DEFAULT_GALLERY_SIZE = 2000
MAX_INFERENCE = 10
KS = (1, 5)


@dataclass
class PhotoResult:
    name: str  # printable file name inside PHOTOS_DIR
    status: str  # protected | unreadable | too small | too large | no face | several faces | not a file
    detail: str = ""
    output: str = ""  # file name inside --out
    size: list[int] = field(default_factory=list)  # width, height (upright)
    notes: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    sha256: str = ""  # of the output file
    used_for_mask: bool = False

    def line(self) -> str:
        if self.status == "protected":
            m = self.metrics
            extra = f"; {'; '.join(self.notes)}" if self.notes else ""
            return (f"{self.name} -> {self.output}: protected ({self.size[0]}x{self.size[1]}, SSIM {m['ssim_photo']:.4f}, "
                    f"PSNR {m['psnr_photo']:.1f} dB, re-detected: {'yes' if m.get('redetected') else 'NO'}){extra}")
        why = f" ({self.detail})" if self.detail else ""
        return f"{self.name}: NOT protected, {self.status}{why}; nothing written"


# --- the person's photos ---------------------------------------------------------------------------------

@dataclass
class _Photo:
    result: PhotoResult
    pixels: np.ndarray | None = None
    location: object = None


def _output_names(names: list[str], ext: str) -> dict[str, str]:
    """photo name -> output name (stem + extension), unique: 'a.jpg' and 'a.png' become 'a.png' and 'a_png.png'."""
    out, taken = {}, {REPORT_JSON, REPORT_MD, FIGURE, VERIFY_JSON, MANIFEST}
    for name in names:
        stem, suffix = (name.rsplit(".", 1) + [""])[:2] if "." in name[1:] else (name, "")
        # no separators, and no leading dot: an output is never hidden, never outside --out
        stem = printable_name(stem).replace("\\", "_").replace("/", "_").lstrip(".") or "photo"
        cand = stem + ext
        if cand in taken:
            cand = f"{stem}_{printable_name(suffix).lower() or 'x'}{ext}"
        i = 2
        base = cand[: -len(ext)]
        while cand in taken:
            cand, i = f"{base}_{i}{ext}", i + 1
        taken.add(cand)
        out[name] = cand
    return out


def read_folder(folder: Path, aligner, multi_face: str, echo: Callable[[str], None]) -> list[_Photo]:
    """Every entry of ``folder`` (sorted): read, upright, face located; bad ones get their status and a line."""
    photos = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = printable_name(entry.name)
        res = PhotoResult(name, "protected")
        if not entry.is_file():
            res.status, res.detail = "not a file", "a folder or special file: only the photos directly in PHOTOS_DIR are read"
            photos.append(_Photo(res))
            echo(res.line())
            continue
        try:
            loaded = read_photo(entry.read_bytes(), name)
            res.notes += loaded.notes
            if loaded.grayscale:
                res.notes.append("grayscale photo: the colour mask adds faint colour")
            h, w = loaded.pixels.shape[:2]
            res.size = [w, h]
            loc = locate_face(loaded.pixels, aligner, multi_face)
            if loc.others:
                res.notes.append(f"{len(loc.others)} other face(s) left unprotected (only the face nearest the centre is protected)")
            photos.append(_Photo(res, loaded.pixels, loc))
        except BadImage as exc:
            res.status, res.detail = exc.reason, exc.detail
            if exc.reason == "several faces":
                res.detail += "; crop it to your face, or --multi-face main protects only the face nearest the centre"
            photos.append(_Photo(res))
            echo(res.line())
        except OSError as exc:
            res.status, res.detail = "unreadable", f"cannot read the file ({type(exc).__name__})"
            photos.append(_Photo(res))
            echo(res.line())
    return photos


# --- masks ---------------------------------------------------------------------------------------------------

def check_method(method: str, source: str | None, params: dict | None = None):
    """The method object and the source to use ('-' when it needs none); checks checkpoints first."""
    from methods import create_method
    from .zoo import RECOGNIZERS

    algo = create_method(method, **(params or {}))
    if not algo.needs_surrogate:
        return algo, "-"
    if not source or source == "-":
        raise BenchError(f"method {method!r} needs a surrogate recognizer: give --source")
    for name in source.split("+"):  # an unknown name is a typo to correct, not a checkpoint to train
        RECOGNIZERS.entry(name.strip())
    algo.config(source)  # generator methods: a missing checkpoint is an error naming `bench train ...`
    return algo, source


def craft_masks(algo, source: str, crops: np.ndarray, seed: int = 0, max_inference: int = MAX_INFERENCE,
                models: dict | None = None) -> tuple[list[torch.Tensor], int]:
    """One canonical mask per crop (the person mask repeated, for person/baseline/universal methods), and
    how many crops it was crafted from."""
    from .zoo import create_recognizer
    from .zoo.base import to_canonical

    models = models if models is not None else {}
    surrogates = [] if source == "-" else [models.setdefault(s, create_recognizer(s)) for s in source.split("+")]
    faces = to_canonical(torch.from_numpy(np.ascontiguousarray(crops)))
    if algo.kind == "image":
        masks = algo.craft_mask(faces, surrogates, seed=seed).float()
        return list(masks), len(crops)
    used = faces[:1] if algo.kind == "universal" else faces[:max_inference]
    mask = algo.craft_mask(used, surrogates, seed=seed).float()
    return [mask] * len(crops), len(used)


# --- one person per folder ------------------------------------------------------------------------------

# The recognizer that judges whether a folder's photos show one person: the zoo's most accurate on LFW.
# Its threshold is the cosine that best separates LFW's 3,000 same-person from 3,000 different-person
# pairs (all 6,000 official pairs, through our own alignment): measured 0.9077 (10-fold verification
# accuracy 98.83% +- 0.41%; dlib's 128-D embeddings are not centred, so cosines of strangers are high too):
#   BENCH_CACHE=... python -c "from bench.verify import lfw_verification; from bench.zoo import create_recognizer;
#       v = lfw_verification(create_recognizer('dlib-resnet'), progress=False); print(v.accuracy, v.threshold)"
# (2026-12-04, about 20 min on 2 shared CPU cores, most of it aligning LFW's pair photos.)
IDENTITY_CHECKER = "dlib-resnet"
IDENTITY_THRESHOLD = 0.9077


def one_person_groups(embeddings: np.ndarray, threshold: float) -> list[list[int]]:
    """Photos linked when their cosine similarity reaches ``threshold``; the groups (connected components),
    largest first. One person's photos form one group (a photo needs only one look-alike among them)."""
    e = np.asarray(embeddings, np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
    linked = (e @ e.T) >= threshold
    group, groups = [-1] * len(e), []
    for i in range(len(e)):
        if group[i] >= 0:
            continue
        group[i], todo, members = len(groups), [i], []
        while todo:
            j = todo.pop()
            members.append(j)
            for k in np.flatnonzero(linked[j]):
                if group[k] < 0:
                    group[k] = group[i]
                    todo.append(int(k))
        groups.append(sorted(members))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def check_one_person(crops: list[np.ndarray], names: list[str], models: dict, strict: bool,
                     echo: Callable[[str], None]) -> dict:
    """Warn (``strict``: refuse) when the photos do not look like one person to ``IDENTITY_CHECKER``."""
    from .features import embed_uint8
    from .zoo import create_recognizer

    if len(crops) < 2:
        return {"checker": IDENTITY_CHECKER, "checked": False, "note": "one photo: nothing to compare"}
    try:
        model = models[IDENTITY_CHECKER] if IDENTITY_CHECKER in models else create_recognizer(IDENTITY_CHECKER)
    except BenchError as exc:  # e.g. no shared model weights here: say so, protect anyway
        echo(f"identity not checked: {exc}")
        return {"checker": IDENTITY_CHECKER, "checked": False, "note": str(exc)}
    models[IDENTITY_CHECKER] = model
    groups = one_person_groups(embed_uint8(model, np.stack(crops)), IDENTITY_THRESHOLD)
    outliers = sorted(names[i] for g in groups[1:] for i in g)
    result = {"checker": IDENTITY_CHECKER, "threshold": IDENTITY_THRESHOLD, "checked": True, "groups": len(groups),
              "outliers": outliers}
    if outliers:
        shown = ", ".join(outliers[:5]) + (f" and {len(outliers) - 5} more" if len(outliers) > 5 else "")
        msg = (f"{len(outliers)} of {len(names)} photos do not look like the same person as the others to "
               f"{IDENTITY_CHECKER} (cosine < {IDENTITY_THRESHOLD:g}, the threshold measured on LFW pairs): {shown}. "
               "One person mask is crafted from all of a folder's photos: put each person's photos in their own folder")
        if strict:
            raise BenchError(msg + " (--strict: nothing protected, nothing written)")
        echo(f"WARNING: {msg}")
    return result


# --- protection, measured offline ----------------------------------------------------------------------------

def identification_rates(index, probes: list[np.ndarray], gallery: np.ndarray, ks=KS) -> dict:
    """Probe-side 1:N identification of one person, with the benchmark's own scorer
    (:func:`bench.protocol.identification`, as ``bench run`` and ``bench evaluate`` score): probe i against
    gallery photo j != i among the distractors in ``index``; identified at rank k when fewer than k
    distractors score above the true match (ties go to the true match)."""
    from .protocol import identification

    t = len(gallery)
    if t < 2 or len(probes) != t:
        return {"pairs": 0, **{f"top{k}": None for k in ks}}
    ident = identification(index, {"you": np.stack(probes).astype(np.float32)}, {"you": np.asarray(gallery, np.float32)}, ks)
    return {"pairs": ident.pairs, **{f"top{k}": ident.accuracy(k) for k in ks}}


def distractor_files(gallery_size: int, seed: int = 0) -> list[str]:
    from .data.splits import load_split

    files = sorted(load_split("distractors").all_files("gallery"))
    if gallery_size >= len(files):
        return files
    return sorted(random.Random(seed).sample(files, gallery_size))


def network_of(name: str) -> str:
    from .zoo import card_of

    return card_of(name).extra.get("network", name)


def resolve_targets(targets: str) -> list[str]:
    from .zoo import card_of, recognizer_names

    names = recognizer_names() if targets in ("all", "") else [t.strip() for t in targets.split(",") if t.strip()]
    if not names:  # ',' would measure the protection against no model at all, and report it
        raise BenchError(f"--targets {targets!r} names no recognizer; give names from {', '.join(recognizer_names())}, or 'all'")
    for n in names:
        card_of(n)  # unknown names: an error listing the known ones
    return names


def measure_protection(clean_crops: np.ndarray, crop_level: np.ndarray, attacker: list,
                       targets: list[str], gallery_size: int, white_box: set[str], models: dict | None = None,
                       progress: bool = False, echo: Callable[[str], None] = print, crop_label: str = "protected crop") -> dict:
    """Per target: identification rates of clean photos, protected crops (``crop_level``: uint8 N x 112 x 112 x 3)
    and re-aligned protected photos (``attacker``: each saved photo's :class:`bench.pipeline.AttackerView`; a photo
    the attacker did not re-detect is scored at the clean geometry, as `bench run --transform realistic` scores it,
    and counted in ``not_redetected``)."""
    from .features import FaceSource, clean_features, embed_uint8
    from .search import make_index
    from .zoo import create_recognizer

    models = models if models is not None else {}
    files = distractor_files(gallery_size)
    source = FaceSource("lfw", files, progress=progress)
    out = {"gallery": {"split": "distractors", "size": len(files), "seed": 0}, "crop": crop_label, "targets": {}}
    missed = sum(not v.redetected for v in attacker)
    for target in targets:
        start = time.perf_counter()
        model = models.setdefault(target, create_recognizer(target))
        index = make_index("torch", clean_features(model, source, files, progress=progress))
        clean = embed_uint8(model, clean_crops)
        prot_crop = embed_uint8(model, crop_level)
        seen = embed_uint8(model, np.stack([v.crop for v in attacker])) if attacker else np.empty((0, clean.shape[1]))
        probes = list(seen)
        row = {
            "white_box": network_of(target) in white_box,
            "clean": identification_rates(index, list(clean), clean),
            "crop": identification_rates(index, list(prot_crop), clean),
            "photo": identification_rates(index, probes, clean),
            "linkability": identification_rates(index, list(seen), seen) if len(seen) >= 2 else None,
            "not_redetected": missed,
            "seconds": round(time.perf_counter() - start, 2),
        }
        row["protection_top1"] = None if row["photo"]["top1"] is None else 1.0 - row["photo"]["top1"]
        out["targets"][target] = row
        echo(_target_line(target, row, crop_label))
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _target_line(target: str, row: dict, crop_label: str = "protected crop") -> str:
    wb = " (white-box)" if row["white_box"] else ""
    return (f"{target}{wb}: Top-1 identified clean {_pct(row['clean']['top1'])}, {crop_label} {_pct(row['crop']['top1'])}, "
            f"protected photo {_pct(row['photo']['top1'])} -> protection {_pct(row['protection_top1'])}")


# --- the command ---------------------------------------------------------------------------------------------

INCOMPLETE_NOTE = ("# Cloak report: INCOMPLETE\n\n`bench cloak` started writing this folder and has not finished (it is "
                   "running, or was interrupted). The photos here may be a part of the folder only, and no protection "
                   "was measured. Run the same `bench cloak` command again: it replaces this folder's files.\n")


def _photo_entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise BenchError(f"cannot list {folder} ({type(exc).__name__}: {exc.strerror or exc})") from None


def cloak_folder(photos_dir, out_dir, *, method: str = DEFAULT_METHOD, source: str | None = DEFAULT_SOURCE,
                 budget: float = DEFAULT_BUDGET, fmt: str = "png", quality: int = DEFAULT_JPEG_QUALITY,
                 targets: str = "all", gallery_size: int = DEFAULT_GALLERY_SIZE, multi_face: str = "refuse",
                 params: dict | None = None, seed: int = 0, max_inference: int = MAX_INFERENCE, figure: bool = False,
                 overwrite: bool = False, strict: bool = False, echo: Callable[[str], None] = print,
                 progress: bool = False) -> dict:
    """Protect every photo of ``photos_dir`` into ``out_dir``; write report.json and report.md there.

    ``out_dir`` follows :mod:`bench.outdir`: files there that this command did not write are replaced only
    with ``overwrite``; protected copies of photos no longer in ``photos_dir`` are removed at the end."""
    photos_dir, out_dir = Path(photos_dir), Path(out_dir)
    if not photos_dir.is_dir():
        raise BenchError(f"{photos_dir} is not a folder")
    if out_dir.resolve() == photos_dir.resolve():
        raise BenchError("--out must not be the photos folder itself (the originals would be overwritten)")
    if out_dir.exists() and not out_dir.is_dir():
        raise BenchError(f"--out {out_dir} is a file, not a folder")
    if fmt not in FORMATS:
        raise BenchError(f"--format must be one of {', '.join(FORMATS)}")
    budget = valid_budget(budget)
    algo, source = check_method(method, source, params)
    target_names = resolve_targets(targets) if gallery_size > 0 else []
    entries = _photo_entries(photos_dir)
    if not entries:
        raise BenchError(f"{photos_dir} is empty: put the photos of one person directly in it")
    # every name this run may write is known before any work, so a foreign file in the way stops it now
    names = _output_names([printable_name(e.name) for e in entries if e.is_file()], FORMATS[fmt])
    out = OutputFolder(out_dir, "bench cloak", echo)
    out.check(set(names.values()) | {REPORT_JSON, REPORT_MD} | ({FIGURE} if figure else set()), overwrite)

    models: dict = {}
    aligner = default_aligner()
    photos = read_folder(photos_dir, aligner, multi_face, echo)
    good = [p for p in photos if p.pixels is not None]
    if not good:
        raise BenchError(f"no photo in {photos_dir} has a usable face: nothing to protect ({len(photos)} file(s), "
                         "each listed above with the reason)")
    identity = check_one_person([p.location.crop for p in good], [p.result.name for p in good], models, strict, echo)
    out.start(INCOMPLETE_NOTE)  # writable, and marked incomplete until the end, before the long part
    crops = np.stack([p.location.crop for p in good])
    start = time.perf_counter()
    masks, n_used = craft_masks(algo, source, crops, seed, max_inference, models)
    craft_seconds = time.perf_counter() - start
    for p in good[:n_used] if algo.kind in ("person", "baseline") else []:
        p.result.used_for_mask = True

    done, attacker, scaled = [], [], []
    for p, mask in zip(good, (scale_to_budget(m.double(), budget) for m in masks)):
        protected, info = protect_photo(p.pixels, mask, None, location=p.location)
        data = encode_photo(protected, fmt, quality)
        saved = read_photo(data).pixels  # what is written, as anyone reading it gets it
        if np.array_equal(saved, p.pixels):  # a mask that rounds away to nothing protects nothing
            p.result.status = "not changed"
            p.result.detail = (f"the mask at budget {budget:g} rounds away in the saved {fmt.upper()}: the file would equal "
                               "the original; raise --budget")
            echo(p.result.line())
            continue
        out.write_bytes(names[p.result.name], data)
        view = attacker_view(saved, p.location, aligner)  # the re-detect stage `bench run` and `bench evaluate` share
        done.append(p)
        attacker.append(view)
        scaled.append(mask)
        info.update({f"saved_{k}": v for k, v in photo_quality(p.pixels, saved, tuple(info["region"])).items()})
        metrics = {"ssim_photo": info["saved_ssim_photo"], "psnr_photo": info["saved_psnr_photo"],
                   "ssim_face": info.get("saved_ssim_face"), "redetected": view.redetected,
                   "l2_crop": info["l2_crop"], "l2_photo_expected": info["l2_photo_expected"],
                   "l2_photo": float(np.sqrt(((saved.astype(np.float64) - p.pixels) ** 2).sum())),
                   "scale": info["scale"], "region": info["region"], "detector": info["detector"],
                   "changed_pixels": int((saved != p.pixels).any(axis=2).sum()),
                   # where the attacker's re-alignment puts the mask, crop px from where it was made (detector jitter)
                   "attacker_offset_px": None if view.offset_px is None else round(view.offset_px, 3)}
        p.result.output, p.result.metrics = names[p.result.name], metrics
        p.result.sha256 = hashlib.sha256(data).hexdigest()
        echo(p.result.line())

    report = {
        "version": REPORT_VERSION,
        "photos_dir": str(photos_dir.resolve()),
        "method": method, "method_config": _jsonable(algo.config(source)), "kind": algo.kind, "source": source,
        "budget": float(budget), "format": fmt, "quality": int(quality) if fmt == "jpeg" else None,
        "multi_face": multi_face, "seed": seed, "mask_from": n_used, "craft_seconds": round(craft_seconds, 2),
        "counts": _counts(photos),
        "photos": [asdict(p.result) for p in photos],
        "identity": identity,
        "protection": None,
        "protection_note": "",
    }
    if len(done) < 2:
        report["protection_note"] = "not measured: it needs at least 2 protected photos (one is the probe, another the gallery photo)"
    elif gallery_size <= 0:
        report["protection_note"] = "not measured (--gallery-size 0)"
    else:
        kept = np.stack([p.location.crop for p in done])
        crop_level = protect(kept, torch.stack(scaled).float())
        white_box = {network_of(s) for s in algo.trained_against(source)}
        try:
            report["protection"] = measure_protection(kept, crop_level, attacker, target_names, gallery_size, white_box,
                                                      models, progress, echo)
        except BenchError as exc:  # e.g. no shared LFW copy here: the photos are protected, the report says why
            report["protection_note"] = f"not measured: {exc}"
    if report["protection_note"]:
        echo(f"protection {report['protection_note']}")
    if figure and done:
        n = min(4, len(done))
        from PIL import Image

        canvas = before_after_canvas([p.pixels for p in done[:n]], [read_photo((out_dir / p.result.output).read_bytes()).pixels
                                                                    for p in done[:n]], [p.result.name for p in done[:n]])
        out.write_with(FIGURE, lambda tmp: Image.fromarray(canvas).save(tmp, format="PNG", optimize=True))
    write_report(out_dir, report, writer=out)
    out.finish()
    if not done:
        raise BenchError(f"no photo was protected (each is listed above with the reason); report: {out_dir / REPORT_MD}")
    return report


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _counts(photos: list[_Photo]) -> dict:
    counts: dict[str, int] = {}
    for p in photos:
        counts[p.result.status] = counts.get(p.result.status, 0) + 1
    return counts


def report_json(report: dict) -> str:
    """Strict JSON: a NaN or infinity in a report is a bug to stop at, never a file other tools cannot read."""
    try:
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BenchError(f"the report holds a number that is not finite ({exc}); nothing more written") from None


def write_report(out_dir: Path, report: dict, stem: str = "report", writer: OutputFolder | None = None) -> None:
    text = report_json(report)
    if writer is not None:
        writer.write_text(f"{stem}.json", text)
        writer.write_text(f"{stem}.md", report_markdown(report))
        return
    atomic_write(out_dir / f"{stem}.json", lambda tmp: tmp.write_text(text))
    atomic_write(out_dir / f"{stem}.md", lambda tmp: tmp.write_text(report_markdown(report)))


def report_markdown(report: dict) -> str:
    lines = [f"# Cloak report", "",
             f"Method `{report['method']}` (source `{report['source']}`, {report['kind']} mask from "
             f"{report['mask_from']} photo(s)), L2 budget {report['budget']:g} on the 112x112 face crop, saved as "
             f"{report['format'].upper()}{' q' + str(report['quality']) if report.get('quality') else ''}. "
             "On the full photo the L2 is about budget / scale (scale: crop pixels per photo pixel); only the face "
             "region changes. No metadata of the originals is copied.", "",
             "These report files name your photos and hold measurements only; they are not meant to be published "
             "with the photos.", "",
             "## Photos", "",
             "| photo | status | output | size | SSIM photo | SSIM face | PSNR dB | L2 photo | scale | re-detected | notes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["photos"]:
        m = r.get("metrics") or {}
        if r["status"] == "protected":
            cells = [r["name"], "protected", r["output"], f"{r['size'][0]}x{r['size'][1]}", f"{m['ssim_photo']:.4f}",
                     "-" if m.get("ssim_face") is None else f"{m['ssim_face']:.4f}", f"{m['psnr_photo']:.1f}",
                     f"{m['l2_photo']:.0f}", f"{m['scale']:.3f}", "yes" if m["redetected"] else "**no**",
                     "; ".join(r["notes"] + (["mask crafted from it"] if r.get("used_for_mask") else []))]
        else:
            cells = [r["name"], f"**not protected: {r['status']}**", "-", "-", "-", "-", "-", "-", "-", "-", r["detail"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Protection (offline, probe-side 1:N)", ""]
    prot = report.get("protection")
    if not prot:
        lines.append(f"Protection {report.get('protection_note') or 'not measured'}.")
    else:
        g = prot["gallery"]
        lines += [f"Each protected photo, re-detected and re-aligned from the saved file, is searched among {g['size']} "
                  "LFW distractors (split `distractors`) plus one of your *other clean* photos; identified = that clean "
                  "photo ranks first (Top-1) or in the first five (Top-5). Protection = 1 - identification. *Linkability*: "
                  "the same with your other *protected* photos as the gallery (can they be matched to each other).", "",
                  "| target | clean Top-1 | protected crop Top-1 | protected photo Top-1 | protection Top-1 | "
                  "protected photo Top-5 | linkability Top-1 | not re-detected | pairs |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t, row in prot["targets"].items():
            link = row["linkability"]["top1"] if row.get("linkability") else None
            lines.append(f"| {t}{' (white-box)' if row['white_box'] else ''} | {_pct(row['clean']['top1'])} | "
                         f"{_pct(row['crop']['top1'])} | {_pct(row['photo']['top1'])} | {_pct(row['protection_top1'])} | "
                         f"{_pct(row['photo']['top5'])} | {_pct(link)} | {row['not_redetected']} | {row['photo']['pairs']} |")
    return "\n".join(lines) + "\n"


# --- verify-cloak --------------------------------------------------------------------------------------------

def verify_cloak(out_dir, *, originals=None, targets: str | None = None, gallery_size: int | None = None,
                 echo: Callable[[str], None] = print, progress: bool = False) -> dict:
    """Re-check a cloaked folder: every output listed in its report exists, is the file written (sha256),
    still shows a face to the attacker; with the originals (``originals``, else the folder the report
    names, when it still exists) also re-measure SSIM/PSNR and the protection. Writes verify.json/.md."""
    out_dir = Path(out_dir)
    report, manifest = read_cloak_report(out_dir)
    listed = [r for r in report["photos"] if r["status"] == "protected"]
    orig_dir = Path(originals) if originals else Path(report.get("photos_dir") or "")
    have_originals = bool(str(orig_dir)) and orig_dir.is_dir()
    aligner = default_aligner()
    problems, checked, attacker, clean_crops, crop_level = [], [], [], [], []
    # a file in the folder the manifest does not list was not written by `bench cloak` (a stale protected
    # photo of an older run, or anything else): the folder is not what the report describes
    for extra in sorted(set(p.name for p in out_dir.iterdir()) - set(manifest["files"]) - {MANIFEST}):
        problems.append(f"{printable_name(extra)}: not written by `bench cloak` (not in {MANIFEST}): a stale or foreign file")
        echo(problems[-1])
    for r in listed:
        out_path = out_dir / r["output"]
        entry = {"name": r["name"], "output": r["output"]}
        if not out_path.is_file():
            problems.append(f"{r['output']}: missing")
            echo(problems[-1])
            continue
        data = out_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        entry["unchanged"] = digest == r.get("sha256") == manifest["files"].get(r["output"])
        if not entry["unchanged"]:
            problems.append(f"{r['output']}: changed since `bench cloak` wrote it (sha256 differs)")
            echo(problems[-1])
        try:
            saved = read_photo(data, r["output"]).pixels
        except BadImage as exc:
            problems.append(f"{r['output']}: {exc.reason} ({exc.detail})")
            echo(problems[-1])
            continue
        # without the original there is no clean geometry to compare with: only whether a face is found at all
        entry["redetected"] = attacker_location(saved, aligner) is not None
        if have_originals and _original(orig_dir, r["name"]) is not None:
            try:
                orig = read_photo(_original(orig_dir, r["name"]).read_bytes()).pixels
                if orig.shape == saved.shape:
                    q = photo_quality(orig, saved, tuple(r["metrics"]["region"]))
                    entry.update(q)
                    before = r["metrics"]["ssim_photo"]
                    if abs(q["ssim_photo"] - before) > 1e-6:
                        problems.append(f"{r['output']}: SSIM now {q['ssim_photo']:.4f}, report says {before:.4f}")
                        echo(problems[-1])
                    loc = locate_face(orig, aligner, report.get("multi_face", "refuse"))
                    view = attacker_view(saved, loc, aligner)  # the re-detect stage `bench cloak` itself used
                    entry["redetected"] = view.redetected
                    clean_crops.append(loc.crop)
                    attacker.append(view)
                    # crop-level: what the saved file holds at the clean landmarks (no re-detection)
                    crop_level.append(clean_geometry_crop(saved, loc))
                else:
                    problems.append(f"{r['output']}: size differs from the original {r['name']}")
                    echo(problems[-1])
            except BadImage as exc:
                problems.append(f"original {r['name']}: {exc.reason}")
                echo(problems[-1])
        checked.append(entry)
        echo(f"{r['output']}: {'ok' if entry.get('unchanged') else 'CHANGED'}, re-detected: "
             f"{'yes' if entry['redetected'] else 'NO'}"
             + (f", SSIM {entry['ssim_photo']:.4f}" if "ssim_photo" in entry else ""))
    result = {"report": str(out_dir / REPORT_JSON), "checked": checked, "problems": problems, "originals": have_originals,
              "protection": None}
    if not have_originals:
        echo("originals not available (give --originals): SSIM/PSNR and protection not re-measured")
    elif len(clean_crops) >= 2:
        size = gallery_size if gallery_size is not None else ((report.get("protection") or {}).get("gallery", {}).get("size")
                                                             or DEFAULT_GALLERY_SIZE)
        if size > 0:
            algo, source = check_method(report["method"], report["source"])
            white_box = {network_of(s) for s in algo.trained_against(source)}
            crops = np.stack(clean_crops)
            result["protection"] = measure_protection(crops, np.stack(crop_level),
                                                      attacker, resolve_targets(targets or "all"), size, white_box,
                                                      None, progress, echo, "saved photo cut at the clean geometry")
    write_report_verify(out_dir, result)
    return result


def write_report_verify(out_dir: Path, result: dict) -> None:
    text = report_json(result)
    add_to_manifest(out_dir, VERIFY_JSON, lambda tmp: tmp.write_text(text))


def _original(orig_dir: Path, name: str) -> Path | None:
    """The original photo ``name`` directly in ``orig_dir``, or None (absent, or a name that is not a plain file name)."""
    if not plain_name(name):
        return None
    path = orig_dir / name
    return path if path.is_file() else None


REPORT_FIELDS = {"method": str, "source": str, "kind": str, "budget": (int, float), "format": str, "multi_face": str,
                 "photos": list, "method_config": dict}


def read_cloak_report(out_dir: Path) -> tuple[dict, dict]:
    """report.json and the manifest of a folder written by `bench cloak`, checked before it is trusted: the
    folder is complete, report.json is the one `bench cloak` wrote (sha256 in the manifest), its settings
    are valid and agree with each other (the method's config and kind), and every output it names is a
    file directly in the folder, listed in the manifest."""
    path = out_dir / REPORT_JSON
    manifest = read_manifest(out_dir)
    if manifest is None:
        if not path.exists():
            raise BenchError(f"{path} not found: is {out_dir} a folder written by `bench cloak`?")
        raise BenchError(f"{out_dir} has no readable {MANIFEST}: it was not written by this version of `bench cloak`; "
                         "run `bench cloak` again into it (with --overwrite)")
    if manifest["state"] != "complete":
        raise BenchError(f"{out_dir} is incomplete: `bench cloak` did not finish writing it (interrupted?); "
                         "run the same `bench cloak` command again")
    if not path.is_file():
        raise BenchError(f"{path} not found, though {MANIFEST} lists it: the folder was changed after `bench cloak`")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["files"].get(REPORT_JSON):
        raise BenchError(f"{path} changed since `bench cloak` wrote it (its sha256 differs from {MANIFEST}): "
                         "its method, settings and outputs cannot be trusted; run `bench cloak` again")
    try:
        report = json.loads(data, parse_constant=_no_constant)
        bad = [k for k, kind in REPORT_FIELDS.items() if not isinstance(report.get(k), kind)]
        if bad:
            raise ValueError(f"missing or mistyped field(s) {', '.join(bad)}")
        valid_budget(report["budget"], "its budget")
        if report["format"] not in FORMATS or report["multi_face"] not in ("refuse", "main"):
            raise ValueError("unknown format or multi_face")
        for r in report["photos"]:
            if not isinstance(r, dict) or not isinstance(r.get("status"), str) or not isinstance(r.get("name"), str):
                raise ValueError("a photo entry without a name and status")
            if r["status"] == "protected":
                out = r.get("output")
                if (not plain_name(out) or out not in manifest["files"]
                        or not isinstance(r.get("metrics"), dict)):
                    raise ValueError(f"output {r.get('output')!r} is not a file of this folder listed in {MANIFEST}")
    except (ValueError, BenchError) as exc:  # JSONDecodeError is a ValueError
        raise BenchError(f"{path} is not a valid cloak report ({exc})") from None
    params = {k: v for k, v in report["method_config"].items() if k not in ("method", "checkpoint", "checkpoint_sha256")}
    try:
        algo, source = check_method(report["method"], report["source"], params)
    except BenchError as exc:
        raise BenchError(f"{path}: its method and settings are not valid ({exc}); run `bench cloak` again") from None
    if _jsonable(algo.config(source)) != report["method_config"] or algo.kind != report["kind"]:
        raise BenchError(f"{path}: its method {report['method']!r} does not agree with its method_config/kind "
                         "(edited by hand?); run `bench cloak` again")
    return report, manifest


def _no_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


# --- figure ----------------------------------------------------------------------------------------------------

FIGURE_TILE = 320  # px: a larger photo is shown downscaled (area interpolation) in the figure


def _fit(img: np.ndarray) -> np.ndarray:
    import cv2

    side = max(img.shape[:2])
    if side <= FIGURE_TILE:
        return img
    size = (round(img.shape[1] * FIGURE_TILE / side), round(img.shape[0] * FIGURE_TILE / side))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def before_after_figure(originals: list[np.ndarray], protected: list[np.ndarray], path, names: list[str] | None = None,
                        amplify: float = 10.0) -> Path:
    """:func:`before_after_canvas` written as PNG to ``path``."""
    from PIL import Image

    canvas = before_after_canvas(originals, protected, names, amplify)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Image.fromarray(canvas).save(tmp, format="PNG", optimize=True))
    return path


def before_after_canvas(originals: list[np.ndarray], protected: list[np.ndarray], names: list[str] | None = None,
                        amplify: float = 10.0) -> np.ndarray:
    """A grid, one row per photo: original, protected, |difference| x ``amplify`` (black = unchanged), each
    titled. Photos up to ``FIGURE_TILE`` px are shown at their own pixels (a resampled view would smear a
    mask's row-by-row stripes and make the PNG twice as large), larger ones downscaled."""
    from PIL import Image, ImageDraw

    n = len(originals)
    if n == 0 or len(protected) != n:
        raise BenchError("before_after_figure needs as many protected photos as originals (at least one)")
    gap, head = 6, 14
    rows = []
    for i, (a, b) in enumerate(zip(originals, protected)):
        diff = np.clip(np.abs(b.astype(np.float64) - a.astype(np.float64)) * amplify, 0, 255).astype(np.uint8)
        tiles = [_fit(np.ascontiguousarray(t, np.uint8)) for t in (a, b, diff)]
        row = np.full((head + max(t.shape[0] for t in tiles), sum(t.shape[1] for t in tiles) + 2 * gap, 3), 255, np.uint8)
        xs = np.cumsum([0] + [t.shape[1] + gap for t in tiles[:-1]])
        for x, t in zip(xs, tiles):
            row[head:head + t.shape[0], x:x + t.shape[1]] = t
        img = Image.fromarray(row)
        first = f"{names[i]}: original" if names else "original"
        for x, title in zip(xs, [first, "protected", f"|difference| x{amplify:g}"]):
            ImageDraw.Draw(img).text((int(x) + 1, 1), title, fill=(0, 0, 0))
        rows.append(np.asarray(img))
    width = max(r.shape[1] for r in rows)
    canvas = np.full((sum(r.shape[0] for r in rows) + gap * (n - 1), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        canvas[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + gap
    return canvas
