"""Counting the near-lossless coder's prior (version 2, :mod:`nkcodec.coding.nearlossless_v2`)
on training photos: the shipped ``lossless-v2-prior.npz`` that starts every tile
(``benchmarks/fit_lossless_prior.py`` runs it).  It drives the coder's own tile kernel,
so it reads the coder's internals: it is the coder's offline half."""

from __future__ import annotations

import numpy as np

from ..coding import nearlossless_v2 as v2
from ..coding import nearlossless_v5 as v5

__all__ = ["fit_prior"]


def fit_prior(images, progress=None, version: int = 2) -> tuple:
    """Count a prior on training images: each tile is coded from the flat prior,
    and every probability's final value is averaged in the logistic domain over the
    tiles that used it (the mixer weights over all tiles).  Returns (probs, wts)
    int64, for :data:`~nkcodec.coding.nearlossless_v2.PRIOR_FILE` (``version`` 2) or
    :data:`~nkcodec.coding.nearlossless_v5.PRIOR_FILE` (5: its models and LMS stage, with
    version 2's plane layout, as the roles of version 5's planes take it)."""
    flat, lms = (v5.flat_prior, v5.LMS) if version == 5 else (v2.flat_prior, 0)
    shapes = [a.shape for a in flat()]
    sums = np.zeros(shapes[0], np.int64)
    used = np.zeros(shapes[0], np.int64)
    wsum = np.zeros(shapes[1], np.int64)
    n = 0
    for image in images:
        image = v2._as_hwc(image)
        lay = v2._layout(image.shape[2])
        steps = v2._steps(image.shape[2], 0)
        for t in v2.tiles(*image.shape[:2]):
            tile = np.ascontiguousarray(image[t])
            probs, wts = flat()
            buf = np.empty(tile.size * 4 + 1024, np.uint8)
            v2._code_tile(tile, np.empty_like(tile), lay, v2._CFG8, steps, buf, v2._TABLES, probs, wts, True, lms)
            hit = probs != v2._ONE // 2
            sums += np.where(hit, v2._STRETCH[probs >> 4], 0)
            used += hit
            wsum += wts
            n += 1
        if progress is not None:
            progress()
    mean = np.where(used > 0, sums // np.maximum(used, 1), 0)
    probs = np.clip(v2._SQUASH[np.clip(mean, -2047, 2047) + 2048] << 4, 64, v2._ONE - 64)
    probs = np.where(used > 0, probs, v2._ONE // 2)
    return probs.astype(np.int64), (wsum // max(n, 1)).astype(np.int64)
