"""Differentiable SSIM with the Gaussian window of Wang et al. (2004), equal to scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` (tested)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

C1, C2 = 0.01**2, 0.03**2  # for a [0, 1] data range


def _window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image of two ``N x C x H x W`` batches in [0, 1] (valid region, no padding)."""
    w = _window(size, sigma, a.shape[1], a)
    conv = lambda x: F.conv2d(x, w, groups=a.shape[1])  # noqa: E731
    mu_a, mu_b = conv(a), conv(b)
    var_a = conv(a * a) - mu_a**2
    var_b = conv(b * b) - mu_b**2
    cov = conv(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return s.flatten(1).mean(1)


def gaussian_blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    w = _window(size, sigma, x.shape[1], x)
    return F.conv2d(F.pad(x, [size // 2] * 4, mode="reflect"), w, groups=x.shape[1])
