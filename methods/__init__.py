"""Mask-crafting methods (AdvCloak, OPOM, FI-UAP, ...) behind one ``craft_mask`` interface.

Importing this package registers the built-in methods; plugins register through the entry-point
group ``bench.methods``.
"""

from .base import METHODS, MaskMethod, create_method, method_info, register_method
from . import baselines, eot_attacks, feature_attacks, generative, lowkey  # noqa: F401  (register the built-in methods)

__all__ = ["METHODS", "MaskMethod", "create_method", "method_info", "register_method"]
