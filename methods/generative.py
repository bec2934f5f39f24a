"""Generator methods: AdvCloak (four stage-II variants), AdvFaces, AdvFaces+ and GAP.

Each is a trained network used with no optimisation at craft time: one batched forward pass.

* ``advfaces`` (image-specific; Deb et al. 2020): the stage-I generator's perturbation of each photo.
* ``advfaces-plus`` (person-specific; AdvCloak paper section 3.3.2): the mean stage-I perturbation over
  the person's inference photos.
* ``advcloak``, ``advcloak-center``, ``advcloak-affine``, ``advcloak-convex`` (person-specific; Liu et al.,
  arXiv 2312.14407): the mean perturbation of the stage-II generator trained with that variant's
  adversarial term (own feature / class centre / affine hull / convex hull).
* ``advcloak-eot`` (person-specific): ``advcloak-convex`` whose stage II passed each protected face through
  a random member of the differentiable transform family before the surrogate (:mod:`.robust_transforms`),
  so the masks aim at what survives re-alignment, blur, resizing and JPEG.
* ``advfaces-eot`` (image-specific), ``advcloak-eot-stage1`` and ``advcloak-eot-both`` (person-specific): the
  robust-training ablation. ``advfaces-eot`` is a stage I trained through the transform family (checkpoint
  ``stage1-eot``); ``advcloak-eot-stage1`` is the plain ConvexHull stage II on it (transforms in stage I only),
  ``advcloak-eot-both`` the transform-robust stage II on it (transforms in both stages). With ``advcloak-convex``
  (neither) and ``advcloak-eot`` (stage II only) they make the four rows of the ablation.
* ``gap`` (universal; Poursaeed et al. 2018, adapted to faces): one mask for everyone, a function of
  the weights alone; the harness crafts it once.

The harness rescales every mask to the common L2 budget, so only the direction of the mean
perturbation matters. A method's checkpoint is chosen by its surrogate (``--source``): masks are
white-box on the model the generator was trained against, and the checkpoint's sha256 is part of the
method's configuration, so a retrained generator never reuses stale masks or result cells.

Example::

    from methods import create_method
    from bench.zoo import create_recognizer
    mask = create_method("advcloak-convex").craft_mask(faces, [create_recognizer("mobileface")])  # 3 x 112 x 112
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from bench.errors import BenchError, WeightFileError
from bench.features import model_fingerprint

from .base import METHODS, MaskMethod, register_method
from .checkpoints import Checkpoint
from .nets import AdvFacesGenerator, GAPGenerator


@dataclass(frozen=True)
class TrainingSpec:
    """How ``bench train`` makes a method's checkpoint."""

    stage: str  # "stage1" (AdvFaces), "stage2" (AdvCloak), "gap"
    checkpoint: str  # checkpoint name, shared by methods that use the same network
    variant: str = "plain"  # stage II adversarial term (methods/generator_losses.py)
    trainer: str = ""  # the method name `bench train` is called with
    starts_from: str = "stage1"  # stage II: the stage-I checkpoint both networks start from


class GeneratorMethod(MaskMethod):
    training: ClassVar[TrainingSpec]
    # training options (bench/training/config.py) that define this method: `bench train` refuses a run without
    # them rather than ship, under this name, a generator trained otherwise (checked, never silently set)
    training_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self._nets: dict[str, torch.nn.Module] = {}

    @classmethod
    def checkpoint_for(cls, source: str) -> Checkpoint:
        return Checkpoint(source, cls.training.checkpoint, cls.training.trainer or cls.name)

    def config(self, source: str | None = None) -> dict[str, Any]:
        cfg = super().config(source)
        if source and source != "-":
            ckpt = self.checkpoint_for(source)
            cfg["checkpoint"] = f"{source}/{ckpt.name}"
            cfg["checkpoint_sha256"] = ckpt.sha256()
        return cfg

    def build(self, card: dict) -> torch.nn.Module:
        return AdvFacesGenerator(card["config"]["width"])

    def network(self, surrogate, device: torch.device) -> torch.nn.Module:
        """The generator trained against ``surrogate`` (a zoo model, or an ensemble ``a+b``: its card names both)."""
        ckpt = self.checkpoint_for(surrogate.name)
        sha = ckpt.sha256()
        if sha not in self._nets:
            card = ckpt.card()
            expected = card.get("source_fingerprint")
            if expected and expected != model_fingerprint(surrogate.card):
                raise BenchError(
                    f"{ckpt.weights_path} was trained against another version of {surrogate.name!r} "
                    f"(fingerprint {expected}, now {model_fingerprint(surrogate.card)}); retrain with "
                    f"`bench train {ckpt.trains_with} --source {surrogate.name}`")
            try:  # a card or tensors that do not describe this network: one line naming the file, not a traceback
                net = self.build(card)
                net.load_state_dict(ckpt.load("generator."))
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise WeightFileError(f"trained checkpoint {ckpt.weights_path} does not fit {self.name}'s generator "
                                      f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); retrain with "
                                      f"`bench train {ckpt.trains_with} --source {surrogate.name}`") from None
            self._nets[sha] = net.eval()
        return self._nets[sha].to(device)

    def _one_surrogate(self, surrogates):
        """The model the generator was trained against: the one surrogate, or several as their ensemble ``a+b``
        (a generator trained with ``bench train ... --source a+b``)."""
        if len(surrogates) == 1:
            return surrogates[0]
        from bench.zoo.ensemble import ensemble_card

        return _CardOnly(ensemble_card([s.name for s in surrogates]))

    def perturb(self, faces, surrogates) -> torch.Tensor:
        net = self.network(self._one_surrogate(surrogates), faces.device)
        with torch.no_grad():
            return net(faces)


def stage1_trainer(checkpoint: str) -> str:
    """The method whose ``bench train`` writes the stage-I checkpoint ``checkpoint`` (stage II starts from it)."""
    for name in METHODS.names():
        cls = METHODS.entry(name).factory
        if isinstance(cls, type) and issubclass(cls, GeneratorMethod) and cls.training.stage == "stage1" \
                and cls.training.checkpoint == checkpoint:
            return cls.training.trainer or name
    raise BenchError(f"no method trains the stage-I checkpoint {checkpoint!r}")


class _CardOnly:
    """What ``network`` reads of a surrogate (its name and card): an ensemble's, without loading its members again."""

    def __init__(self, card):
        self.card, self.name = card, card.name


class PersonGeneratorMethod(GeneratorMethod):
    kind = "person"

    def forward(self, faces, surrogates, generator):
        return self.perturb(faces, surrogates).mean(0)


@register_method
class AdvFaces(GeneratorMethod):
    name = "advfaces"
    kind = "image"
    training = TrainingSpec("stage1", "stage1", trainer="advfaces")
    description = "AdvFaces: the stage-I generator's perturbation of each photo (one forward pass per photo)."

    def forward(self, faces, surrogates, generator):
        return self.perturb(faces, surrogates)


@register_method
class AdvFacesPlus(PersonGeneratorMethod):
    name = "advfaces-plus"
    training = TrainingSpec("stage1", "stage1", trainer="advfaces")
    description = "AdvFaces+: mean stage-I (AdvFaces) perturbation over the person's inference photos."


@register_method
class AdvCloak(PersonGeneratorMethod):
    name = "advcloak"
    training = TrainingSpec("stage2", "advcloak", "plain")
    description = "AdvCloak: stage-II generator trained with one averaged mask per person (own-feature term)."


@register_method
class AdvCloakCenter(PersonGeneratorMethod):
    name = "advcloak-center"
    training = TrainingSpec("stage2", "advcloak-center", "center")
    description = "AdvCloak-ClassCenter: stage II pushes features from the person's mean clean feature."


@register_method
class AdvCloakAffine(PersonGeneratorMethod):
    name = "advcloak-affine"
    training = TrainingSpec("stage2", "advcloak-affine", "affine")
    description = "AdvCloak-AffineHull: stage II pushes features out of the affine hull of clean features."


@register_method
class AdvCloakConvex(PersonGeneratorMethod):
    name = "advcloak-convex"
    training = TrainingSpec("stage2", "advcloak-convex", "convex")
    description = "AdvCloak-ConvexHull: stage II pushes features out of the convex hull (class-centre warm-up)."


@register_method
class AdvCloakEOT(PersonGeneratorMethod):
    name = "advcloak-eot"
    training = TrainingSpec("stage2", "advcloak-eot", "convex")
    training_options = {"eot_stage2": True}
    description = ("AdvCloak-ConvexHull trained through the transform family (stage II sees x + Delta shifted, blurred, "
                   "resized or JPEG-compressed): configs/train/robust/advcloak-eot.toml.")


@register_method
class AdvFacesEOT(AdvFaces):
    name = "advfaces-eot"
    training = TrainingSpec("stage1", "stage1-eot", trainer="advfaces-eot")
    training_options = {"eot_stage1": True}
    description = ("AdvFaces trained through the transform family (the surrogate sees x + Delta shifted, blurred, resized "
                   "or JPEG-compressed): the stage I of the robust-training ablation, configs/train/robust/.")


@register_method
class AdvCloakEOTStage1(PersonGeneratorMethod):
    name = "advcloak-eot-stage1"
    training = TrainingSpec("stage2", "advcloak-eot-stage1", "convex", starts_from="stage1-eot")
    training_options = {"eot_stage2": False}
    description = ("AdvCloak-ConvexHull with the transforms in stage I only: the plain ConvexHull stage II on "
                   "advfaces-eot's generator (robust-training ablation).")


@register_method
class AdvCloakEOTBoth(PersonGeneratorMethod):
    name = "advcloak-eot-both"
    training = TrainingSpec("stage2", "advcloak-eot-both", "convex", starts_from="stage1-eot")
    training_options = {"eot_stage2": True}
    description = ("AdvCloak-ConvexHull with the transforms in both stages: advcloak-eot's stage II on advfaces-eot's "
                   "generator (robust-training ablation).")


@register_method
class GAP(GeneratorMethod):
    name = "gap"
    kind = "universal"
    training = TrainingSpec("gap", "gap")
    description = "GAP: one universal mask from a generator fed fixed noise (feature loss, L2 fixed during training)."

    def build(self, card: dict) -> torch.nn.Module:
        cfg = card["config"]
        return GAPGenerator(cfg["gap_width"], cfg["gap_blocks"], cfg["seed"])

    def forward(self, faces, surrogates, generator):
        net = self.network(self._one_surrogate(surrogates), faces.device)
        with torch.no_grad():
            return net()
