"""nkcodec: a fast learned image codec (autoencoder + NK-RLE + k-means).

Examples
--------
>>> import numpy as np, nkcodec
>>> img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
>>> data = nkcodec.compress(img, preset="rle")
>>> bool((nkcodec.decompress(data) == img).all())
True
"""

from __future__ import annotations

import importlib

from .errors import CorruptStreamError, NkcodecError, RetiredModelError

__version__ = "0.2.0"

__all__ = [
    "compress",
    "compress_to_size",
    "compress_many",
    "decompress",
    "decompress_many",
    "Codec",
    "PRESETS",
    "NkcodecError",
    "CorruptStreamError",
    "RetiredModelError",
    "rle",
    "metrics",
    "container",
    "__version__",
]

_SUBMODULES = {
    "rle", "metrics", "container", "codec", "kmeans", "model", "train", "entropy", "bench", "evaluate",
    "zoo", "modelfile", "context", "context_fit", "fixed", "residual", "config", "batch", "schema", "fuzz", "imageio",
}  # fmt: skip
_FROM_CODEC = {"compress", "decompress", "compress_to_size", "compress_many", "decompress_many", "Codec", "PRESETS"}


def __getattr__(name):
    # Heavy modules (Numba, FAISS, JAX) load on first use only.
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _FROM_CODEC:
        return getattr(importlib.import_module(".codec", __name__), name)
    raise AttributeError(f"module 'nkcodec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES | _FROM_CODEC)
