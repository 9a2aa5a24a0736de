"""Bounded-error residual layer over the learned base image (the ``near-lossless`` preset).

The learned codec reconstructs ``x_hat``; this layer codes ``x - x_hat`` so that
every decoded sample is within ``max_error`` of the original (``max_error=0``:
lossless).  The residual is quantised with step ``2 * max_error + 1``:
``r = floor((x - x_hat + max_error) / step)`` and the decoder outputs
``clip(x_hat + r * step, 0, 255)``, so ``|x - out| <= max_error`` everywhere
(clipping can only move a value towards the original, which lies in 0..255).

``r`` is coded channel by channel (G, then R, then B), each in three phases:
pixels at (even, even), then (odd, odd), whose 4 diagonal neighbours are then
decoded, then the rest, whose 4 direct neighbours are.  For each pixel:

* a **prediction** ``p`` of ``r``, an integer linear combination (weights in
  1/256, fitted per tile and phase by least squares and sent in the stream) of the base image's own detail there (4 x_hat minus its 4
  neighbours), the earlier channels' ``r`` at the pixel and, after the first
  phase, the sum of the decoded neighbours in its own channel;
* a **context** (one of 36) from the base image's local gradient and the
  magnitude of the earlier channels' ``r`` (first phase) or of the decoded
  neighbours (later phases);
* ``r - p`` is ANS-coded with, per (channel, phase, context), one of
  ``len(THETAS)`` two-sided geometric integer tables; the encoder picks the
  cheapest and sends its index (one byte per non-empty context).  Values
  beyond +-63 escape as varints.

Images over 1024 pixels a side are coded in 1024 x 1024 tiles, one after
another, each as if it were the whole image, so memory stays bounded.  The
tables are built from integer ratios with integer arithmetic only, and all
predictions and contexts are int64 sums, so every machine decodes the same bytes
to the same pixels.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
>>> base = np.clip(x.astype(int) + 3, 0, 255).astype(np.uint8)
>>> params, sections = encode(x, base, max_error=1)
>>> out = decode(base, params, sections)
>>> int(np.abs(out.astype(int) - x).max()) <= 1
True
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import CorruptStreamError, check_int
from .entropy import PRECISION, TABLE_TOTAL

__all__ = ["MAX_ERROR", "THETAS", "check_max_error", "decode", "encode", "table_bank"]

MAX_ERROR = 32  # largest max_error a stream may name
SPAN = 63  # residual symbols -SPAN..SPAN; beyond: escape bins + varints
SIZE = 2 * SPAN + 3  # symbols: escape below, -SPAN..SPAN, escape above
_LO = -SPAN
# Ratios theta * 2**16 of the two-sided geometric tables P(k) ~ theta**|k|:
# Laplace scales 0.1 * 1.25**i residual steps (0.1 .. 101), theta = exp(-1 / scale).
THETAS = (
    3, 22, 109, 392, 1090, 2474, 4764, 8048, 12242, 17123, 22395, 27760, 32964, 37820, 42216, 46097,
    49458, 52322, 54732, 56740, 58400, 59762, 60874, 61779, 62513, 63106, 63585, 63970, 64281, 64530, 64730, 64890,
)  # fmt: skip
_GRAD_EDGES = (6, 12, 24, 48, 96)  # base-image gradient (3-channel sum of central differences)
_MAG_EDGES = (1, 3, 6, 12, 24)  # magnitudes of the features, in residual steps
_BINS = len(_GRAD_EDGES) + 1
NUM_CONTEXTS = _BINS * (len(_MAG_EDGES) + 1)
_ORDER = (1, 0, 2)  # G first: R and B are predicted from it
PHASES = 3
_COEF_BITS = 8
_MAX_COEF = 1 << 12
_MAX_ESCAPE = 1 << 20  # |r - p| <= 255 + 16 * 6 * 255 in any real stream
RESIDUAL_TILE = 1024  # pixels per coding tile side: each tile is coded on its own, so memory stays bounded


def _table(theta: int) -> np.ndarray:
    """Integer frequencies (sum 2**16, each >= 1) of a two-sided geometric
    distribution with ratio theta / 2**16 over the residual alphabet, escape bins
    holding the tails.  Integer arithmetic only."""
    a = np.zeros(SPAN + 2, np.int64)
    a[0] = 1 << 40
    for k in range(1, SPAN + 2):
        a[k] = (int(a[k - 1]) * theta) >> 16
    tail = (int(a[SPAN + 1]) << PRECISION) // (TABLE_TOTAL - theta)  # sum of theta**k for k > SPAN
    w = np.concatenate([[tail], a[SPAN:0:-1], a[: SPAN + 1], [tail]])
    free = TABLE_TOTAL - w.size
    total = int(w.sum())
    f = (w * free) // total  # floor of each share; the rest goes to the largest remainders
    rem = (w * free) % total
    short = free - int(f.sum())
    f[np.argsort(-rem, kind="stable")[:short]] += 1
    return (f + 1).astype(np.uint32)


@functools.cache
def table_bank():
    """:class:`~nkcodec.coding.entropy.IntTables` of every table in :data:`THETAS`."""
    from .entropy import IntTables

    return IntTables(np.stack([_table(t) for t in THETAS]), np.full(len(THETAS), SIZE))


@functools.cache
def _code_lengths() -> np.ndarray:
    f = table_bank().freq.astype(np.float64)
    return -np.log2(f / TABLE_TOTAL)  # (tables, symbols); the encoder's choice only


def _n4(a: np.ndarray) -> np.ndarray:
    """Sum of the 4 neighbours (zero outside the image), int64."""
    p = np.pad(a, 1)
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]


def _d4(a: np.ndarray) -> np.ndarray:
    """Sum of the 4 diagonal neighbours (zero outside the image), int64."""
    p = np.pad(a, 1)
    return p[:-2, :-2] + p[:-2, 2:] + p[2:, :-2] + p[2:, 2:]


def _phases(h: int, w: int) -> np.ndarray:
    """Coding phase of each pixel: 0 on (even, even), 1 on (odd, odd) (its 4 diagonal
    neighbours are phase 0), 2 elsewhere (its 4 direct neighbours are phases 0 and 1)."""
    i, j = np.arange(h)[:, None] & 1, np.arange(w)[None, :] & 1
    return np.where(i == j, i, 2).astype(np.int64)


def _base_maps(base: np.ndarray) -> tuple:
    """(gradient bin of each pixel, per-channel detail) of the base image, edges
    replicated: the bins sum the 3 channels' central differences; the detail is
    4 * base - (sum of its 4 neighbours), the base's own fine texture, which the
    residual tends to continue."""
    b = np.pad(base.astype(np.int64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    up, down, left, right = b[:-2, 1:-1], b[2:, 1:-1], b[1:-1, :-2], b[1:-1, 2:]
    gbins = np.digitize((np.abs(down - up) + np.abs(right - left)).sum(axis=2), _GRAD_EDGES)
    return gbins, 4 * b[1:-1, 1:-1] - (up + down + left + right)


def _neighbours(own, phase: int):
    return _d4(own) if phase == 1 else _n4(own)


def _features(detail, done: list, own, phase: int) -> list:
    """Prediction features of one channel in one phase: the base's detail, the
    earlier channels' residuals, and (phases 1, 2) the own channel's decoded neighbours."""
    feats = [detail, *done]
    return [*feats, _neighbours(own, phase)] if phase else feats


def _contexts(gbins, done: list, own, phase: int) -> np.ndarray:
    if phase:
        mag = _neighbours(np.abs(own), phase) // 4
    elif done:
        mag = sum(np.abs(d) for d in done)
    else:
        mag = np.zeros_like(gbins)
    return gbins * (len(_MAG_EDGES) + 1) + np.digitize(mag, _MAG_EDGES)


def _predict(feats: list, coef, sel) -> np.ndarray:
    acc = np.zeros(int(sel.sum()), np.int64)
    for f, c in zip(feats, coef):
        acc += int(c) * f[sel]
    return (acc + (1 << (_COEF_BITS - 1))) >> _COEF_BITS  # round half up, exact


def _fit(feats: list, target: np.ndarray, sel) -> list:
    if not feats or not sel.any():
        return [0] * len(feats)
    a = np.stack([f[sel] for f in feats], 1).astype(np.float64)
    c, *_ = np.linalg.lstsq(a, target[sel].astype(np.float64), rcond=None)
    return np.clip(np.round(c * (1 << _COEF_BITS)), -_MAX_COEF, _MAX_COEF).astype(np.int64).tolist()


def residual_tiles(h: int, w: int) -> list:
    """(rows, cols) slices of the coding tiles, RESIDUAL_TILE x RESIDUAL_TILE pixels in raster order,
    each coded as if it were the whole image (bounded memory on any image)."""
    return [(slice(r, min(r + RESIDUAL_TILE, h)), slice(c, min(c + RESIDUAL_TILE, w))) for r in range(0, h, RESIDUAL_TILE) for c in range(0, w, RESIDUAL_TILE)]


def check_max_error(max_error) -> int:
    """``max_error`` as an int, or ValueError naming the allowed range."""
    return check_int(max_error, "max_error", 0, MAX_ERROR)


def _encode_tile(r: np.ndarray, base: np.ndarray, lengths, out: dict) -> None:
    """Code one tile's quantised residual ``r`` (h, w, 3) int64; appends to ``out``'s lists."""
    from .entropy import to_symbols

    h, w = r.shape[:2]
    (gbins, detail), phases = _base_maps(base), _phases(h, w)
    done: list = []
    for c in _ORDER:
        own = r[:, :, c]
        for g in range(PHASES):
            sel = phases == g
            known = np.where(phases < g, own, 0)  # what the decoder has of this channel so far
            feats = _features(detail[:, :, c], done, known, g)
            coef = _fit(feats, own, sel)
            e = own[sel] - _predict(feats, coef, sel)
            ctx = _contexts(gbins, done, known, g)[sel]
            order = np.argsort(ctx, kind="stable")
            sym, esc = to_symbols(e[order], _LO, SIZE)
            counts = np.bincount(ctx, minlength=NUM_CONTEXTS)
            for s in np.split(sym.astype(np.int32), np.cumsum(counts)[:-1]):
                if s.size:  # an empty context needs no table (the decoder knows the counts)
                    best = int(np.argmin(lengths @ np.bincount(s, minlength=SIZE)))
                    out["choices"].append(best)
                    out["streams"].append(s)
            out["coefs"] += coef
            out["escaped"].append(e[order][esc])
        done.insert(0, own)


def encode(image: np.ndarray, base: np.ndarray, max_error: int = 1):
    """Residual of ``image`` over ``base`` (both uint8 HxWx3) -> (params, [table
    choices, prediction weights, ANS bytes, escape varints])."""
    from .entropy import encode_symbols, pack_varints

    max_error = check_max_error(max_error)
    step = 2 * max_error + 1
    lengths = _code_lengths()
    out: dict = {"choices": [], "streams": [], "coefs": [], "escaped": []}
    for rs, cs in residual_tiles(*image.shape[:2]):
        r = (image[rs, cs].astype(np.int64) - base[rs, cs].astype(np.int64) + max_error) // step
        _encode_tile(r, base[rs, cs], lengths, out)
    escaped = np.concatenate(out["escaped"])
    data = encode_symbols(out["streams"], table_bank(), checked=True, rows=out["choices"])
    params = {"max_error": max_error, "escapes": int(escaped.size)}
    return params, [bytes(out["choices"]), pack_varints(out["coefs"]), data, pack_varints(escaped)]


COEFS_PER_TILE = sum(1 + j + (g > 0) for j in range(3) for g in range(PHASES))  # detail, earlier channels, neighbours


class _Reader:
    """The decoder's cursor over the shared sections (table choices, weights, ANS, escapes)."""

    def __init__(self, sections: list, n_tiles: int, n_esc: int):
        from .entropy import SymbolDecoder, unpack_varints

        self.choices = np.frombuffer(sections[0], np.uint8).astype(np.int64)
        if self.choices.size > n_tiles * 3 * PHASES * NUM_CONTEXTS or self.choices.max(initial=0) >= len(THETAS):
            raise CorruptStreamError("residual table choices malformed")
        if len(sections[1]) > 10 * n_tiles * COEFS_PER_TILE:
            raise CorruptStreamError("residual prediction weights malformed")
        self.coefs = unpack_varints(sections[1], n_tiles * COEFS_PER_TILE)
        if np.abs(self.coefs).max(initial=0) > _MAX_COEF:
            raise CorruptStreamError("residual prediction weight out of range")
        self.esc = unpack_varints(sections[3], n_esc)
        if np.abs(self.esc).max(initial=0) > _MAX_ESCAPE:
            raise CorruptStreamError("residual escape value out of range")
        self.dec = SymbolDecoder(sections[2])
        self.chosen = self.coef_used = self.esc_used = 0

    def take_coefs(self, n: int) -> list:
        c = self.coefs[self.coef_used : self.coef_used + n].tolist()
        self.coef_used += n
        return c

    def take_rows(self, counts: np.ndarray) -> list:
        """The bank row of each context (the next choices, for the non-empty ones)."""
        rows = np.zeros(NUM_CONTEXTS, np.int64)
        used = np.flatnonzero(counts)
        if self.chosen + used.size > self.choices.size:
            raise CorruptStreamError("residual table choices truncated")
        rows[used] = self.choices[self.chosen : self.chosen + used.size]
        self.chosen += used.size
        return rows.tolist()

    def take_escapes(self, n: int) -> np.ndarray:
        if self.esc_used + n > self.esc.size:
            raise CorruptStreamError("more escapes than the stream declares")
        e = self.esc[self.esc_used : self.esc_used + n]
        self.esc_used += n
        return e

    def finish(self) -> None:
        if self.esc_used != self.esc.size or self.chosen != self.choices.size:
            raise CorruptStreamError("escape count or table choices disagree with the decoded symbols")


def _decode_tile(base: np.ndarray, rd: _Reader) -> np.ndarray:
    """One tile's quantised residual (h, w, 3) int64."""
    from .entropy import from_symbols

    h, w = base.shape[:2]
    (gbins, detail), phases = _base_maps(base), _phases(h, w)
    r = np.zeros((h, w, 3), np.int64)
    done: list = []
    for j, c in enumerate(_ORDER):
        own = np.zeros((h, w), np.int64)
        for g in range(PHASES):
            sel = phases == g
            feats = _features(detail[:, :, c], done, own, g)
            pred = _predict(feats, rd.take_coefs(len(feats)), sel)
            ctx = _contexts(gbins, done, own, g)[sel]
            order = np.argsort(ctx, kind="stable")
            counts = np.bincount(ctx, minlength=NUM_CONTEXTS)
            sym = rd.dec.decode_run(table_bank(), 0, counts.tolist(), rows=rd.take_rows(counts)).astype(np.int64)
            vals, esc = from_symbols(sym, _LO, SIZE)
            vals[esc] = rd.take_escapes(int(np.count_nonzero(esc)))
            e = np.empty_like(vals)
            e[order] = vals
            v = e + pred
            if np.abs(v).max(initial=0) > 255:
                raise CorruptStreamError("residual value out of range")
            own[sel] = v
        r[:, :, c] = own
        done.insert(0, own)
    return r


def decode(base: np.ndarray, params, sections: list) -> np.ndarray:
    """Inverse of :func:`encode`: the uint8 HxWx3 image, within ``max_error`` of the original."""
    from .entropy import check_length, escape_count

    h, w = base.shape[:2]
    if not isinstance(params, dict):
        raise CorruptStreamError("residual parameters missing")
    try:
        max_error = check_max_error(params.get("max_error"))
    except ValueError:
        raise CorruptStreamError("residual max_error missing or out of range") from None
    if len(sections) != 4:
        raise CorruptStreamError(f"residual has {len(sections)} sections, expected 4")
    tiles = residual_tiles(h, w)
    check_length(len(sections[2]), 3 * h * w * float(table_bank().min_bits().min()), "residual section")
    rd = _Reader(sections, len(tiles), escape_count(params, 3 * h * w))
    step = 2 * max_error + 1
    out = np.empty((h, w, 3), np.uint8)
    for rs, cs in tiles:
        r = _decode_tile(base[rs, cs], rd)
        out[rs, cs] = np.clip(base[rs, cs].astype(np.int64) + r * step, 0, 255)
    rd.finish()
    return out
