"""A differentiable, seeded family of the distortions a protected face meets before a recognizer sees it,
for expectation over transformation (EOT: Athalye et al., ICML 2018): a cloak optimised through random
draws of this family is optimised for what survives them.

Members (each a function of the image and one draw ``u`` of four uniforms in [0, 1) per photo); every
range comes from what the benchmark measures (:mod:`bench.stages.transforms`, :mod:`bench.stages.realistic`):

* ``identity``: the crop as saved (the crop-level attacker), so the cloak keeps its crop-level strength.
* ``shift``: sub-pixel translation, up to ``MAX_SHIFT_PX`` per axis. The attacker's re-detection puts
  the mask 0.9-1.1 crop px (mean over the crop; max 2.8-4.4 at the corners) from where it was made
  (tests/test_pipeline.py); a row-by-row grating does not survive half of that.
* ``similarity``: the same translation with a rotation up to ``MAX_ANGLE_DEG`` and a scale change up to
  ``MAX_SCALE``: a re-alignment moves more than a translation. At the extremes each of the three moves
  the crop's pixels by ~1.5 px on average, so a typical draw is the measured ~1 px jitter
  (tests/test_robust_transforms.py measures the mean offset of the draws).
* ``blur``: Gaussian blur, sigma up to ``MAX_BLUR_SIGMA`` px (the ``blur:1`` attacker; a 7-tap kernel,
  +-3 sigma, mirrored border as OpenCV's BORDER_REFLECT_101).
* ``resize``: down to a scale in [``MIN_RESIZE``, 1) and back up, bilinear with antialiasing as PIL's
  thumbnail (the ``resize:0.5`` attacker).
* ``jpeg``: kornia's differentiable JPEG (Shin and Song 2017's cubic rounding; 4:2:0 chroma) at a quality
  in [``MIN_JPEG_QUALITY``, 95] (the ``jpeg:75`` and ``realistic:jpeg75`` attackers sit inside).

Each photo of a batch gets its own member (uniform among ``members``) and its own parameters, drawn from
a CPU ``torch.Generator`` (the same seed gives the same draw on every device); the image's device is
the computation's. ``strength`` scales every range (0: every member is the identity, exactly). All
members are differentiable in the image: the geometric ones, the blur and the resize are linear in it;
the JPEG is smooth almost everywhere (its rounding is a cubic and its clamps are flat only outside).

Example::

    family = TransformFamily()
    draw = family.draw(len(x), torch.Generator().manual_seed(0))
    seen = family(x, draw)   # x: N x 3 x 112 x 112 in [0, 1]; gradients flow to x
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from bench.errors import BenchError

MAX_SHIFT_PX = 1.5
MAX_ANGLE_DEG = 2.0  # 2 degrees moves a pixel at the crop's mean radius (~43 px) by ~1.5 px
MAX_SCALE = 0.035  # likewise: 43 px x 3.5% ~ 1.5 px
MAX_BLUR_SIGMA = 1.0
BLUR_TAPS = 7  # 2 * ceil(3 sigma) + 1 at sigma 1, as bench.stages.transforms.blur
MIN_RESIZE = 0.5
MIN_JPEG_QUALITY = 60.0
MAX_JPEG_QUALITY = 95.0
DRAW_WIDTH = 4  # uniforms per photo and draw (the similarity member uses all four)


def _kornia():
    try:
        import kornia
    except ImportError:
        raise BenchError("the transform family needs kornia: pip install 'cloakbench[robust]' (or pip install kornia)") from None
    return kornia


def _signed(u: torch.Tensor) -> torch.Tensor:
    return 2 * u - 1


def _warp(x: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """A similarity about the crop's centre (bilinear, mirrored border: the photo goes on past the crop)."""
    kornia = _kornia()
    b, _, h, w = x.shape
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=x.device, dtype=x.dtype).expand(b, 2)
    m = kornia.geometry.transform.get_rotation_matrix2d(centre, angle_deg, scale[:, None].expand(b, 2).contiguous())
    m = torch.cat([m[:, :, :2], m[:, :, 2:] + shift_px[:, :, None]], dim=2)
    return kornia.geometry.transform.warp_affine(x, m, (h, w), mode="bilinear", padding_mode="reflection",
                                                 align_corners=True)


def shift(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    zeros = torch.zeros(len(x), device=x.device, dtype=x.dtype)
    return _warp(x, zeros, zeros + 1, _signed(u[:, :2]) * MAX_SHIFT_PX * strength)


def similarity(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    return _warp(x, _signed(u[:, 0]) * MAX_ANGLE_DEG * strength, 1 + _signed(u[:, 1]) * MAX_SCALE * strength,
                 _signed(u[:, 2:4]) * MAX_SHIFT_PX * strength)


def blur(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    # sigma ~0 is a delta kernel (exp(-1 / 2e-8) = 0 off-centre): the identity, without a division by zero
    sigma = (u[:, 0] * MAX_BLUR_SIGMA * strength).clamp_min(1e-4)
    return _kornia().filters.gaussian_blur2d(x, BLUR_TAPS, torch.stack([sigma, sigma], 1), border_type="reflect")


def resize(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    out = []
    for img, scale in zip(x, (1 - u[:, 0] * (1 - MIN_RESIZE) * strength).tolist()):  # each photo its own size
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size == (h, w):
            out.append(img)
            continue
        small = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False, antialias=True)
        out.append(F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0])
    return torch.stack(out)


def jpeg(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    quality = 100 - strength * ((100 - MAX_JPEG_QUALITY) + u[:, 0] * (MAX_JPEG_QUALITY - MIN_JPEG_QUALITY))
    # kornia's codec wants [0, 1] and sizes divisible by 16 (112 = 7 x 16); the clamp is the saved photo's
    return _kornia().enhance.jpeg_codec_differentiable(x.clamp(0, 1), quality.to(x.dtype))


def identity(x: torch.Tensor, u: torch.Tensor, strength: float) -> torch.Tensor:
    return x


MEMBERS: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "identity": identity, "shift": shift, "similarity": similarity, "blur": blur, "resize": resize, "jpeg": jpeg,
}


@dataclass(frozen=True)
class Draw:
    """One draw for a batch: each photo's member (index into the family's ``members``) and uniforms."""

    member: torch.Tensor  # (B,) long, CPU
    u: torch.Tensor  # (B, DRAW_WIDTH) float64 in [0, 1), CPU

    def __len__(self) -> int:
        return len(self.member)

    @staticmethod
    def cat(draws: list["Draw"]) -> "Draw":
        return Draw(torch.cat([d.member for d in draws]), torch.cat([d.u for d in draws]))


@dataclass(frozen=True)
class TransformFamily:
    members: tuple[str, ...] = tuple(MEMBERS)
    strength: float = 1.0

    def __post_init__(self):
        unknown = [m for m in self.members if m not in MEMBERS]
        if unknown or not self.members:
            raise BenchError(f"transform family: unknown member(s) {', '.join(unknown) or '(none given)'}; "
                             f"members: {', '.join(MEMBERS)}")
        if not (0 <= self.strength <= 1):
            raise BenchError(f"transform family: strength must be in [0, 1], got {self.strength}")

    def draw(self, n: int, generator: torch.Generator) -> Draw:
        """``n`` photos' members and parameters, from ``generator`` (CPU) alone."""
        member = torch.randint(len(self.members), (n,), generator=generator)
        return Draw(member, torch.rand((n, DRAW_WIDTH), generator=generator, dtype=torch.float64))

    def __call__(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """``x`` (B x 3 x H x W) with photo ``i`` passed through its drawn member; differentiable in ``x``."""
        if x.dim() != 4 or len(draw) != len(x):
            raise BenchError(f"transform family: {len(draw)} draws for a batch of shape {tuple(x.shape)}")
        if self.strength == 0:
            return x
        out = x
        u = draw.u.to(x.device, x.dtype)
        for index, name in enumerate(self.members):
            if name == "identity":
                continue
            rows = (draw.member == index).nonzero().flatten().to(x.device)
            if len(rows):
                out = out.index_copy(0, rows, MEMBERS[name](x.index_select(0, rows), u.index_select(0, rows), self.strength))
        return out

    def sample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A fresh draw applied to ``x``."""
        return self(x, self.draw(len(x), generator))


def mean_offset_px(angle_deg: float, scale: float, shift_px: tuple[float, float], size: int = 112) -> float:
    """How far (mean over a ``size`` x ``size`` crop, px) a similarity about the centre moves the pixels: the
    measure :func:`bench.pipeline.mask_offset` gives the attacker's jitter, for comparing the ranges with it."""
    c = (size - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64) - c, torch.arange(size, dtype=torch.float64) - c,
                            indexing="ij")
    a = math.radians(angle_deg)
    nx = scale * (math.cos(a) * xs + math.sin(a) * ys) + shift_px[0]
    ny = scale * (-math.sin(a) * xs + math.cos(a) * ys) + shift_px[1]
    return float(((nx - xs) ** 2 + (ny - ys) ** 2).sqrt().mean())
