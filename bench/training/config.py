"""Training configuration: one base dataclass with the paper's settings, and small per-profile overrides
(insightface arcface_torch's pattern: a base config plus a few changed fields per run).

Profiles:
* ``paper``: ``../shared/ADVCLOAK.md`` as written (generator width 64, discriminator width 32, batch 32,
  Adam(0.5, 0.9) lr 1e-4 for stage I, 100k steps; stage II: 2 identities x 16 photos, lr 2e-8).
* ``cpu``: what trains on a 2-core CPU in minutes. Width 8, measured on this machine (generator
  forward+backward, batch 32, nothing else running): width 8 45 img/s, 16 21 img/s, 24 8 img/s,
  32 7 img/s, 64 2 img/s; a person's mask (10 photos, forward only) 91 ms at width 8, 144 ms at 16.
  Width 8 is the widest that leaves room for about a thousand stage-I steps per source within the
  hour the project allows. Stage II's lr is 1e-4 (stage I's), not the paper's 2e-8, measured by
  ``tools/stage2_ablation.py`` (150 plain stage-II steps from the mobileface stage-I generator;
  validation cosine at L2 1,200, lower = better): 2e-8 moved the weights by 9e-6 (relative L2) and
  left the cosine at 0.3872 -> 0.3872, i.e. stage II at the paper's lr is stage I; 1e-5 moved them by
  0.7% (0.3824); 1e-4 by 1.8% (0.3727).
  The generator's last convolution starts at 0.015 x AdvFaces' Kaiming init: with the full init the
  tanh output starts saturated (L2 ~30,000 on 0-255) and against dlib-resnet the first 230 of 500
  steps only shrank it to the hinge (L2 813) while the adversarial cosine stayed at 0.99; at 0.015 the
  first delta is already at the hinge (L2 ~750) and the adversarial term works from step 1. A
  hundred thousand steps (the paper) hide that warm-up; a thousand do not. On the unit test's tiny
  run (width 4, 8 steps against mobileface) the validation cosine fell 0.989 -> 0.984 with the full
  init and 0.983 -> 0.889 at 0.015. The mobileface stage-I
  checkpoint predates this change and used the full init (its card's config says so).
  ``tools/stage1_sweep.py`` compares stage-I settings at equal training faces (README, "Stage-I
  settings against dlib-resnet"): against dlib-resnet neither width 16, lr 3e-4 / 1e-3 (1e-3
  collapses), the hinge at the benchmark's budget nor batch 8 moved the validation cosine by more
  than 0.02 in 3,200 faces; against mobileface width 16 was a little stronger white-box than width 8
  (0.368 vs 0.392 in 300 steps) and transferred no better, so the profile keeps width 8.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import BenchError


@dataclass
class TrainConfig:
    # networks
    width: int = 64  # generator width (AdvFaces: 64)
    d_width: int = 32  # discriminator width (first conv; AdvFaces: 32 ... 512)
    output_init_scale: float = 1.0  # last generator conv's initial weights x this (1 = AdvFaces' init)
    # stage I (AdvFaces)
    batch_size: int = 32
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    gan_weight: float = 1.0
    adv_weight: float = 10.0
    hinge_weight: float = 1.0
    hinge_eps: float = 3.0  # ||delta||_2 in [0, 1] units (~765 on 0-255) below which size is free
    noisy_labels: bool = True  # AdvCloak's code: real ~U[0.9,1], fake ~U[0,0.1], 5% flipped
    stage1_steps: int = 100_000
    # stage II (AdvCloak)
    stage2_lr: float = 2e-8
    stage2_adv_weight: float = 15.0
    stage2_identities: int = 2
    stage2_photos: int = 16
    stage2_steps: int = 100_000
    stage2_average: bool = True  # one Delta per person (AdvCloak); False = image-wise stage II (an ablation)
    # > 0: the GAN and adversarial terms see each person's Delta rescaled to this L2 (0-255), the mask the benchmark
    # adds; 0 = the paper (Delta as generated, its size held by the hinge alone). steps.at_budget says why.
    stage2_budget: float = 0.0
    convex_warmup: float = 0.4  # fraction of stage II using class-centre anchors (the official code: 40 of 100 epochs)
    # expectation over transformation (methods/robust_transforms.py): the surrogate sees each protected face through
    # a random member of the differentiable transform family (shift, similarity, blur, down-up resize, JPEG or none),
    # in stage I and/or stage II; the discriminator still sees the protected face itself. eot_strength scales every
    # range of the family (0-1). Off by default (the papers).
    eot_stage1: bool = False
    eot_stage2: bool = False
    eot_strength: float = 1.0
    # GAP
    gap_width: int = 64
    gap_blocks: int = 6
    gap_lr: float = 2e-4
    gap_beta1: float = 0.5
    gap_beta2: float = 0.999
    gap_batch_size: int = 30
    gap_steps: int = 500
    gap_budget: float = 1200.0  # L2 on 0-255 pixels, fixed at every step
    # bookkeeping
    seed: int = 0
    val_identities: int = 4  # training identities held back for the per-epoch validation protection
    val_every: int = 100  # steps between validations ("epochs" of this log)
    save_every_s: float = 180.0  # resumable state written at least this often
    # also export the generator at every validation, to <run dir>/snapshots/step-NNNNNN/<source>/: GAN training
    # swings from one validation to the next, so the step to ship is chosen afterwards (bench train select)
    snapshots: bool = False
    profile: str = "paper"

    def validate(self) -> "TrainConfig":
        positive = ["width", "d_width", "batch_size", "stage2_identities", "stage2_photos", "gap_width", "gap_batch_size",
                    "val_every", "stage1_steps", "stage2_steps", "gap_steps"]
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise BenchError(f"training option {name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "stage2_lr", "gap_lr", "hinge_eps", "gap_budget", "save_every_s", "output_init_scale"):
            v = float(getattr(self, name))
            if not (v > 0 and v < float("inf")):
                raise BenchError(f"training option {name} must be a finite number > 0, got {v}")
        if not 0 <= self.stage2_budget < float("inf"):
            raise BenchError(f"stage2_budget must be 0 (off) or a finite L2 > 0, got {self.stage2_budget}")
        if not 0 <= self.eot_strength <= 1:
            raise BenchError(f"eot_strength must be in [0, 1], got {self.eot_strength}")
        if not 0 <= self.convex_warmup <= 1:
            raise BenchError(f"convex_warmup must be in [0, 1], got {self.convex_warmup}")
        if self.stage2_identities < 2:
            raise BenchError("stage II needs at least 2 identities per batch (the GAN batch pairs people)")
        return self


# Each stage's own settings, typed (timm's pattern): what the stage reads, under the names it uses, made once
# from the run's TrainConfig. TrainConfig stays the one flat record a run is known by: its fields are what
# `--set` and the experiment files name, what the cards store and what the run id hashes.

@dataclass(frozen=True)
class GeneratorLoss:
    """Stages I and II's generator loss: gan_weight x GAN + adv_weight x cosine + hinge_weight x max(||delta||, hinge_eps)."""

    gan_weight: float
    adv_weight: float
    hinge_weight: float
    hinge_eps: float
    noisy_labels: bool  # the discriminator's noisy labels (AdvCloak's code)


@dataclass(frozen=True)
class AdvFacesConfig:
    """Stage I (AdvFaces): a generator and discriminator from scratch on batches of single faces."""

    width: int
    d_width: int
    output_init_scale: float
    batch_size: int
    lr: float
    betas: tuple[float, float]
    loss: GeneratorLoss
    steps: int
    eot_strength: float = 0.0  # > 0: the surrogate sees x + delta through the transform family at this strength

    @classmethod
    def of(cls, cfg: TrainConfig) -> "AdvFacesConfig":
        return cls(cfg.width, cfg.d_width, cfg.output_init_scale, cfg.batch_size, cfg.lr, (cfg.beta1, cfg.beta2),
                   GeneratorLoss(cfg.gan_weight, cfg.adv_weight, cfg.hinge_weight, cfg.hinge_eps, cfg.noisy_labels),
                   cfg.stage1_steps, cfg.eot_strength if cfg.eot_stage1 else 0.0)


@dataclass(frozen=True)
class AdvCloakConfig:
    """Stage II (AdvCloak): from stage I's networks (same widths), batches of people x photos."""

    width: int
    d_width: int
    output_init_scale: float
    identities: int
    photos: int
    lr: float
    betas: tuple[float, float]
    loss: GeneratorLoss  # adv_weight: stage II's own (stage2_adv_weight)
    average: bool  # one Delta per person (False: the image-wise ablation)
    budget: float  # > 0: the GAN and adversarial terms see each Delta at this L2 (steps.at_budget)
    convex_warmup: float
    steps: int
    eot_strength: float = 0.0  # > 0: the surrogate sees x + Delta through the transform family at this strength

    @classmethod
    def of(cls, cfg: TrainConfig) -> "AdvCloakConfig":
        return cls(cfg.width, cfg.d_width, cfg.output_init_scale, cfg.stage2_identities, cfg.stage2_photos, cfg.stage2_lr,
                   (cfg.beta1, cfg.beta2),
                   GeneratorLoss(cfg.gan_weight, cfg.stage2_adv_weight, cfg.hinge_weight, cfg.hinge_eps, cfg.noisy_labels),
                   cfg.stage2_average, cfg.stage2_budget, cfg.convex_warmup, cfg.stage2_steps,
                   cfg.eot_strength if cfg.eot_stage2 else 0.0)


@dataclass(frozen=True)
class GAPConfig:
    """GAP: a generator of one universal perturbation from fixed noise (seeded), at a fixed L2."""

    width: int
    blocks: int
    seed: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    budget: float
    steps: int

    @classmethod
    def of(cls, cfg: TrainConfig) -> "GAPConfig":
        return cls(cfg.gap_width, cfg.gap_blocks, cfg.seed, cfg.gap_batch_size, cfg.gap_lr, (cfg.gap_beta1, cfg.gap_beta2),
                   cfg.gap_budget, cfg.gap_steps)


PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {"width": 8, "d_width": 8, "output_init_scale": 0.015, "stage2_lr": 1e-4, "stage2_photos": 16, "gap_width": 8, "gap_blocks": 3,
            "stage1_steps": 2_000, "stage2_steps": 300, "gap_steps": 300, "val_every": 100, "snapshots": True},
}


def make_config(profile: str = "cpu", **overrides: Any) -> TrainConfig:
    if profile not in PROFILES:
        raise BenchError(f"unknown training profile {profile!r}; known: {', '.join(PROFILES)}")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise BenchError(f"unknown training option(s) {', '.join(sorted(unknown))}; options: {', '.join(sorted(fields))}")
    values = {**PROFILES[profile], **overrides, "profile": profile}
    for name, value in values.items():
        kind = type(fields[name].default)
        try:
            if kind is bool:
                if str(value).lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                values[name] = str(value).lower() in ("true", "1")
            else:
                values[name] = kind(value)
        except (TypeError, ValueError):
            raise BenchError(f"training option {name} expects {kind.__name__}, got {value!r}") from None
    return TrainConfig(**values).validate()
