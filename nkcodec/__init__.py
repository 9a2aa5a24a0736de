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
import importlib.abc
import importlib.util
import sys

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

# Import paths of 0.2 that moved into the subpackages, kept working ("import nkcodec.rle",
# "from nkcodec.context import ...", "nkcodec.evaluate.bd_rate"): old name -> where it lives now.
_MOVED = {
    "container": "format.container", "schema": "format.schema",
    "entropy": "coding.entropy", "rle": "coding.rle", "kmeans": "coding.kmeans", "context": "coding.context",
    "residual": "coding.nearlossless_v1", "lossless": "coding.nearlossless_v2",
    "model": "nets.transforms", "modelfile": "nets.weights_file", "fixed": "nets.exact_v1", "fixed32": "nets.exact_v2",
    "refine": "nets.refine", "train": "fit.train", "context_fit": "fit.context_tables",
    "bench": "tools.bench", "evaluate": "tools.evaluate", "fuzz": "tools.fuzz", "view": "tools.view",
}  # fmt: skip
_FROM_CODEC = {"compress", "decompress", "compress_to_size", "compress_many", "decompress_many", "Codec", "PRESETS"}
_SHOWN = {"rle", "kmeans", "context", "container", "evaluate", "metrics", "zoo", "codec", "format", "coding", "nets"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``nkcodec.<old name>`` (:data:`_MOVED`) as the module where it lives now: the same
    module object, so that attributes, monkeypatching and identity all agree."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{_MOVED[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module):
        # the import system has just set the alias' spec on the module: put back its own
        # (its real name is untouched; looked up per module, so threads importing two aliases cannot mix them)
        module.__spec__ = importlib.util.spec_from_file_location(module.__name__, module.__file__)


sys.meta_path.append(_MovedModules())


def __getattr__(name):
    # Heavy modules (Numba, FAISS, JAX) load on first use only; any submodule or
    # subpackage (and any moved name) is an attribute once asked for.
    if name in _FROM_CODEC:
        return getattr(importlib.import_module(".codec", __name__), name)
    if not name.startswith("__") and (name in _MOVED or importlib.util.find_spec(f"{__name__}.{name}") is not None):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nkcodec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SHOWN | _FROM_CODEC)
