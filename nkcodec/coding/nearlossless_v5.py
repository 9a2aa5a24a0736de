"""Bounded-error coding, the ``near-lossless`` preset's residual version 5: version 4's
tiles (any depth, 1 to 16 channels, the encoder's layout and shifts written in each
tile; :mod:`nkcodec.coding.nearlossless_v4`), coded with a stronger model.

What version 5 adds to the compiled coder (:func:`nkcodec.coding.nearlossless_v2._code_tile`):

* **An LMS stage after the blend.**  The blend's prediction is corrected by a learned
  sum of 21 inputs: the final prediction errors at 6 decoded neighbours and at this
  pixel in the plane coded before, a constant, and how far each sub-predictor is from
  the blend.  The weights are a normalised LMS, ``w += 2**-LMS * e * u / (1 + |u|**2)``,
  in integers (Q28), reset at every plane of every tile.  So the coder learns, per
  tile, which way the blend errs and which sub-predictors it underweights.
* **Two more context models** for every bit, mixed with the other three: the
  sub-predictors' spread around the blend with the north-west and north-east errors,
  and the 6-bit texture pattern with the activity.
* **A prior of its own** (:data:`PRIOR_FILE`, counted by ``benchmarks/fit_lossless_prior.py
  --version 5`` on the training photos, as version 2's was): it is part of the format.

The encoder's ``effort`` (:data:`nearlossless_v4.EFFORTS`) tries other layouts and shifts
per tile and keeps the smallest (:func:`nearlossless_v4.candidates`); the decoder reads
what was chosen, so its speed does not depend on the effort.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
>>> out = decode(encode(x, max_error=0), x.shape, max_error=0, bits=8)
>>> bool((out == x).all())
True
"""

from __future__ import annotations

import numpy as np

from . import nearlossless_v2 as v2
from . import nearlossless_v4 as v4

__all__ = ["VERSION", "MODELS", "LMS", "PRIOR_FILE", "CODER", "prior", "flat_prior", "encode", "decode"]

VERSION = 5
MODELS = 5  # context models mixed per bit (version 2: 3)
LMS = 8  # the LMS stage's step, 2**-8
MODES = (0, 1)  # tile modes: 1 the LMS stage on, 0 off (nearlossless_v4._mode chooses)
PRIOR_FILE = "lossless-v5-prior.npz"  # the starting probabilities of version 5: fixed forever
_PRIOR = []


def flat_prior() -> tuple:
    """(probabilities, mixer weights) knowing nothing, in version 5's shapes."""
    return np.full((MODELS, v2._PROBS_SHAPE[1]), v2._ONE // 2, np.uint16), np.full((v2._WTS_SHAPE[0], MODELS), (1 << 16) // MODELS, np.int64)


def prior() -> tuple:
    """The shipped starting state of version 5's tiles, (probabilities uint16, mixer
    weights int64) in version 2's layout with :data:`MODELS` models."""
    if not _PRIOR:
        _PRIOR.append(v2.load_prior(PRIOR_FILE, *(a.shape for a in flat_prior())))
    return _PRIOR[0]


CODER = v4.Coder(VERSION, prior, LMS, MODES)


def encode(image: np.ndarray, max_error: int = 0, bits: int | None = None, threads: int | None = None, effort: int = 0) -> list:
    """:func:`nearlossless_v4.encode` with version 5's coder: one bytes object per tile."""
    return v4.encode(image, max_error, bits, threads, coder=CODER, effort=effort)


def decode(parts: list, shape: tuple, max_error: int = 0, bits: int = 8, wide: bool | None = None, threads: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode` (:func:`nearlossless_v4.decode` with version 5's coder)."""
    return v4.decode(parts, shape, max_error, bits, wide, threads, coder=CODER)
