"""The shipped models: the registry of which weights file each model id names
(``MODEL_IDS``, ``EXACT32_VARIANTS``, ``RETIRED_MODELS``, ``DEFAULT_MODEL``), and loading
one once (:func:`load_model`, :func:`model_for_id`).  Running a loaded model is
:class:`~nkcodec.nets.runtime.ModelRuntime`'s; the weights file itself is
:mod:`nkcodec.nets.weights_file` (``export`` and the like are re-exported here).

Examples
--------
>>> m = load_model()                                   # doctest: +SKIP
>>> y = m.encode_latent(image, quality=4)              # doctest: +SKIP
>>> x_hat = m.decode_latent(y, quality=4)              # doctest: +SKIP
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from .errors import CorruptStreamError, RetiredModelError
from .nets.runtime import BUILD_LOCK, SYNTHESIS_EXACT32, SYNTHESIS_EXACT64, ModelRuntime
from .nets.weights_file import (  # noqa: F401  (the weights file API, re-exported: zoo.export and the like)
    TABLE_PRECISION,
    TAIL_MASS,
    add_to_weights,
    compute_tables,
    export,
    load_params_into,
    param_dict,
    read_groups,
    read_params,
)

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_IDS",
    "EXACT32_VARIANTS",
    "RETIRED_MODELS",
    "load_model",
    "model_for_id",
    "open_model",
    "synthesis_of",
    "weights_path",
    "ModelRuntime",
    "LoadedModel",
    "export",
    "add_to_weights",
    "compute_tables",
    "read_params",
    "param_dict",
    "load_params_into",
]

LoadedModel = ModelRuntime  # its name in 0.2

DEFAULT_MODEL = "nk64-5x"
# model id stored in each stream -> weights file name.  Never reuse an id:
# a retrained model gets a new id so old streams keep decoding with old weights.
MODEL_IDS = {3: "nk64-3", 5: "nk64-5", 6: "nk64-5x"}
# Variants: a model id that shares another's weights file but decodes with the
# float32-exact synthesis (nkcodec.nets.exact_v2): name -> (weights file, model id).
EXACT32_VARIANTS = {"nk64-5x": ("nk64-5", 6)}
# Models no longer shipped (to keep the wheel small): id -> (name, last release that decodes it).
# Id 4 was an intermediate export of nk64-5's training and never shipped.
RETIRED_MODELS = {1: ("nk64-1", "0.1.0"), 2: ("nk64-2", "0.1.0")}


def weights_path(name: str) -> Path:
    p = Path(name)
    if p.suffix == ".npz" and p.exists():
        return p
    return Path(str(resources.files("nkcodec") / "weights" / f"{name}.npz"))


def synthesis_of(model_id: int) -> str:
    """How a shipped model id decodes, without loading its weights (``""`` if not shipped)."""
    name = MODEL_IDS.get(model_id)
    if name is None:
        return ""
    return SYNTHESIS_EXACT32 if name in EXACT32_VARIANTS else SYNTHESIS_EXACT64


def model_for_id(model_id: int) -> ModelRuntime:
    """The shipped model a stream names by id.

    Raises :class:`~nkcodec.errors.RetiredModelError` for a model this build
    no longer ships (naming the last release that decodes it), and
    :class:`~nkcodec.errors.CorruptStreamError` for an id that never existed.
    """
    if model_id in RETIRED_MODELS:
        name, release = RETIRED_MODELS[model_id]
        raise RetiredModelError(
            f"stream needs model {name} (id {model_id}), retired from this build; "
            f'nkcodec {release} is the last release that decodes it (pip install "nkcodec=={release}")'
        )
    name = MODEL_IDS.get(model_id)
    if name is None:
        raise CorruptStreamError(f"stream needs model id {model_id}; this build has {sorted(MODEL_IDS)}")
    return load_model(name)


def load_model(name: str = DEFAULT_MODEL) -> ModelRuntime:
    """Load (once) a shipped model by name or .npz path; safe to call from several threads."""
    with BUILD_LOCK:
        return _load_model(name)


@functools.lru_cache(maxsize=4)
def _load_model(name: str) -> ModelRuntime:
    return open_model(name)


def open_model(name: str) -> ModelRuntime:
    """A new, uncached :class:`~nkcodec.nets.runtime.ModelRuntime` for a shipped name (variants included)
    or an .npz path; :func:`load_model` is the cached one to use."""
    if name in EXACT32_VARIANTS:
        stem, model_id = EXACT32_VARIANTS[name]
        return ModelRuntime(weights_path(stem), exact32=True, model_id=model_id, name=name)
    path = weights_path(name)
    if not path.exists():
        raise FileNotFoundError(f"model weights {path} not found; shipped: {sorted(MODEL_IDS.values())}")
    return ModelRuntime(path)
