"""Regenerate tests/fixtures/tfjs_reference_<model>.npz (see README.md in this folder).

For each TFJS model: take a few aligned Glint faces from the shared folder, build the *graph input*
exactly as the torch recognizer feeds it, run the real TFJS runtime on it (node run_reference.mjs),
and store file names + input fingerprints + TFJS outputs. No image data goes into the fixture: the
test rebuilds the inputs from the shared JPEGs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.paths import data_dir, repo_root
from bench.zoo import create_recognizer

HERE = Path(__file__).resolve().parent
MODELS = ("hse-faceres", "mobileface")
N_FACES = 6
GLINT = "glint-celeb24-112"


def reference_files(n: int = N_FACES) -> list[str]:
    """First JPEG of evenly spaced identities (sorted; every 4th of 24): n faces of n people, deterministically."""
    root = data_dir() / GLINT
    people = sorted(p for p in root.iterdir() if p.is_dir())
    people = people[:: max(1, len(people) // n)][:n]
    return [str(sorted(p.glob("*.jpg"))[0].relative_to(root)) for p in people]


def load_faces(files: list[str]) -> tuple[torch.Tensor, list[str]]:
    """Canonical faces (N x 3 x 112 x 112 in [0,1]) + sha256 of each decoded RGB uint8 image."""
    root = data_dir() / GLINT
    rgb = [cv2.cvtColor(cv2.imread(str(root / f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in files]
    shas = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in rgb]
    return torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0, shas


def fixture_path(model: str) -> Path:
    return repo_root() / "tests" / "fixtures" / f"tfjs_reference_{model}.npz"


def run_tfjs(jobs: list[dict], workdir: Path) -> None:
    job_file = workdir / "jobs.json"
    job_file.write_text(json.dumps({"jobs": jobs}))
    subprocess.run(["node", str(HERE / "run_reference.mjs"), str(job_file)], cwd=HERE, check=True)


def main() -> None:
    files = reference_files()
    faces, shas = load_faces(files)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir, jobs, inputs = Path(tmp), [], {}
        for model in MODELS:
            rec = create_recognizer(model)
            with torch.no_grad():
                x = rec.graph_input(faces).permute(0, 2, 3, 1).contiguous().numpy().astype("<f4")  # TFJS wants NHWC
            inputs[model] = x
            (tmp_dir / f"{model}.in").write_bytes(x.tobytes())
            model_json = next(f for f in rec.card.files if f.name.endswith(".json")).verified_path()
            jobs.append({"model_json": str(model_json), "output": rec.card.extra["output"], "input": str(tmp_dir / f"{model}.in"),
                         "shape": list(x.shape), "result": str(tmp_dir / f"{model}.out")})
        run_tfjs(jobs, tmp_dir)
        for model, job in zip(MODELS, jobs):
            meta = json.loads(Path(job["result"] + ".json").read_text())
            out = np.frombuffer(Path(job["result"]).read_bytes(), dtype="<f4").reshape(meta["shape"])
            x = inputs[model]
            np.savez_compressed(
                fixture_path(model),
                files=np.array(files),
                pixel_sha256=np.array(shas),
                input_sum=x.astype(np.float64).sum(axis=(1, 2, 3)),  # fingerprints of the graph input
                input_abs_sum=np.abs(x.astype(np.float64)).sum(axis=(1, 2, 3)),
                output_node=np.array(job["output"]),
                tfjs_output=out,
                tfjs_version=np.array(meta["tfjs"]),
                tfjs_backend=np.array(meta["backend"]),
            )
            print(f"wrote {fixture_path(model)} ({fixture_path(model).stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
