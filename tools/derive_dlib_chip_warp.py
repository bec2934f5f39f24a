"""Derive the fixed similarity warp from the canonical ArcFace 112x112 crop to dlib's 150x150 face chip.

Why a fit: dlib's chip (``get_face_chip(img, shape5, size=150, padding=0.25)``) is placed by its
5-point model (eye corners, nose base), the canonical crop by eye centres, nose tip and mouth
corners, so the two frames are related by a per-face similarity that is nearly constant. For each of a few hundred LFW images this script computes

* A: image -> canonical 112 crop, least-squares similarity of five landmarks onto the ArcFace
  template: MTCNN's (``--landmarks mtcnn``, the pipeline's primary detector and the default) or the
  68-point model's (eye centres = mean of points 36-41 / 42-47, nose tip 30, mouth corners 48, 54);
* C: image -> chip, rebuilt exactly as dlib's ``get_mapping_to_chip`` does from the ``chip_details``
  (rect + angle) that ``get_face_chip_details`` returns (checked against ``dlib.get_face_chip``);

and fits one similarity W (112 pixel -> chip pixel, pixel centres at integer coordinates, as both
cv2 and dlib use) minimising the chip-pixel error sum_i sum_g |W(A_i(C_i^-1(g))) - g|^2 over a grid g
covering the chip (where the network looks), refitted without the worst 5% of images.
For comparison it also prints the "analytic" W from dlib's mean face shape (the template that
``get_face_chip_details`` uses for 68-point shapes), and, with ``--check``, how close dlib's
descriptor of the warped 112 crop is to its descriptor of the true chip.

Run:  .venv/bin/python tools/derive_dlib_chip_warp.py --n 400 --check 100 [--landmarks mtcnn|dlib68]
The constants printed are hard-coded in ``bench/zoo/dlib_chip.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.paths import data_dir  # noqa: E402

ARCFACE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
CANON, CHIP, PADDING = 112, 150, 0.25


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity src -> dst: [[a, -b, tx], [b, a, ty]] (linear in a, b, tx, ty)."""
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    rows = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    rhs = np.concatenate([dst[:, 0], dst[:, 1]])
    a, b, tx, ty = np.linalg.lstsq(rows, rhs, rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(m[:, :2])
    return np.hstack([inv, -inv @ m[:, 2:]])


def describe(m: np.ndarray) -> str:
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    return f"scale {scale:.5f}, rotation {angle:+.4f} deg, shift ({m[0, 2]:.4f}, {m[1, 2]:.4f})"


def chip_mapping(det) -> np.ndarray:
    """Image -> chip affine, rebuilt like dlib's get_mapping_to_chip (rect corners -> chip corners)."""
    r = det.rect
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]])
    c, s = np.cos(det.angle), np.sin(det.angle)
    rot = np.array([[c, -s], [s, c]])
    src = (corners - centre) @ rot.T + centre
    dst = np.array([[0, 0], [det.cols - 1, 0], [det.cols - 1, det.rows - 1]], dtype=np.float64)
    full = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst)  # 3 x 2: exact affine from 3 points
    return full.T


def analytic_warp() -> np.ndarray:
    """W from dlib's own 68-point mean face (interpolation.h), assuming landmarks sit on it exactly."""
    # points 17..67 of dlib's mean face (x, y in [0, 1]); only the ones we need
    mean = {
        36: (0.121737, 0.216423), 37: (0.187122, 0.178758), 38: (0.265825, 0.179852),
        39: (0.334606, 0.231733), 40: (0.260918, 0.245099), 41: (0.182743, 0.244077),
        42: (0.645647, 0.231733), 43: (0.714428, 0.179852), 44: (0.793132, 0.178758),
        45: (0.858516, 0.216423), 46: (0.79751, 0.244077), 47: (0.719335, 0.245099),
        30: (0.490127, 0.515625), 48: (0.254149, 0.780233), 54: (0.726104, 0.780233),
    }
    pts = {k: np.array(v) for k, v in mean.items()}
    five = np.stack([
        np.mean([pts[i] for i in range(36, 42)], 0), np.mean([pts[i] for i in range(42, 48)], 0),
        pts[30], pts[48], pts[54],
    ])
    template_px = (PADDING + five) / (2 * PADDING + 1) * CHIP
    # dlib maps the template square [0, size] onto chip pixels [0, size-1] about the centre:
    # template (75, 75) -> chip (74.5, 74.5), the rect being size*scale-1 wide (centered_drect)
    chip_px = template_px - 0.5
    return fit_similarity(ARCFACE, chip_px)


def load_models():
    import dlib
    import face_recognition_models as frm

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_model_location()),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
    )


def measure(paths: list[Path], landmarks: str = "mtcnn"):
    """Per image: (A image->112, C image->chip, RGB image, 5-point shape); faces dlib misses are skipped.

    ``landmarks`` places the canonical crop as the data pipeline does: "mtcnn" (its primary
    detector, bench.data.align) or "dlib68" (its fallback).
    """
    import dlib

    from bench.data.align import MtcnnDetector, nearest_to_centre

    detector, pred68, pred5 = load_models()
    mtcnn = MtcnnDetector()
    out = []
    for path in paths:
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        rects = detector(img, 1)
        if len(rects) == 0:
            continue
        centre = np.array([img.shape[1] / 2, img.shape[0] / 2])
        rect = min(rects, key=lambda r: np.hypot(r.center().x - centre[0], r.center().y - centre[1]))
        p68 = np.array([[p.x, p.y] for p in pred68(img, rect).parts()], dtype=np.float64)
        five = np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]])
        if landmarks == "mtcnn":
            faces = mtcnn.detect(img)
            if not faces:
                continue
            five = nearest_to_centre(faces, img.shape).landmarks
        shape5 = pred5(img, rect)
        a = fit_similarity(five, ARCFACE)
        c = chip_mapping(dlib.get_face_chip_details(shape5, size=CHIP, padding=PADDING))
        out.append((a, c, img, shape5))
    return out


def fit_fixed_warp(pairs, trim: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """One similarity W for all images, fitted where the network looks: chip-pixel error over the chip.

    Each chip grid point g is seen by image i at u = A_i(C_i^-1(g)) in the 112 crop; W should send u
    back to g. Least squares over all images, then once more without the worst ``trim`` fraction of
    images (landmark failures), so a few bad detections do not pull the constants.
    """
    grid = np.stack(np.meshgrid(np.linspace(15, 135, 13), np.linspace(15, 135, 13)), -1).reshape(-1, 2)
    seen = [apply(a, apply(invert(c), grid)) for a, c, *_ in pairs]

    def fit(keep: np.ndarray) -> np.ndarray:
        return fit_similarity(np.concatenate([seen[i] for i in keep]), np.concatenate([grid for _ in keep]))

    def rms(w: np.ndarray) -> np.ndarray:
        return np.array([np.sqrt(np.mean(np.sum((apply(w, u) - grid) ** 2, 1))) for u in seen])

    w = fit(np.arange(len(pairs)))
    resid = rms(w)
    w = fit(np.flatnonzero(resid <= np.quantile(resid, 1 - trim)))
    return w, rms(w)


def check_reconstruction(pairs, k: int = 20) -> float:
    """Max mean |dlib.get_face_chip - cv2.warpAffine(img, C)| over k images (validates chip_mapping)."""
    import dlib

    worst = 0.0
    for _a, c, img, shape5 in pairs[:k]:
        ref = dlib.get_face_chip(img, shape5, size=CHIP, padding=PADDING).astype(np.float64)
        mine = cv2.warpAffine(img, c, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        worst = max(worst, float(np.abs(ref - mine)[10:-10, 10:-10].mean()))
    return worst


def descriptor_agreement(pairs, warps: dict[str, np.ndarray], k: int) -> dict[str, tuple[float, float]]:
    """Cosine between dlib's descriptor of its true chip and of the chip warped from the 112 crop."""
    import dlib
    import face_recognition_models as frm

    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    true_chips, crops = [], []
    for a, _c, img, shape5 in pairs[:k]:
        true_chips.append(dlib.get_face_chip(img, shape5, size=CHIP, padding=PADDING))
        crops.append(cv2.warpAffine(img, a, (CANON, CANON), flags=cv2.INTER_LINEAR, borderValue=0))
    ref = np.array(net.compute_face_descriptor(true_chips))
    out = {}
    for name, w in warps.items():
        chips = [cv2.warpAffine(x, w, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for x in crops]
        emb = np.array(net.compute_face_descriptor(chips))
        cos = np.sum(ref * emb, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(emb, axis=1)
        out[name] = (float(cos.mean()), float(cos.min()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="LFW images to fit on")
    ap.add_argument("--check", type=int, default=0, help="images for the descriptor check (slow: dlib-bin)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--landmarks", choices=["mtcnn", "dlib68"], default="mtcnn",
                    help="which landmarks place the canonical crop (the pipeline's primary is MTCNN)")
    args = ap.parse_args()

    paths = sorted((data_dir() / "lfw" / "images").glob("*/*.jpg"))
    pick = np.random.default_rng(args.seed).choice(len(paths), size=args.n, replace=False)
    pairs = measure([paths[i] for i in sorted(pick)], args.landmarks)
    print(f"{len(pairs)} of {args.n} LFW images had a dlib detection")
    print(f"chip_mapping vs dlib.get_face_chip: worst mean |diff| {check_reconstruction(pairs):.3f} grey levels")

    fitted, resid = fit_fixed_warp(pairs)
    analytic = analytic_warp()
    print(f"fitted   W: {describe(fitted)}")
    print(f"analytic W: {describe(analytic)}")
    print(f"per-image RMS chip-pixel error of the fixed warp: median {np.median(resid):.2f}, "
          f"p90 {np.percentile(resid, 90):.2f}, max {resid.max():.2f}")
    print("fitted W as a 2x3 matrix (112 px -> chip px):")
    print(np.array2string(fitted, precision=10, separator=", "))
    if args.check:
        for name, (mean, worst) in descriptor_agreement(pairs, {"fitted": fitted, "analytic": analytic}, args.check).items():
            print(f"descriptor cosine, true chip vs {name} warp of the 112 crop ({args.check} faces): "
                  f"mean {mean:.4f}, min {worst:.4f}")


if __name__ == "__main__":
    main()
