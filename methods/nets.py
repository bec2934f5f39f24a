"""The networks of the generator methods: AdvFaces' generator and PatchGAN discriminator, GAP's generator.

Architectures follow ``../shared/ADVCLOAK.md`` (read from AdvFaces, since AdvCloak's own ``models.py``
was never published). ``width`` scales every layer: the paper's generator is ``width=64`` (~9 GMAC per
112x112 face); the CPU profile uses a narrower one (its width was chosen by measured throughput, see
``bench/training/profiles.py``). Shapes: faces ``N x 3 x 112 x 112`` in [0, 1] -> perturbation of the
same shape in [-1, 1] (tanh), in canonical [0, 1] pixel units.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1, reflect: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2 if k % 2 else (k - stride) // 2,
                     padding_mode="reflect" if reflect else "zeros")


class _Residual(nn.Module):
    def __init__(self, ch: int, norm):
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch, 3, reflect=True), norm(ch), nn.ReLU(True),
                                  _conv(ch, ch, 3, reflect=True), norm(ch))

    def forward(self, x):
        return x + self.body(x)


def _instance_norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=True)


def _layer_norm(ch: int) -> nn.Module:
    return nn.GroupNorm(1, ch)  # layer norm over (C, H, W), as AdvFaces' decoder


def kaiming_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class AdvFacesGenerator(nn.Module):
    """Encoder (7x7, two 4x4 stride-2 convs, instance norm) -> 3 residual blocks -> decoder
    (nearest upsample + 5x5 conv + layer norm, twice) -> 7x7 conv -> tanh perturbation."""

    def __init__(self, width: int = 64, output_init_scale: float = 1.0):
        """``output_init_scale`` scales the last convolution's initial weights (1 = AdvFaces' Kaiming init,
        whose tanh output starts saturated, L2 ~30,000 on 0-255; see bench/training/config.py)."""
        super().__init__()
        k = int(width)
        if k < 1:
            raise ValueError(f"generator width must be >= 1, got {width}")
        self.width = k
        self.net = nn.Sequential(
            _conv(3, k, 7, reflect=True), _instance_norm(k), nn.ReLU(True),
            _conv(k, 2 * k, 4, 2), _instance_norm(2 * k), nn.ReLU(True),
            _conv(2 * k, 4 * k, 4, 2), _instance_norm(4 * k), nn.ReLU(True),
            *[_Residual(4 * k, _instance_norm) for _ in range(3)],
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(4 * k, 2 * k, 5), _layer_norm(2 * k), nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * k, k, 5), _layer_norm(k), nn.ReLU(True),
            _conv(k, 3, 7, reflect=True), nn.Tanh(),
        )
        kaiming_init(self)
        with torch.no_grad():
            self.net[-2].weight.mul_(output_init_scale)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces)


class PatchDiscriminator(nn.Module):
    """Five 4x4 stride-2 convs (width x 1, 2, 4, 8, 16; paper width 32) with batch norm, LeakyReLU(0.2)
    after convs 3-5 only (AdvFaces' quirk, kept), then a 1x1 conv to patch logits (3x3 at 112)."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = int(width)
        if w < 1:
            raise ValueError(f"discriminator width must be >= 1, got {width}")
        self.width = w
        layers: list[nn.Module] = []
        cin = 3
        for i, mult in enumerate((1, 2, 4, 8, 16)):
            layers += [_conv(cin, w * mult, 4, 2), nn.BatchNorm2d(w * mult)]
            if i >= 2:
                layers.append(nn.LeakyReLU(0.2, True))
            cin = w * mult
        layers.append(nn.Conv2d(cin, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces * 2 - 1)


class GAPGenerator(nn.Module):
    """GAP's ResNet generator (batch norm, ``blocks`` residual blocks, tanh; paper ngf 64, 6 blocks),
    mapping one fixed noise tensor (``3 x 112 x 112``, seeded) to one universal perturbation.

    Its batch norms use batch statistics in eval mode too (no running stats): the only input is the
    fixed noise, so training and crafting must normalise it the same way."""

    def __init__(self, width: int = 64, blocks: int = 6, seed: int = 0):
        super().__init__()
        k = int(width)
        self.width, self.blocks = k, int(blocks)

        def bn(ch: int) -> nn.Module:
            return nn.BatchNorm2d(ch, track_running_stats=False)

        self.net = nn.Sequential(
            _conv(3, k, 7, reflect=True), bn(k), nn.ReLU(True),
            _conv(k, 2 * k, 4, 2), bn(2 * k), nn.ReLU(True),
            _conv(2 * k, 4 * k, 4, 2), bn(4 * k), nn.ReLU(True),
            *[_Residual(4 * k, bn) for _ in range(self.blocks)],
            nn.ConvTranspose2d(4 * k, 2 * k, 4, 2, 1), bn(2 * k), nn.ReLU(True),
            nn.ConvTranspose2d(2 * k, k, 4, 2, 1), bn(k), nn.ReLU(True),
            _conv(k, 3, 7, reflect=True), nn.Tanh(),
        )
        kaiming_init(self)
        noise = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(int(seed)))
        self.register_buffer("noise", noise)  # saved with the weights: the mask is a pure function of them

    def forward(self) -> torch.Tensor:
        """The universal perturbation, ``3 x 112 x 112`` (unscaled; the caller fixes its L2 norm)."""
        return self.net(self.noise)[0]
