"""The format's size limits, and the check of an image array against them: what any
stream and any image handed to nkcodec may be (the ground floor of the format and the
coders; it imports nothing of nkcodec's but its errors' neighbour, numpy).

Examples
--------
>>> import numpy as np
>>> check_image(np.zeros((2, 3), np.uint8)).shape
(2, 3)
>>> check_image(np.zeros((2, 3), np.float32))
Traceback (most recent call last):
...
ValueError: expected dtype uint8, got float32; convert or scale the image first
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_SIDE", "MAX_PIXELS", "MAX_CHANNELS", "MAX_STREAM_CHANNELS", "check_image"]

MAX_SIDE = 1 << 16  # 65536 pixels a side
MAX_PIXELS = 1 << 28  # 268 MPix
MAX_CHANNELS = 4  # what every preset codes
MAX_STREAM_CHANNELS = 16  # what a stream may carry (near-lossless codes up to this many)


def check_image(image, dtypes=(np.uint8,), max_channels: int = MAX_CHANNELS) -> np.ndarray:
    """Validate a uint8 HxW, HxWx1 (gray), HxWx2 (gray + alpha), HxWx3 or HxWx4
    image (or of any of ``dtypes`` and up to ``max_channels`` channels, for the
    presets that take more); return it C-contiguous.  ValueError naming the problem otherwise."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy uint8 array, got {type(image).__name__}")
    if image.dtype not in dtypes:
        hint = "; the near-lossless and rle presets code uint16 samples and up to 16 channels" if image.dtype == np.uint16 else ""
        raise ValueError(f"expected dtype {' or '.join(np.dtype(d).name for d in dtypes)}, got {image.dtype}; convert or scale the image first{hint}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= max_channels):
        choices = "(1, 2, 3, 4)" if max_channels == 4 else f"1..{max_channels}"
        raise ValueError(f"expected shape HxW or HxWxC with C in {choices}, got {image.shape}")
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ValueError(f"image {h}x{w} is too large (at most {MAX_SIDE} a side and {MAX_PIXELS} pixels)")
    return np.ascontiguousarray(image)
