"""``bench train``: AdvFaces stage I, AdvCloak stage II and GAP generators, resumable, with logs and shipped checkpoints."""

from .config import PROFILES, TrainConfig, make_config
from .trainer import train

__all__ = ["PROFILES", "TrainConfig", "make_config", "train"]
