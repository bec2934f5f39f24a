"""Data-parallel training under ``torchrun`` (several GPUs, or several CPU processes with gloo).

    torchrun --nproc_per_node 8 -m bench.cli train advfaces --source mobileface --profile paper

Every process builds the same networks (same seed), draws its own batches (seed + rank) and, before
each optimiser step, averages the gradients over all processes (an all-reduce per network), so the
networks stay identical and the effective batch is ``processes x batch``. Averaging gradients by hand
rather than wrapping the networks in DistributedDataParallel keeps the GAN step as it is: the
discriminator is called twice (real, fake) before one backward, which DDP's reducer does not allow.
Only rank 0 validates, writes the state and exports the checkpoint. Saving is a collective decision
(all ranks agree at a step boundary); an interrupted multi-process run resumes from its last save.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import BenchError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "World":
        """The process group torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (one process without it)."""
        try:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError:
            raise BenchError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None

    def join(self, device: torch.device) -> torch.device:
        """Join the process group (nccl on CUDA, gloo on CPU); each process takes its own GPU."""
        if self.size == 1:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def average_gradients(self, module: torch.nn.Module) -> None:
        if self.size == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(self.size)

    def any(self, *flags: bool, device: torch.device) -> list[bool]:
        """Per flag: true on any rank (one all-reduce), so every rank takes the same decision."""
        if self.size == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def gather(self, obj) -> list:
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out
