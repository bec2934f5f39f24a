"""Reading untrusted checkpoints safely (never running code from them) and loading their state dicts strictly."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import BenchError

NESTING_KEYS = ("state_dict", "model", "model_state_dict", "backbone", "net")


def _refusal(path: Path, exc: Exception) -> BenchError:
    detail = " ".join(line.strip() for line in str(exc).splitlines() if "GLOBAL" in line) or type(exc).__name__
    return BenchError(
        f"refusing to load {path}: it is a pickle that needs code beyond plain tensors to load ({detail}). "
        "Loading it could run arbitrary code, so it is never unpickled here. If you trust its origin, convert it "
        "elsewhere to a plain state dict (torch.save(model.state_dict(), ...)) or to .safetensors and register that."
    )


def read_checkpoint(path: Path) -> Any:
    """The file's content without running code from it: safetensors, or torch.load(weights_only=True)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise BenchError(f"cannot read {path} as safetensors: {exc}") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None  # no chaining: the torch message invites weights_only=False
    except Exception as exc:
        raise BenchError(f"cannot read {path} as a torch checkpoint ({type(exc).__name__}: {exc})") from exc


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A flat name -> tensor dict from a checkpoint: unwraps "state_dict"/"model"/... and a "module." prefix."""
    for _ in range(3):  # e.g. {"epoch": 3, "state_dict": {...}}, at most a few levels deep
        if _is_tensor_dict(obj) or not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not _is_tensor_dict(obj):
        what = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise BenchError(f"{path} holds {what}, not a state dict of tensors (looked under {', '.join(NESTING_KEYS)})")
    # DataParallel / DistributedDataParallel checkpoints prefix every name with "module."
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
    if len(state) != len(obj):
        raise BenchError(f"{path}: names collide after stripping the 'module.' prefix")
    return state


def _listing(keys: list[str], limit: int = 8) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], path: Path, fmt: str, hint: str = "") -> None:
    """load_state_dict(strict=True), with one error listing every missing, unexpected and mis-shaped key."""
    expected = net.state_dict()
    # BatchNorm counters only matter for training; conversions (e.g. to safetensors) often drop them
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"missing keys: {_listing(missing)}" if missing else "",
                 f"unexpected keys: {_listing(unexpected)}" if unexpected else "",
                 f"shape mismatches (file vs model): {_listing(shapes)}" if shapes else ""]
        raise BenchError(f"{path} does not match format {fmt}: " + "; ".join(p for p in parts if p) + hint)
    net.load_state_dict(state, strict=False)  # strictness checked above, bar the counters


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    return extract_state_dict(read_checkpoint(path), path)
