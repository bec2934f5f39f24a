"""The training stages, one class each, behind a registry: what the trainer asks a stage instead of
comparing stage names.

A generator method names its stage in its :class:`methods.generative.TrainingSpec` (``stage1``: AdvFaces,
``stage2``: AdvCloak, ``gap``: GAP); :data:`STAGES` maps that name to the class that builds the stage's
networks, takes one optimisation step (:mod:`.steps`), says how many faces a step sees and how the held-back
people's masks are made for validation, and which networks its checkpoint ships. Each stage reads its own
typed settings (``Config``: :class:`.config.AdvFacesConfig`, ...), made once from the run's flat
:class:`.config.TrainConfig`. A new trained method with a new kind of training is one ``Stage`` subclass
here plus ``STAGES.add``; the trainer does not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import torch

from methods.checkpoints import Checkpoint
from methods.generative import TrainingSpec, stage1_trainer
from methods.nets import AdvFacesGenerator, GAPGenerator, PatchDiscriminator

from ..errors import BenchError
from ..registry import Registry
from .config import AdvCloakConfig, AdvFacesConfig, GAPConfig, TrainConfig
from .data import TrainingFaces
from .distributed import World
from .steps import Nets, gap_step, scaled_universal, stage1_step, stage2_step


class Run(Protocol):
    """What a stage reads of the training run that holds it (:class:`.trainer.Trainer`)."""

    source: str
    spec: TrainingSpec
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
    Config: ClassVar[type]  # the stage's typed settings, with a classmethod ``of(TrainConfig)``
    ships_discriminator: ClassVar[bool] = False  # the checkpoint carries D (a later stage starts from it)
    starts_from_stage1: ClassVar[bool] = False  # initialised from the source's stage-I checkpoint

    def __init__(self, cfg: TrainConfig):
        self.config = self.Config.of(cfg)

    @property
    def steps(self) -> int:
        """The run's default number of steps (the profile's, or ``--set <stage>_steps=N``)."""
        return self.config.steps

    @property
    def images_per_step(self) -> int:
        raise NotImplementedError

    def build(self, trainer: Run) -> tuple[Nets, dict | None]:
        """The networks and optimisers, and the checkpoint they start from (None: from scratch)."""
        raise NotImplementedError

    def step(self, trainer: Run, progress: float) -> dict[str, float]:
        raise NotImplementedError

    def masks(self, generator: torch.nn.Module, inference: torch.Tensor, device: torch.device) -> torch.Tensor:
        """One mask per held-back person (``inference``: people x photos x 3 x 112 x 112), as the method
        crafts it: the mean of the generator's perturbations over the person's photos."""
        people, photos = inference.shape[:2]
        return generator(inference.flatten(0, 1).to(device)).reshape(people, photos, 3, 112, 112).mean(1).cpu()


def _adversarial(trainer: Run, c: AdvFacesConfig | AdvCloakConfig) -> Nets:
    """AdvFaces' generator and patch discriminator (in this order: the seeded initialisation depends on it)."""
    g = AdvFacesGenerator(c.width, c.output_init_scale).to(trainer.device)
    d = PatchDiscriminator(c.d_width).to(trainer.device)
    return Nets(g, d, torch.optim.Adam(g.parameters(), c.lr, c.betas), torch.optim.Adam(d.parameters(), c.lr, c.betas),
                trainer.world.average_gradients)


class AdvFacesStage(Stage):
    """Stage I (AdvFaces): a generator and a patch discriminator from scratch, on batches of single faces."""

    name = "stage1"
    Config = AdvFacesConfig
    ships_discriminator = True

    @property
    def images_per_step(self):
        return self.config.batch_size

    def build(self, trainer):
        return _adversarial(trainer, self.config), None

    def step(self, trainer, progress):
        x = trainer.faces.batch(self.config.batch_size, trainer.rng).to(trainer.device)
        return stage1_step(trainer.nets, trainer.surrogate, x, self.config, trainer.rng)


class AdvCloakStage(Stage):
    """Stage II (AdvCloak): both networks start from the source's stage-I checkpoint; batches of people x
    photos, one averaged perturbation per person, the variant's anchor (``trainer.variant_at``)."""

    name = "stage2"
    Config = AdvCloakConfig
    starts_from_stage1 = True

    @property
    def images_per_step(self):
        return self.config.identities * self.config.photos

    def build(self, trainer):
        c = self.config
        nets = _adversarial(trainer, c)
        name = trainer.spec.starts_from
        stage1 = Checkpoint(trainer.source, name, stage1_trainer(name), trainer.ckpt_root)
        card = stage1.card()
        if (card["config"]["width"], card["config"]["d_width"]) != (c.width, c.d_width):
            raise BenchError(f"{stage1.weights_path} has width {card['config']['width']}/{card['config']['d_width']}, "
                             f"this profile {c.width}/{c.d_width}: train stage I with the same profile first")
        nets.generator.load_state_dict(stage1.load("generator."))
        nets.discriminator.load_state_dict(stage1.load("discriminator."))
        return nets, {"checkpoint": f"{trainer.source}/{name}", "sha256": stage1.sha256()}

    def step(self, trainer, progress):
        x = trainer.faces.identity_batch(self.config.identities, self.config.photos, trainer.rng).to(trainer.device)
        return stage2_step(trainer.nets, trainer.surrogate, x, trainer.variant_at(progress), self.config, trainer.rng)


class GAPStage(Stage):
    """GAP: a generator of one universal perturbation from fixed noise, no discriminator."""

    name = "gap"
    Config = GAPConfig

    @property
    def images_per_step(self):
        return self.config.batch_size

    def build(self, trainer):
        c = self.config
        g = GAPGenerator(c.width, c.blocks, c.seed).to(trainer.device)
        return Nets(g, None, torch.optim.Adam(g.parameters(), c.lr, c.betas), None, trainer.world.average_gradients), None

    def step(self, trainer, progress):
        x = trainer.faces.batch(self.config.batch_size, trainer.rng).to(trainer.device)
        return gap_step(trainer.nets, trainer.surrogate, x, self.config, trainer.rng)

    def masks(self, generator, inference, device):
        return scaled_universal(generator, self.config.budget).cpu().expand(len(inference), -1, -1, -1)


STAGES: Registry[Stage] = Registry("training stage")
for _stage in (AdvFacesStage, AdvCloakStage, GAPStage):
    STAGES.add(_stage.name, _stage)
