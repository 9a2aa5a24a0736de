"""An exact adaptive filter after the synthesis (issue 25's filter, version 1): the encoder,
which has the original, solves per image the least-squares 5x5 cross-channel filter that
brings the decoder's exact image closest to it, quantises its coefficients to integers
(12 fractional bits) and sends them; the decoder applies them in integer arithmetic, so
the pixels are the same on every machine.  The encoder sends it only where it pays by the
nets' own objective (``lambda * MSE + bpp``).

For output channel c, with x the decoded image (uint8, edge-padded) and w, b integers::

    out_c = clip(x_c + ((b_c + sum_{ch, dy, dx} w[c, ch, dy, dx] * (x_ch[y+dy, x+dx] - 128) + 2**11) >> 12), 0, 255)

``|w| <= 2**15`` and ``|b| <= 2**24``: the sum stays below 2**31 (75 taps * 127 * 2**15 + 2**24).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> original = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
>>> decoded = np.clip(original.astype(int) + 6, 0, 255).astype(np.uint8)   # a bias the filter removes
>>> coefs = fit(decoded, original)
>>> out = apply(decoded, coefs)
>>> bool(np.abs(out.astype(int) - original).mean() < np.abs(decoded.astype(int) - original).mean())
True
>>> params, sections = encode(coefs)
>>> bool((decode(params, sections) == coefs).all())
True
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptStreamError
from ..format.schema import Int
from . import varint

__all__ = ["TAPS", "FRAC", "STREAM_PARAMS", "fit", "apply", "encode", "decode"]

VERSION = 1
TAPS = 5  # filter support, each way
FRAC = 12  # fractional bits of every coefficient
MAX_WEIGHT = 1 << 15
MAX_BIAS = 1 << 24
_N = 3 * TAPS * TAPS + 1  # coefficients per output channel: 75 taps and a bias
STREAM_PARAMS = {"v": Int(VERSION, VERSION), "taps": Int(TAPS, TAPS), "frac": Int(FRAC, FRAC)}


def _shifted(x: np.ndarray):
    """The 75 (dy, dx, channel) views of the edge-padded, centred image, in coefficient order."""
    r = TAPS // 2
    h, w = x.shape[:2]
    p = np.pad(x.astype(np.float32) - 128.0, ((r, r), (r, r), (0, 0)), mode="edge")
    for ch in range(3):
        for dy in range(TAPS):
            for dx in range(TAPS):
                yield p[dy : dy + h, dx : dx + w, ch]


def fit(decoded: np.ndarray, original: np.ndarray, ridge: float = 1e-3, share: int = 4) -> np.ndarray:
    """Integer coefficients (3, 76) int64 of the least-squares filter from ``decoded`` to
    ``original`` (both uint8 HxWx3): 75 taps and a bias per output channel, solved on one
    pixel in ``share`` (a fixed pseudo-random choice: a regular grid would see one phase of
    the synthesis' 16-pixel structure and lose most of the gain)."""
    n = decoded.shape[0] * decoded.shape[1]
    pick = np.random.default_rng(0).random(n) < 1.0 / share if n >= 64 * share else np.ones(n, bool)
    taps = [s.reshape(-1)[pick] for s in _shifted(decoded)]
    feats = np.stack([*taps, np.ones(taps[0].size, np.float32)], axis=1)
    original, decoded = original.reshape(-1, 3)[pick], decoded.reshape(-1, 3)[pick]
    gram = feats.T.astype(np.float64) @ feats.astype(np.float64)
    gram[np.diag_indices(_N)] += ridge * max(float(np.trace(gram)) / _N, 1.0)
    coefs = np.zeros((3, _N), np.int64)
    for c in range(3):
        target = original[:, c].astype(np.float32) - decoded[:, c].astype(np.float32)
        solution = np.linalg.solve(gram, feats.T.astype(np.float64) @ target.astype(np.float64))
        q = np.round(solution * (1 << FRAC))
        q[:-1] = np.clip(q[:-1], -MAX_WEIGHT, MAX_WEIGHT)
        q[-1] = np.clip(q[-1], -MAX_BIAS, MAX_BIAS)
        coefs[c] = q.astype(np.int64)
    return coefs


@numba.njit(cache=True, nogil=True)
def _apply_kernel(p, coefs, out):
    h, w = out.shape[0], out.shape[1]
    half = 1 << (FRAC - 1)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                acc = coefs[c, 3 * TAPS * TAPS]
                k = 0
                for ch in range(3):
                    for dy in range(TAPS):
                        for dx in range(TAPS):
                            acc += coefs[c, k] * (p[y + dy, x + dx, ch] - 128)
                            k += 1
                v = p[y + TAPS // 2, x + TAPS // 2, c] + ((acc + half) >> FRAC)
                out[y, x, c] = 0 if v < 0 else (255 if v > 255 else v)


def apply(decoded: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """The filtered image (uint8 HxWx3): integer arithmetic only, the same everywhere."""
    r = TAPS // 2
    p = np.pad(decoded, ((r, r), (r, r), (0, 0)), mode="edge").astype(np.int32)
    out = np.empty(decoded.shape, np.uint8)
    _apply_kernel(p, np.ascontiguousarray(coefs, np.int32), out)
    return out


def encode(coefs: np.ndarray) -> tuple:
    """(params of the "filter" stage, [the coefficients as zigzag varints])."""
    return {"v": VERSION, "taps": TAPS, "frac": FRAC}, [varint.pack(coefs.reshape(-1))]


def decode(params: dict, sections: list) -> np.ndarray:
    """Inverse of :func:`encode`; CorruptStreamError for a wrong count or an out-of-range coefficient."""
    if len(sections) != 1:
        raise CorruptStreamError("filter stage needs one section")
    coefs = varint.unpack(sections[0], 3 * _N, "filter coefficients").reshape(3, _N)
    if np.abs(coefs[:, :-1]).max() > MAX_WEIGHT or np.abs(coefs[:, -1]).max() > MAX_BIAS:
        raise CorruptStreamError("filter coefficient out of range")
    return coefs
