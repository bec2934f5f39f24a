"""What produced a result: code version, package versions, device, and a hash of the configuration."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import lru_cache
from importlib import metadata

from .paths import checkout_root

PACKAGES = ("cloakbench", "torch", "torchvision", "numpy", "faiss-cpu", "faiss-gpu", "cvxpy", "scikit-image",
            "dlib-bin", "facenet-pytorch", "opencv-python-headless", "pandas")


def config_hash(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@lru_cache(maxsize=None)
def git_commit() -> str:
    """The checkout's commit (``-dirty`` with uncommitted changes to tracked files); for an installed package,
    ``installed:cloakbench-VERSION`` (the working directory may be another repository: its commit is not ours)."""
    root = checkout_root()
    if root is None:
        try:
            return f"installed:cloakbench-{metadata.version('cloakbench')}"
        except metadata.PackageNotFoundError:
            return "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@lru_cache(maxsize=None)
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def provenance(device: str) -> dict:
    return {"commit": git_commit(), "versions": package_versions(), "device": device_description(device)}
