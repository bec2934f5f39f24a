"""``bench cloak``'s default method and source, chosen from the committed records by a rule.

The rule (:func:`bench.reporting.attackers.full_photo_ranking`): among the (method, source) rows measured through
the full photo (the mask put into the original photo, saved as PNG, re-detected by the attacker) on the
celebrities split at L2 1,200, on every target other than their source, the highest black-box average Top-1
protection; baselines and sweep variants left out. ``tests/test_cloak_default.py`` applies it to
``results/records`` and fails, naming the rule's pick, when these constants say otherwise: they change when the
records do, never by hand. The ranking is in docs/protect-your-photos.md ("Which method").

Kept apart from :mod:`bench.cloak` so the command line reads them without loading torch.
"""

DEFAULT_METHOD = "advcloak-convex"
DEFAULT_SOURCE = "hse-faceres"
