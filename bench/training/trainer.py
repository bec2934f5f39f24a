"""The training loop of every generator method: build or resume, step, validate, save, export.

A run lives in ``results/training/<source>/<checkpoint>-<config hash>/`` (``state.pt``: networks,
optimisers, the sampler's RNG state, step, elapsed time and the loss log). It is saved every
``save_every_s`` seconds, on Ctrl-C / SIGTERM and at the end, so killing ``bench train`` and running the
same command again continues where it stopped, drawing the same batches. ``--minutes`` counts the
run's total training time across resumes, so a rerun of a finished command does no more work.

When the run reaches its steps (or minutes) the generator is exported as a checkpoint with its card
(``methods/checkpoints.py``), with a loss-log CSV and a loss-curve PNG beside it.

A fresh clone has the exported checkpoints but no ``state.pt``: asking for more steps of a run whose
checkpoint was made by exactly this configuration (the card's ``run`` id) continues from the
checkpoint's weights and step count instead of starting over (recorded as ``continued_from`` in the
new card). That continuation is not bit-identical to an uninterrupted run: Adam's moments restart,
the sampler draws a fresh seeded sequence, and a stage-II run's discriminator restarts from stage I's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from methods import METHODS
from methods.checkpoints import Checkpoint, checkpoint_root
from methods.generative import GeneratorMethod, TrainingSpec

from ..atomic import atomic_write
from ..errors import BenchError
from ..features import model_fingerprint
from ..paths import results_dir
from ..provenance import config_hash, provenance
from ..zoo.ensemble import create_surrogate
from .config import TrainConfig
from .data import TrainingFaces
from .distributed import World
from .stages import STAGES
from .steps import Nets
from .validate import validation_protection

STOPPING_FIELDS = ("stage1_steps", "stage2_steps", "gap_steps", "save_every_s", "val_every", "snapshots")  # do not define the run
LOG_EVERY = 10  # steps averaged per row of the committed loss log


def spec_of(method: str) -> TrainingSpec:
    cls = METHODS.entry(method).factory
    if not (isinstance(cls, type) and issubclass(cls, GeneratorMethod)):
        trainable = sorted(n for n in METHODS.names() if issubclass(METHODS.entry(n).factory, GeneratorMethod))
        raise BenchError(f"method {method!r} is not trained; trainable methods: {', '.join(trainable)}")
    return cls.training


def check_method_options(method: str, cfg: TrainConfig) -> None:
    """A method defined by training options (``GeneratorMethod.training_options``) trains only with them."""
    wanted = METHODS.entry(method).factory.training_options
    missing = {k: v for k, v in wanted.items() if getattr(cfg, k) != v}
    if missing:
        sets = " ".join(f"--set {k}={str(v).lower()}" for k, v in missing.items())
        raise BenchError(f"{method} is trained with {', '.join(f'{k}={v}' for k, v in missing.items())}: add {sets} "
                         f"(or use its experiment file under configs/train/)")


# options added after checkpoints shipped: they define a run only when set, so the shipped cards' run ids (and
# continuing those runs) stay valid
ADDED_OPTIONS = {"stage2_budget": 0.0, "eot_stage1": False, "eot_stage2": False, "eot_strength": 1.0}
# likewise for TrainingSpec fields added later: they count only when they differ from what every earlier spec meant
ADDED_SPEC_FIELDS = {"starts_from": "stage1"}


def _defining(fields: dict, added: dict) -> dict:
    return {k: v for k, v in fields.items() if not (k in added and v == added[k])}


def run_id(spec: TrainingSpec, source: str, cfg: TrainConfig) -> str:
    defining = _defining({k: v for k, v in dataclasses.asdict(cfg).items() if k not in STOPPING_FIELDS}, ADDED_OPTIONS)
    spec_fields = _defining(dataclasses.asdict(spec), ADDED_SPEC_FIELDS)
    return f"{spec.checkpoint}-{config_hash({'spec': spec_fields, 'source': source, **defining})[:10]}"


@contextmanager
def _stop_requests():
    """SIGTERM (a scheduler, `kill`) and a first Ctrl-C ask the loop to stop after the step in progress: an
    exception raised mid-step could land after the optimiser's update but before the step is counted, and
    the saved state would then replay that step on resume. A second Ctrl-C stops at once (from the last
    periodic save). Yields the list of signals received so far."""
    received: list[int] = []

    def handler(signum, frame):
        if signum == signal.SIGINT and signal.SIGINT in received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, method: str, source: str, cfg: TrainConfig, *, device: str = "cpu", progress: bool = True,
                 runs_root: Path | None = None, checkpoints_root: Path | None = None, faces: TrainingFaces | None = None):
        self.spec = spec_of(method)
        check_method_options(method, cfg)
        self.stage = STAGES.create(self.spec.stage, cfg=cfg)
        self.world = World.from_env()
        self.method, self.source, self.cfg, self.progress = method, source, cfg, progress and self.world.main
        self.device = self.world.join(torch.device(device))
        self.ckpt_root = checkpoints_root or checkpoint_root()
        self.run_dir = (runs_root or results_dir() / "training") / source / run_id(self.spec, source, cfg)
        self.surrogate = create_surrogate(source, device=self.device)  # "a+b": the mean-cosine ensemble
        if not self.surrogate.differentiable:
            raise BenchError(f"{source!r} is black-box: a generator can only be trained against a differentiable model")
        self.faces = faces or TrainingFaces.load(val_identities=cfg.val_identities, seed=cfg.seed, progress=self.progress)
        self.rng = torch.Generator().manual_seed(cfg.seed + self.world.rank)  # each process draws its own batches
        self.step, self.elapsed, self.log, self.validations = 0, 0.0, [], []
        self.started_from: dict | None = None
        self.continued_from: dict | None = None
        self.nets = self._build()
        self._resume()

    # networks -----------------------------------------------------------------------------------
    def _build(self) -> Nets:
        torch.manual_seed(self.cfg.seed)
        nets, self.started_from = self.stage.build(self)
        return nets

    def _modules(self) -> dict[str, object]:
        out = {"generator": self.nets.generator, "opt_g": self.nets.opt_g}
        if self.nets.discriminator is not None:
            out.update(discriminator=self.nets.discriminator, opt_d=self.nets.opt_d)
        return out

    # state --------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.pt"

    def save_state(self) -> None:
        """Collective under torchrun (every rank's sampler state is gathered); rank 0 writes."""
        rngs = self.world.gather(self.rng.get_state())
        if not self.world.main:
            return
        state = {k: m.state_dict() for k, m in self._modules().items()}
        state.update(step=self.step, elapsed=self.elapsed, rng=rngs[0] if self.world.size == 1 else rngs, log=self.log,
                     validations=self.validations, started_from=self.started_from, continued_from=self.continued_from)
        atomic_write(self.state_path, lambda tmp: torch.save(state, tmp))

    def _checkpoint(self, root: Path | None = None) -> Checkpoint:
        return Checkpoint(self.source, self.spec.checkpoint, self.spec.trainer or self.method, root or self.ckpt_root)

    def snapshot_root(self, step: int) -> Path:
        """A ``BENCH_GENERATORS``-style folder holding the generator as it was at ``step``."""
        return self.run_dir / "snapshots" / f"step-{step:06d}"

    def _on_current_stage1(self, started_from: dict | None) -> bool:
        """A stage-II run continues only on top of the stage I it started from (the run id does not hold it)."""
        return not self.stage.starts_from_stage1 or (started_from or {}).get("sha256") == self.started_from["sha256"]

    def _check_same_stage1(self, started_from: dict | None, where: Path) -> None:
        if not self._on_current_stage1(started_from):
            raise BenchError(f"{where} continues a stage-II run that started from another stage-I generator "
                             f"(sha256 {str((started_from or {}).get('sha256'))[:12]}..., now {self.started_from['sha256'][:12]}...); "
                             f"delete {self.run_dir} (and that checkpoint) to train stage II again from the current stage I")

    def _resume(self) -> None:
        if not self.state_path.exists():
            self._continue_from_checkpoint()
            return
        try:  # weights_only: a state file is data, never code
            state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise BenchError(f"cannot resume from {self.state_path} ({type(exc).__name__}: {exc}); "
                             f"delete that folder to start this training run again") from None
        for k, m in self._modules().items():
            m.load_state_dict(state[k])
        self.step, self.elapsed, self.log = int(state["step"]), float(state["elapsed"]), list(state["log"])
        self._check_same_stage1(state["started_from"], self.state_path)
        self.validations, self.started_from = list(state["validations"]), state["started_from"]
        self.continued_from = state.get("continued_from")
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(rngs) != self.world.size:
            raise BenchError(f"{self.state_path} was saved by {len(rngs)} process(es); resume it with as many "
                             f"(this run has {self.world.size})")
        self.rng.set_state(rngs[self.world.rank])

    def _continue_from_checkpoint(self) -> None:
        ckpt = self._checkpoint()
        if not ckpt.exists():
            return
        card = ckpt.card()
        if card.get("run") != self.run_dir.name or int(card.get("world_size", 1)) != self.world.size:
            return  # made by another configuration: this run starts from scratch
        if not self._on_current_stage1(card.get("started_from")):
            return  # stage II of an older stage I: retrain it on top of the current one
        self.nets.generator.load_state_dict(ckpt.load("generator."))
        if self.stage.ships_discriminator:
            self.nets.discriminator.load_state_dict(ckpt.load("discriminator."))
        self.step, self.elapsed = int(card["steps"]), float(card["wall_time_s"])
        self.validations = list(card["validation_history"])
        self.log = self._read_log(ckpt.folder / f"{self.spec.checkpoint}.log.csv")
        self.continued_from = {"checkpoint": f"{self.source}/{self.spec.checkpoint}", "steps": self.step, "sha256": ckpt.sha256()}
        # a fresh seeded sequence: replaying the first batches of the run would be the one thing worse than a new draw
        self.rng.manual_seed(self.cfg.seed + self.world.rank + 1_000_003 * self.step)

    @staticmethod
    def _read_log(path: Path) -> list[dict]:
        """The exported loss log (10-step means) as log rows, so the curves and final losses carry on."""
        import pandas as pd

        if not path.is_file():
            return []
        df = pd.read_csv(path)
        if "loss_g" not in df:
            return []
        keep = [c for c in df.columns if not c.startswith("val_")]
        return [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()}
                for row in df.loc[df["loss_g"].notna(), keep].to_dict("records")]

    # one step -----------------------------------------------------------------------------------
    def variant_at(self, progress: float) -> str:
        """``progress``: the share of the run done (of its steps or of its minutes, whichever binds)."""
        if self.spec.variant == "convex" and progress < self.stage.config.convex_warmup:
            return "center"  # the official code's class-centre warm-up: a start inside the hull has no gradient
        return self.spec.variant

    def one_step(self, progress: float) -> dict[str, float]:
        return self.stage.step(self, progress)

    def images_per_step(self) -> int:
        return self.stage.images_per_step

    @torch.no_grad()
    def masks(self, inference: torch.Tensor) -> torch.Tensor:
        """One mask per held-back person, as the method crafts it."""
        g = self.nets.generator
        g.eval()
        try:
            return self.stage.masks(g, inference, self.device)
        finally:
            g.train()

    def validate(self) -> dict[str, float] | None:
        """Rank 0 only (the others go on to the next step's all-reduce and wait there)."""
        if not self.world.main:
            return None
        inference, test = self.faces.validation()
        result = {"step": self.step, **validation_protection(self.masks(inference), self.surrogate, inference, test)}
        self.validations.append(result)
        return result

    # the loop -----------------------------------------------------------------------------------
    def run(self, steps: int | None = None, minutes: float | None = None) -> Path:
        total = int(steps) if steps is not None else self.stage.steps
        limit = float(minutes) * 60 if minutes is not None else float("inf")
        if not self.validations and self.step == 0:
            self.validate()  # step 0: the untrained (stage I / GAP) or stage-I (stage II) generator
        bar = tqdm(total=total, initial=min(self.step, total), desc=f"train {self.spec.checkpoint} ({self.source})",
                   disable=not self.progress, unit="step")
        last_save = time.monotonic()
        out_of_time = self.elapsed >= limit
        try:
            with _stop_requests() as stop_requests:
                while self.step < total and not out_of_time:
                    start = time.perf_counter()
                    losses = self.one_step(max(self.step / total, self.elapsed / limit))
                    self.elapsed += time.perf_counter() - start
                    self.step += 1
                    self.log.append({"step": self.step, "elapsed_s": self.elapsed, **losses})
                    if self.step % self.cfg.val_every == 0 and self.world.main:
                        losses["val"] = self.validate()["val_top1_protection"]
                        if self.cfg.snapshots:
                            self.export(self.snapshot_root(self.step))
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k in ("loss_g", "loss_d", "adv_cos", "val")})
                    bar.update(1)
                    # every rank takes the same decisions (one all-reduce under torchrun, plain values otherwise)
                    out_of_time, due, stop = self.world.any(self.elapsed >= limit,
                                                            time.monotonic() - last_save > self.cfg.save_every_s,
                                                            bool(stop_requests), device=self.device)
                    if stop:  # at a step boundary: the state saved below is exactly this step's
                        raise KeyboardInterrupt
                    if due:
                        self.save_state()
                        last_save = time.monotonic()
        except KeyboardInterrupt:
            bar.close()
            if self.world.size > 1:  # the other ranks may be gone: no collective save
                raise BenchError(f"training interrupted at step {self.step}; run the same command to continue from "
                                 f"the last save in {self.state_path}") from None
            self.save_state()
            raise BenchError(f"training interrupted at step {self.step}; state saved in {self.state_path}: "
                             f"run the same command again to continue") from None
        bar.close()
        self._round_to_shipped_precision()
        if self.world.main and self.validations[-1]["step"] == self.step:
            self.validations.pop()
        self.validate()  # of the weights exactly as shipped, so a test can reproduce the card's number
        self.save_state()
        ckpt = self.export() if self.world.main else self._checkpoint().weights_path
        if self.world.size > 1:
            torch.distributed.barrier()  # no rank returns before the checkpoint is written
        return ckpt

    @torch.no_grad()
    def _round_to_shipped_precision(self) -> None:
        for t in self.nets.generator.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())

    # export -------------------------------------------------------------------------------------
    def final_losses(self, last: int = 50) -> dict[str, float]:
        rows = self.log[-last:]
        keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "elapsed_s")]
        return {k: float(np.mean([r[k] for r in rows])) for k in keys}

    def export(self, root: Path | None = None) -> Path:
        """Write the checkpoint, its card, loss log and curves to ``root`` (default: the checkpoint root)."""
        ckpt = self._checkpoint(root)
        tensors = {f"generator.{k}": v for k, v in self.nets.generator.state_dict().items()}
        if self.stage.ships_discriminator:  # stage II starts from stage I's discriminator too
            tensors.update({f"discriminator.{k}": v for k, v in self.nets.discriminator.state_dict().items()})
        card = {
            "method": self.method, "checkpoint": self.spec.checkpoint, "stage": self.spec.stage, "variant": self.spec.variant,
            "source": self.source, "source_fingerprint": model_fingerprint(self.surrogate.card),
            "config": dataclasses.asdict(self.cfg), "run": self.run_dir.name, "steps": self.step,
            "wall_time_s": round(self.elapsed, 1), "world_size": self.world.size,
            "images_per_s": round(self.step * self.images_per_step() * self.world.size / max(self.elapsed, 1e-9), 1),
            "final_losses": self.final_losses(), "validation": self.validations[-1], "validation_history": self.validations,
            "train_split": "train", "train_split_hash": self.faces.split_hash, "val_identities": self.faces.val_identities,
            "started_from": self.started_from, "continued_from": self.continued_from, "provenance": provenance(str(self.device)),
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        path = ckpt.save(tensors, card)
        self.write_log(ckpt.folder / f"{self.spec.checkpoint}.log.csv")
        self.plot(ckpt.folder / f"{self.spec.checkpoint}.loss.png")  # the training log travels with the checkpoint
        return path

    def write_log(self, path: Path) -> None:
        import pandas as pd

        df = pd.DataFrame(self.log)
        if df.empty:
            return
        df = df.groupby(((df["step"] - 1) // LOG_EVERY).rename("block")).mean(numeric_only=True).reset_index(drop=True)
        df["step"] = df["step"].round().astype(int)
        val = pd.DataFrame(self.validations)
        df = df.merge(val, on="step", how="outer").sort_values("step")
        df.to_csv(path, index=False, float_format="%.5g")

    def plot(self, path: Path) -> None:
        title = (f"{self.spec.checkpoint} against {self.source} ({self.cfg.profile} profile, {self.step} steps, "
                 f"{self.elapsed / 60:.1f} min)")
        plot_training(self.log, self.validations, title, path)


def plot_training(log: list[dict], validations: list[dict], title: str, path: Path) -> None:
    """Loss curves (rolling mean) beside the validation protection, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(log)
    if df.empty:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for k in ("loss_g", "loss_d", "gan", "adv_cos", "hinge") if k in df]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    smooth = max(1, len(df) // 100)
    for k in keys:
        axes[0].plot(df["step"], df[k].rolling(smooth, min_periods=1).mean(), label=k)
    if (df[keys] > 0).all().all():
        axes[0].set_yscale("log")  # GAN ~0.7, cosine ~0.4-1, generator loss ~10-20: one log axis reads them all
    else:  # a hull/centre cosine term can go negative
        axes[0].set_yscale("symlog", linthresh=0.1)
    axes[0].set_xlabel("step"); axes[0].set_title("training losses (rolling mean)"); axes[0].legend(fontsize=8)
    val = pd.DataFrame(validations)
    axes[1].plot(val["step"], 100 * val["val_top1_protection"], marker="o", label="Top-1 protection, protected")
    axes[1].plot(val["step"], 100 * val["val_top1_clean_protection"], ls="--", label="Top-1 protection, clean")
    axes[1].set_ylim(0, 100); axes[1].set_xlabel("step"); axes[1].set_ylabel("Top-1 protection (%)")
    # the cosine moves by thousandths late in a run: its own axis, scaled to it, so the moves show
    cos_axis = axes[1].twinx()
    cos_axis.plot(val["step"], val["val_cos"], marker=".", color="C2", label="cosine(protected, clean), right axis")
    cos_axis.set_ylabel("cosine (lower = stronger)")
    handles = axes[1].get_legend_handles_labels()
    more = cos_axis.get_legend_handles_labels()
    axes[1].legend(handles[0] + more[0], handles[1] + more[1], fontsize=8)
    axes[1].set_title("validation (held-back ids, L2 1,200)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(method: str, source: str, cfg: TrainConfig, *, steps: int | None = None, minutes: float | None = None,
          device: str = "cpu", progress: bool = True, **kwargs) -> Path:
    """Train (or resume) one method's generator against ``source``; returns the exported checkpoint."""
    return Trainer(method, source, cfg, device=device, progress=progress, **kwargs).run(steps, minutes)
