"""Fitting the exact synthesis' integer parameters (fixed-point version 2,
:mod:`nkcodec.nets.exact_v2`) of a model: ``python -m nkcodec fit-exact``."""

from __future__ import annotations

import numpy as np

from ..config import NUM_QUALITIES, QUALITIES
from ..nets.exact_v2 import float_synthesis, quantize

__all__ = ["fit"]


def fit(m, images: list, progress: bool = True) -> dict:
    """Version-2 parameters for a :class:`~nkcodec.nets.runtime.ModelRuntime`: the
    activation maxima of its float synthesis on the latents of ``images``
    (training photos, never Kodak) at every quality, then :func:`~nkcodec.nets.exact_v2.quantize`."""
    from tqdm import tqdm

    params = m.params
    stats = {}
    bar = tqdm(total=NUM_QUALITIES * len(images), desc="activation ranges", disable=not progress)
    for q in QUALITIES:
        for im in images:
            float_synthesis(params, m.encode_latent(im, q), q, stats)
            bar.update(1)
    bar.close()
    out = quantize(params, stats)
    out["images"] = np.asarray(len(images), np.int64)
    out.update({f"range/{key}": np.asarray(v, np.float64) for key, v in stats.items()})  # to re-derive the clamps
    return out
