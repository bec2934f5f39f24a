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


HALF_NYQUIST = 0.25  # cycles per pixel: half of the highest frequency a pixel grid holds (0.5)


def high_frequency_share(mask) -> float:
    """The share of a mask's energy above half the Nyquist frequency: a number for "grating".

    ``mask``: ``C x H x W`` (or ``H x W``), any units. Energy is the squared magnitude of each channel's 2-D
    FFT (Parseval: the mask's squared L2, its mean included), summed over channels; "above" counts every
    frequency whose radius sqrt(fx^2 + fy^2) exceeds 0.25 cycles per pixel. A stripe alternating row by row
    is 1.0 (all at fy = 0.5); a smooth blob ~0. A row-by-row grating is what a sub-pixel shift, a blur or a
    downscale erases first (tests/test_pipeline.py). NaN for an all-zero mask (no energy to share)."""
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"high_frequency_share: a C x H x W or H x W mask, got shape {m.shape}")
    power = np.abs(np.fft.fft2(m, axes=(-2, -1))) ** 2
    fy, fx = np.fft.fftfreq(m.shape[-2])[:, None], np.fft.fftfreq(m.shape[-1])[None, :]
    high = np.hypot(fx, fy) > HALF_NYQUIST
    total = power.sum()
    return float(power[:, high].sum() / total) if total > 0 else float("nan")
