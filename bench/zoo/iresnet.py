"""insightface's ``arcface_torch`` IResNet-18/34/50/100 backbones, written so their state dicts load.

Module and parameter names follow ``recognition/arcface_torch/backbones/iresnet.py`` exactly, so a
released ``backbone.pth`` loads with ``strict=True``:

* stem: ``conv1`` (3x3, 3 -> 64, no bias), ``bn1``, ``prelu``;
* ``layer1..layer4`` (64, 128, 256, 512 channels, each starting with a stride-2 block) of
  ``IBasicBlock``: ``bn1 -> conv1 -> bn2 -> prelu -> conv2 (strided) -> bn3`` plus the shortcut,
  with ``downsample = Sequential(conv1x1, BatchNorm2d)`` on each stage's first block; no final ReLU;
* head: ``bn2`` (BatchNorm2d 512), flatten, ``dropout``, ``fc`` (512*7*7 -> 512), ``features``
  (BatchNorm1d 512). Every batchnorm uses eps 1e-5.

Input: ``N x 3 x 112 x 112`` RGB normalised as ``(x - 0.5) / 0.5`` for x in [0, 1] (arcface_torch's
inference convention); output: unnormalised 512-D features.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import nn

# blocks per stage, as in arcface_torch's iresnet18/34/50/100 constructors
ARCHS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}
STAGE_WIDTHS = (64, 128, 256, 512)
INPUT_SIZE = 112
EMBEDDING_DIM = 512
BN_EPS = 1e-5


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block of the "improved" ResNet (BN first, PReLU in the middle)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)  # the stride sits on the second conv
        self.bn3 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=BN_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut  # no activation after the sum, unlike torchvision's ResNet


class IResNet(nn.Module):
    """The bare backbone: normalised 112x112 RGB -> unnormalised 512-D features."""

    def __init__(self, layers: tuple[int, int, int, int], num_features: int = EMBEDDING_DIM, dropout: float = 0.0):
        super().__init__()
        self.conv1 = _conv3x3(3, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0], eps=BN_EPS)
        self.prelu = nn.PReLU(STAGE_WIDTHS[0])
        inplanes = STAGE_WIDTHS[0]
        for i, (width, blocks) in enumerate(zip(STAGE_WIDTHS, layers), start=1):
            setattr(self, f"layer{i}", self._stage(inplanes, width, blocks))
            inplanes = width
        self.bn2 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        side = INPUT_SIZE // 16  # four stride-2 stages: 112 -> 7
        self.fc = nn.Linear(inplanes * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=BN_EPS)

    @staticmethod
    def _stage(inplanes: int, planes: int, blocks: int) -> nn.Sequential:
        first = IBasicBlock(inplanes, planes, stride=2)
        return nn.Sequential(first, *(IBasicBlock(planes, planes) for _ in range(blocks - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet(arch: str, **kwargs) -> IResNet:
    """``iresnet("iresnet50")`` -> a randomly initialised IResNet-50."""
    if arch not in ARCHS:
        raise ValueError(f"unknown IResNet {arch!r}; known: {', '.join(ARCHS)}")
    return IResNet(ARCHS[arch], **kwargs)


def guess_arch(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Which IResNet depth a state dict holds (by counting its blocks per stage), or None."""
    counts = [0, 0, 0, 0]
    for key in state_dict:
        m = re.match(r"layer([1-4])\.(\d+)\.", key)
        if m:
            stage, block = int(m.group(1)) - 1, int(m.group(2))
            counts[stage] = max(counts[stage], block + 1)
    for arch, layers in ARCHS.items():
        if tuple(counts) == layers:
            return arch
    return None


__all__ = ["ARCHS", "EMBEDDING_DIM", "INPUT_SIZE", "IBasicBlock", "IResNet", "iresnet", "guess_arch"]
