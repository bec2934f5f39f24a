"""Image-quality metrics between clean and protected faces (uint8 ``N x H x W x 3``)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def ssim(clean: np.ndarray, protected: np.ndarray) -> np.ndarray:
    """SSIM as defined by Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, per channel, averaged."""
    return np.array([
        structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for a, b in zip(clean, protected)
    ])


def psnr(clean: np.ndarray, protected: np.ndarray) -> np.ndarray:
    # identical images have infinite PSNR; report it as inf rather than failing
    return np.array(
        [np.inf if np.array_equal(a, b) else peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(clean, protected)]
    )


def linf_255(clean: np.ndarray, protected: np.ndarray) -> np.ndarray:
    diff = np.abs(protected.astype(np.int16) - clean.astype(np.int16))
    return diff.reshape(len(diff), -1).max(1).astype(np.float64)
