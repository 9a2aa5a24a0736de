"""Image-quality and rate metrics: MSE, PSNR, compression ratio, bpp.

bpp and compression ratio always take the real byte count of a stream.

Examples
--------
>>> import numpy as np
>>> a = np.zeros((2, 2, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 10
>>> round(psnr(a, b), 2)
38.92
>>> bpp(b"x" * 3, a)
6.0
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mse", "psnr", "compression_ratio", "bpp"]


def _pair(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mse(a, b) -> float:
    """Mean squared error over all pixels and channels."""
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a, b, peak: float = 255.0) -> float:
    """PSNR in dB (peak 255 for 8-bit images); ``inf`` for identical images."""
    m = mse(a, b)
    return math.inf if m == 0 else 10.0 * math.log10(peak * peak / m)


def _nbytes(data) -> int:
    return data if isinstance(data, int) else len(data)


def compression_ratio(data, image) -> float:
    """Raw image bytes divided by coded bytes (``data`` may be bytes or a length)."""
    return np.asarray(image).nbytes / _nbytes(data)


def bpp(data, image) -> float:
    """Bits per pixel: 8 x coded bytes / (height x width)."""
    shape = np.asarray(image).shape
    return 8.0 * _nbytes(data) / (shape[0] * shape[1])
