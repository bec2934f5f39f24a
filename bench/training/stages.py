"""The training stages, one class each, behind a registry: what the trainer asks a stage instead of
comparing stage names.

A generator method names its stage in its :class:`methods.generative.TrainingSpec` (``stage1``: AdvFaces,
``stage2``: AdvCloak, ``gap``: GAP); :data:`STAGES` maps that name to the class that builds the stage's
networks, takes one optimisation step (:mod:`.steps`), says how many faces a step sees and how the held-back
people's masks are made for validation, and which networks its checkpoint ships. A new trained method
with a new kind of training is one ``Stage`` subclass here plus ``STAGES.add``; the trainer does not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import torch

from methods.checkpoints import Checkpoint
from methods.nets import AdvFacesGenerator, GAPGenerator, PatchDiscriminator

from ..errors import BenchError
from ..registry import Registry
from .config import TrainConfig
from .data import TrainingFaces
from .distributed import World
from .steps import Nets, gap_step, scaled_universal, stage1_step, stage2_step


class Run(Protocol):
    """What a stage reads of the training run that holds it (:class:`.trainer.Trainer`)."""

    cfg: TrainConfig
    source: str
    device: torch.device
    world: World
    ckpt_root: Path
    faces: TrainingFaces
    rng: torch.Generator
    surrogate: torch.nn.Module
    nets: Nets

    def variant_at(self, progress: float) -> str: ...


class Stage:
    name: ClassVar[str] = ""
    steps_option: ClassVar[str] = ""  # the TrainConfig field holding the stage's default number of steps
    ships_discriminator: ClassVar[bool] = False  # the checkpoint carries D (a later stage starts from it)
    starts_from_stage1: ClassVar[bool] = False  # initialised from the source's stage-I checkpoint

    def steps(self, cfg: TrainConfig) -> int:
        return int(getattr(cfg, self.steps_option))

    def build(self, trainer: Run) -> tuple[Nets, dict | None]:
        """The networks and optimisers, and the checkpoint they start from (None: from scratch)."""
        raise NotImplementedError

    def step(self, trainer: Run, progress: float) -> dict[str, float]:
        raise NotImplementedError

    def images_per_step(self, cfg: TrainConfig) -> int:
        raise NotImplementedError

    def masks(self, generator: torch.nn.Module, inference: torch.Tensor, cfg: TrainConfig,
              device: torch.device) -> torch.Tensor:
        """One mask per held-back person (``inference``: people x photos x 3 x 112 x 112), as the method
        crafts it: the mean of the generator's perturbations over the person's photos."""
        people, photos = inference.shape[:2]
        return generator(inference.flatten(0, 1).to(device)).reshape(people, photos, 3, 112, 112).mean(1).cpu()


def _adversarial_nets(trainer: Run) -> tuple[AdvFacesGenerator, PatchDiscriminator]:
    cfg = trainer.cfg
    return AdvFacesGenerator(cfg.width, cfg.output_init_scale).to(trainer.device), PatchDiscriminator(cfg.d_width).to(trainer.device)


def _with_adam(trainer: Run, g: torch.nn.Module, d: torch.nn.Module, lr: float) -> Nets:
    betas = (trainer.cfg.beta1, trainer.cfg.beta2)
    return Nets(g, d, torch.optim.Adam(g.parameters(), lr, betas), torch.optim.Adam(d.parameters(), lr, betas),
                trainer.world.average_gradients)


class AdvFacesStage(Stage):
    """Stage I (AdvFaces): a generator and a patch discriminator from scratch, on batches of single faces."""

    name = "stage1"
    steps_option = "stage1_steps"
    ships_discriminator = True

    def build(self, trainer):
        g, d = _adversarial_nets(trainer)
        return _with_adam(trainer, g, d, trainer.cfg.lr), None

    def step(self, trainer, progress):
        cfg = trainer.cfg
        x = trainer.faces.batch(cfg.batch_size, trainer.rng).to(trainer.device)
        return stage1_step(trainer.nets, trainer.surrogate, x, cfg, trainer.rng)

    def images_per_step(self, cfg):
        return cfg.batch_size


class AdvCloakStage(Stage):
    """Stage II (AdvCloak): both networks start from the source's stage-I checkpoint; batches of people x
    photos, one averaged perturbation per person, the variant's anchor (``trainer.variant_at``)."""

    name = "stage2"
    steps_option = "stage2_steps"
    starts_from_stage1 = True

    def build(self, trainer):
        cfg = trainer.cfg
        g, d = _adversarial_nets(trainer)
        stage1 = Checkpoint(trainer.source, "stage1", "advfaces", trainer.ckpt_root)
        card = stage1.card()
        if (card["config"]["width"], card["config"]["d_width"]) != (cfg.width, cfg.d_width):
            raise BenchError(f"{stage1.weights_path} has width {card['config']['width']}/{card['config']['d_width']}, "
                             f"this profile {cfg.width}/{cfg.d_width}: train stage I with the same profile first")
        g.load_state_dict(stage1.load("generator."))
        d.load_state_dict(stage1.load("discriminator."))
        return _with_adam(trainer, g, d, cfg.stage2_lr), {"checkpoint": f"{trainer.source}/stage1", "sha256": stage1.sha256()}

    def step(self, trainer, progress):
        cfg = trainer.cfg
        x = trainer.faces.identity_batch(cfg.stage2_identities, cfg.stage2_photos, trainer.rng).to(trainer.device)
        return stage2_step(trainer.nets, trainer.surrogate, x, trainer.variant_at(progress), cfg, trainer.rng)

    def images_per_step(self, cfg):
        return cfg.stage2_identities * cfg.stage2_photos


class GAPStage(Stage):
    """GAP: a generator of one universal perturbation from fixed noise, no discriminator."""

    name = "gap"
    steps_option = "gap_steps"

    def build(self, trainer):
        cfg = trainer.cfg
        g = GAPGenerator(cfg.gap_width, cfg.gap_blocks, cfg.seed).to(trainer.device)
        return Nets(g, None, torch.optim.Adam(g.parameters(), cfg.gap_lr, (cfg.gap_beta1, cfg.gap_beta2)), None,
                    trainer.world.average_gradients), None

    def step(self, trainer, progress):
        cfg = trainer.cfg
        x = trainer.faces.batch(cfg.gap_batch_size, trainer.rng).to(trainer.device)
        return gap_step(trainer.nets, trainer.surrogate, x, cfg, trainer.rng)

    def images_per_step(self, cfg):
        return cfg.gap_batch_size

    def masks(self, generator, inference, cfg, device):
        return scaled_universal(generator, cfg.gap_budget).cpu().expand(len(inference), -1, -1, -1)


STAGES: Registry[Stage] = Registry("training stage")
for _stage in (AdvFacesStage, AdvCloakStage, GAPStage):
    STAGES.add(_stage.name, _stage)
