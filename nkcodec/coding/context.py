"""Context coding of the quantised latent (the ``context`` preset).

The latent's channels are coded one after another, most active first.  Before
channel ``j`` is coded, every latent position ``p`` gets, from what the
decoder already has,

* an *activity* ``A_j(p)``: an integer linear prediction of the residual's
  magnitude from ``|y_i|`` of the channels ``i < j`` at ``p`` and their sums
  over the 4 neighbours of ``p``;
* a *mean* ``mu_j(p)``: an integer linear prediction of ``y_j(p)`` from the
  signed values of the same features (version 2; version 1 has no mean and no
  neighbour terms).

Version 2 codes each channel in two passes over a checkerboard: the *anchor*
positions first, then the others, whose 4 neighbours (all anchors) of the same
channel join both predictions.  It codes latents larger than 64 positions a
side in 64 x 64 tiles, one after another, each as if it were the whole latent,
so the working set stays small on any image.  ``K - 1`` integer thresholds per (channel,
pass) split the activity into ``K`` contexts, each with its own integer
frequency table for ``y_j - mu_j``.  Weights (2^12 per unit), thresholds and
tables are fitted once on latents of the training photos (never Kodak) and
stored in the weights file (group ``ctx/``; version 2 under ``ctx/v2/``), so
no side information travels in the stream.

Every value the decoder computes is an exact int64 sum of decoded integers
(every product and sum stays below 2^47), so it selects the encoder's tables
on every machine.

Examples
--------
>>> import numpy as np
>>> contexts(np.array([0, 1, 3, 4, 9]), np.array([1, 4])).tolist()  # thresholds passed
[0, 1, 1, 2, 2]
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptStreamError
from .entropy import MAX_LATENT, TABLE_TOTAL

__all__ = [
    "ContextTables",
    "contexts",
    "code_latent",
    "decode_latent",
    "stream_version",
    "table_keys",
    "pass_map",
    "coding_tiles",
    "neighbours4",
    "round_shift",
    "LATEST",
    "NUM_CONTEXTS",
    "CODING_TILE",
]

LATEST = 2  # context model version written by fit() and used by the encoder
NUM_CONTEXTS = 16  # contexts per (channel, pass) for version 2 (version 1 files use 8)
WEIGHT_BITS = 12  # fixed-point scale of the prediction weights
MAX_WEIGHT = 1 << 15  # |W| <= 2**15, |y| <= 2**20, neighbour sums <= 2**22, 385 terms: sums < 2**47 (int64)
MAX_RESIDUAL = 1 << 40  # |y - mu| a decoder accepts as an escape value (then |y| <= MAX_LATENT is checked)
_PREFIX = {1: "", 2: "v2/"}
CODING_TILE = 64  # version 2 codes the latent in tiles of CODING_TILE x CODING_TILE positions, one after another (bounded working set)


@numba.njit(cache=True, nogil=True)
def _predict(weights, c, nb, j0, j1):
    """Rows j0..j1-1 of the integer prediction ``W[:, :M] @ c + W[:, M:2M] @ nb``
    (the second term only when W has 2M columns or more); row j reads channels
    before j only.  Exact int64: every sum is below 2**47."""
    m, n = c.shape
    two = weights.shape[1] >= 2 * m
    out = np.zeros((j1 - j0, n), np.int64)
    for j in range(j0, j1):
        for i in range(j):
            w = weights[j, i]
            if w != 0:
                for p in range(n):
                    out[j - j0, p] += w * c[i, p]
            if two:
                w = weights[j, m + i]
                if w != 0:
                    for p in range(n):
                        out[j - j0, p] += w * nb[i, p]
    return out


@numba.njit(cache=True, nogil=True)
def neighbours4(a, h, w):
    """Sum over the 4 neighbours (zero outside the latent or tile) of each of
    the (C, h*w) int64 rows."""
    out = np.zeros(a.shape, np.int64)
    for ch in range(a.shape[0]):
        x = a[ch]
        for r in range(h):
            for c in range(w):
                p = r * w + c
                s = 0
                if r > 0:
                    s += x[p - w]
                if r < h - 1:
                    s += x[p + w]
                if c > 0:
                    s += x[p - 1]
                if c < w - 1:
                    s += x[p + 1]
                out[ch, p] = s
    return out


@numba.njit(cache=True, nogil=True)
def _reached(a, thresholds, k):
    """Context of one activity value: how many of the K-1 thresholds it has reached."""
    c = 0
    for i in range(k - 1):
        if a >= thresholds[i]:
            c += 1
    return c


@numba.njit(cache=True, nogil=True)
def round_shift(acc):
    """round(acc / 2**WEIGHT_BITS), halves up, of an int64 value or array; exact
    (the arithmetic shift floors)."""
    return (acc + (1 << (WEIGHT_BITS - 1))) >> WEIGHT_BITS


@numba.njit(cache=True, nogil=True)
def table_keys(activity, thresholds, passes, k):
    """Stream key ``(j * passes + g) * K + context`` of every (ordered channel j,
    position); the context counts the pass's thresholds the activity reached."""
    m, n = activity.shape
    g_n = thresholds.shape[1]
    out = np.empty((m, n), np.int32)
    for j in range(m):
        for p in range(n):
            g = passes[p]
            out[j, p] = (j * g_n + g) * k + _reached(activity[j, p], thresholds[j, g], k)
    return out


@numba.njit(cache=True, nogil=True)
def _pass_order(pos, activity, acc, own, w_mag, w_mean, nb_mag, nb_y, thresholds, k):
    """Decoder, one pass of one channel: the pass's positions sorted by context
    (stable, as the encoder's streams are), the count per context and the
    rounded mean of each sorted position.  ``own``: add the channel's own
    neighbour terms (second pass); ``acc`` of length 0: no mean (version 1)."""
    npos = pos.size
    ctx = np.empty(npos, np.int64)
    counts = np.zeros(k, np.int64)
    for t in range(npos):
        p = pos[t]
        a = activity[p]
        if own:
            a += w_mag * nb_mag[p]
        ctx[t] = _reached(a, thresholds, k)
        counts[ctx[t]] += 1
    start = np.zeros(k, np.int64)
    for c in range(1, k):
        start[c] = start[c - 1] + counts[c - 1]
    order = np.empty(npos, np.int64)
    mean = np.zeros(npos, np.int64)
    for t in range(npos):
        d = start[ctx[t]]
        start[ctx[t]] += 1
        p = pos[t]
        order[d] = p
        if acc.size:
            m = acc[p]
            if own:
                m += w_mean * nb_y[p]
            mean[d] = round_shift(m)
    return order, counts, mean


def pass_map(h: int, w: int, g: int) -> np.ndarray:
    """Pass of each position: 0 everywhere (one pass), or the checkerboard (0 = anchor)."""
    if g == 1:
        return np.zeros(h * w, np.int64)
    r, c = np.divmod(np.arange(h * w), w)
    return (r + c) & 1


def contexts(activity: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Context index (0..K-1) of each activity value for one channel: how many
    of the channel's K-1 thresholds the activity has reached (as the coder counts)."""
    activity, thresholds = np.asarray(activity, np.int64), np.asarray(thresholds, np.int64)
    return table_keys(activity[None], thresholds[None, None], np.zeros(activity.size, np.int64), thresholds.size + 1)[0]


class ContextTables:
    """The context model of one quality.

    ``order``: the channel coding order.  ``wmag`` / ``wmean``: integer
    prediction weights per ordered channel, (M, M) for version 1 (no mean) or
    (M, 2M+1) for version 2: centre terms, neighbour-sum terms, own-channel
    neighbour term.  ``thresholds``: (M, passes, K-1).  ``lo``/``size``: value
    range per ordered channel (the model's own tables, escapes included).
    ``tables``: :class:`~nkcodec.coding.entropy.IntTables` with one row per
    (ordered channel j, pass g, context k) at ``(j * passes + g) * K + k``."""

    def __init__(self, order, wmag, thresholds, lo, size, freq_flat, wmean=None, version=1):
        from .entropy import IntTables

        self.version = int(version)
        self.order = np.asarray(order, np.int64)
        m = self.order.size
        self.wmag = self._causal(wmag, m)
        self.wmean = None if wmean is None else self._causal(wmean, m)
        thr = np.asarray(thresholds, np.int64)
        self.thresholds = thr[:, None, :] if thr.ndim == 2 else thr  # version 1: one pass
        if self.thresholds.ndim != 3 or self.thresholds.shape[0] != m or self.thresholds.shape[1] not in (1, 2):
            raise ValueError("context thresholds have the wrong shape")
        self.passes = self.thresholds.shape[1]
        self.k = self.thresholds.shape[2] + 1
        if self.passes == 2 and (self.wmean is None or self.wmag.shape[1] != 2 * m + 1):
            raise ValueError("two-pass context tables need spatial weights")
        self.lo = np.asarray(lo, np.int64)
        self.size = np.asarray(size, np.int64)
        row_size = np.repeat(self.size, self.passes * self.k)
        used = np.arange(int(self.size.max()))[None, :] < row_size[:, None]  # rows stored back to back
        if int(used.sum()) != np.size(freq_flat):
            raise ValueError("context tables do not match the model's tables")
        freq = np.zeros(used.shape, np.uint32)
        freq[used] = freq_flat
        if np.any(freq.sum(axis=1) != TABLE_TOTAL):
            raise ValueError("context tables are not normalised")
        self.tables = IntTables(freq, row_size)

    @staticmethod
    def _causal(w, m: int) -> np.ndarray:
        """Weights with every term on channel j or later zeroed (the own-channel
        neighbour column stays): row j can only read what the decoder has."""
        w = np.asarray(w, np.int64)
        if w.shape not in ((m, m), (m, 2 * m + 1)):
            raise ValueError("context weights have the wrong shape")
        if np.abs(w).max(initial=0) > MAX_WEIGHT:
            raise ValueError("context tables: prediction weight out of range")
        w = w.copy()
        w[:, :m] = np.tril(w[:, :m], -1)
        if w.shape[1] > m:
            w[:, m : 2 * m] = np.tril(w[:, m : 2 * m], -1)
        return np.ascontiguousarray(w)

    @staticmethod
    def versions(arrays: dict) -> list:
        """Context model versions present in a weights file's ``ctx/`` group."""
        return [v for v, p in _PREFIX.items() if p + "order" in arrays]

    @classmethod
    def from_arrays(cls, arrays: dict, model_tables: list, quality: int, version: int = 1) -> ContextTables:
        """The ContextTables of ``quality`` from a weights file's ``ctx/`` group;
        ``model_tables[q-1]`` is the model's own ``tables_for(q)`` (it gives each
        channel's table size, hence where each quality's rows start)."""
        p = _PREFIX[version]
        order, thr, flat = arrays[p + "order"], arrays[p + "thresholds"], arrays[p + "freq"]
        rows = int(np.prod(thr.shape[2:-1], dtype=np.int64)) * (thr.shape[-1] + 1)  # passes * K
        lengths = [rows * int(t["size"].astype(np.int64).sum()) for t in model_tables]
        if sum(lengths) != flat.size:
            raise ValueError("context tables do not match the model's tables")
        q = quality - 1
        o = order[q].astype(np.int64)
        if sorted(o.tolist()) != list(range(o.size)):
            raise ValueError("context tables: channel order is not a permutation")
        t = model_tables[q]
        start = sum(lengths[:q])
        wmag = arrays[p + "weights"][q] if version == 1 else arrays[p + "wmag"][q]
        wmean = None if version == 1 else arrays[p + "wmean"][q]
        lo, size = t["lo"].astype(np.int64)[o], t["size"].astype(np.int64)[o]
        return cls(o, wmag, thr[q], lo, size, flat[start : start + lengths[q]], wmean=wmean, version=version)

    def min_bits_per_position(self) -> float:
        """The fewest bits one latent position (all M channels) can cost: per
        channel, the cheapest symbol of its cheapest context table."""
        if getattr(self, "_min_bits", None) is None:
            self._min_bits = float(self.tables.min_bits().reshape(self.order.size, -1).min(axis=1).sum())
        return self._min_bits

    def predict(self, v: np.ndarray, h: int, w: int):
        """Encoder side: (activity, mean) of every ordered channel, (M, n) int64
        each, from the whole latent ``v`` (M, n) in coding order."""
        m = v.shape[0]
        mag = np.abs(v)
        if self.wmean is None:
            return _predict(self.wmag, mag, mag, 0, m), np.zeros_like(v)
        nb_v, nb_mag = neighbours4(v, h, w), neighbours4(mag, h, w)
        second = pass_map(h, w, self.passes)[None, :].astype(bool)
        act = _predict(self.wmag, mag, nb_mag, 0, m) + self.wmag[:, 2 * m : 2 * m + 1] * nb_mag * second
        acc = _predict(self.wmean, v, nb_v, 0, m) + self.wmean[:, 2 * m : 2 * m + 1] * nb_v * second
        return act, round_shift(acc)


def _shape(y_or_shape):
    """(h, w) of a latent (h, w, M) or (n, M), or of a given shape / count."""
    if isinstance(y_or_shape, np.ndarray):
        return y_or_shape.shape[:2] if y_or_shape.ndim == 3 else (1, y_or_shape.shape[0])
    if isinstance(y_or_shape, (int, np.integer)):
        return 1, int(y_or_shape)
    h, w = y_or_shape
    return int(h), int(w)


def coding_tiles(h: int, w: int, version: int) -> list:
    """(row, col) slices of the coding tiles: the whole latent for version 1,
    CODING_TILE x CODING_TILE tiles in raster order for version 2 (each coded as if it were
    the whole latent: neighbours outside the tile count as zero)."""
    if version == 1:
        return [(slice(0, h), slice(0, w))]
    return [(slice(r, min(r + CODING_TILE, h)), slice(c, min(c + CODING_TILE, w))) for r in range(0, h, CODING_TILE) for c in range(0, w, CODING_TILE)]


def _code_tile(ct: ContextTables, v: np.ndarray, h: int, w: int):
    """One tile (M, h*w) in coding order -> (symbol streams, their table rows, escaped values)."""
    from .entropy import to_symbols

    m, n = v.shape
    activity, mean = ct.predict(v, h, w)
    key = table_keys(activity, ct.thresholds, pass_map(h, w, ct.passes), ct.k).ravel()
    if m * ct.passes * ct.k < 1 << 15:
        key = key.astype(np.int16)  # int16 sorts by radix
    perm = np.argsort(key, kind="stable")  # channel, pass, context, then position
    vals = (v - mean).ravel()[perm]  # channel j's residuals fill block j, so:
    idx, esc = to_symbols(vals, np.repeat(ct.lo, n), np.repeat(ct.size, n))
    idx = idx.astype(np.int32)
    counts = np.bincount(key, minlength=m * ct.passes * ct.k)
    rows = np.flatnonzero(counts)
    ends = np.cumsum(counts)[rows]
    starts = ends - counts[rows]
    return [idx[a:b] for a, b in zip(starts.tolist(), ends.tolist())], rows.tolist(), vals[esc]


def code_latent(ct: ContextTables, y: np.ndarray):
    """ANS-code an int latent (h, w, M) (or (n, M): one row) with context tables.
    Returns (params, [ans bytes, escape bytes]).

    The encoder has every channel at once, so it computes all activities,
    means and contexts of a tile in one pass (the decoder has to go channel by
    channel)."""
    from .entropy import encode_symbols, pack_varints

    y = np.asarray(y)
    h, w = _shape(y)
    v = y.reshape(h, w, -1)[:, :, ct.order]
    if np.abs(v).max(initial=0) > MAX_LATENT:
        raise ValueError("latent value out of range")
    streams, rows, escaped = [], [], []
    for rs, cs in coding_tiles(h, w, ct.version):
        t = v[rs, cs]
        th, tw = t.shape[:2]
        s, r, e = _code_tile(ct, np.ascontiguousarray(t.reshape(th * tw, -1).T, dtype=np.int64), th, tw)
        streams += s
        rows += r
        escaped.append(e)
    escaped = np.concatenate(escaped)
    params = {"escapes": int(escaped.size)}
    if ct.version != 1:
        params["v"] = ct.version
    return params, [encode_symbols(streams, ct.tables, checked=True, rows=rows), pack_varints(escaped)]


def stream_version(params) -> int:
    """Context model version a stream names (absent: 1); CorruptStreamError if unknown."""
    v = params.get("v", 1) if isinstance(params, dict) else 1
    if isinstance(v, bool) or not isinstance(v, int) or v not in _PREFIX:
        raise CorruptStreamError(f"unknown context model version {v!r}")
    return v


def decode_latent(ct: ContextTables, params: dict, sections: list, shape) -> np.ndarray:
    """Inverse of :func:`code_latent`: (n, M) int32.  ``shape`` is the latent's
    (h, w) (a count n means one row of n)."""
    from .entropy import SymbolDecoder, check_length, escape_count, unpack_varints

    M = ct.order.size
    h, w = _shape(shape)
    if stream_version(params) != ct.version:
        raise CorruptStreamError("context model version disagrees with the stream")
    n_esc = escape_count(params, h * w * M)
    check_length(len(sections[0]), h * w * ct.min_bits_per_position(), "latent section")
    esc_vals = unpack_varints(sections[1], n_esc)
    if n_esc and np.abs(esc_vals).max() > (MAX_LATENT if ct.wmean is None else MAX_RESIDUAL):
        raise CorruptStreamError("latent value out of range")
    dec = SymbolDecoder(sections[0])
    out = np.empty((h, w, M), np.int32)
    used = 0
    for rs, cs in coding_tiles(h, w, ct.version):
        th, tw = rs.stop - rs.start, cs.stop - cs.start
        y, used = _decode_tile(ct, dec, esc_vals, used, th, tw)
        out[rs, cs][:, :, ct.order] = y.T.reshape(th, tw, M)
    if used != n_esc:
        raise CorruptStreamError("escape count disagrees with the decoded symbols")
    return out.reshape(h * w, M)


def _decode_tile(ct: ContextTables, dec, esc_vals: np.ndarray, used: int, h: int, w: int):
    """Decode one tile channel by channel: ((M, h*w) int64 in coding order, escapes used so far)."""
    from .entropy import from_symbols

    M, n, n_esc = ct.order.size, h * w, esc_vals.size
    spatial = ct.wmean is not None
    passes = pass_map(h, w, ct.passes)
    where = [np.flatnonzero(passes == g) for g in range(ct.passes)]
    y = np.zeros((M, n), np.int64)  # coding order, filled as channels are decoded
    mag = np.zeros((M, n), np.int64)
    nb_y, nb_mag = (np.zeros((M, n), np.int64) for _ in range(2)) if spatial else (mag, mag)
    none = np.zeros(0, np.int64)
    for j in range(M):
        activity = _predict(ct.wmag, mag, nb_mag, j, j + 1)[0]
        acc = _predict(ct.wmean, y, nb_y, j, j + 1)[0] if spatial else none
        own_mag, own_mean = (int(ct.wmag[j, 2 * M]), int(ct.wmean[j, 2 * M])) if spatial else (0, 0)
        for g, pos in enumerate(where):
            # second pass: the 4 neighbours in this channel are first-pass positions, decoded
            order, counts, mean = _pass_order(pos, activity, acc, g == 1, own_mag, own_mean, nb_mag[j], nb_y[j], ct.thresholds[j, g], ct.k)
            idx = dec.decode_run(ct.tables, (j * ct.passes + g) * ct.k, counts.tolist()).astype(np.int64)
            vals, esc = from_symbols(idx, ct.lo[j], ct.size[j])
            ne = int(np.count_nonzero(esc))
            if ne:
                if used + ne > n_esc:
                    raise CorruptStreamError("more escapes than the stream declares")
                vals[esc] = esc_vals[used : used + ne]
                used += ne
            vals += mean
            if (ne or spatial) and np.abs(vals).max(initial=0) > MAX_LATENT:
                raise CorruptStreamError("latent value out of range")
            y[j, order] = vals
            mag[j, order] = np.abs(vals)
            if spatial:  # after the first pass: right at second-pass positions; after the second: everywhere
                nb_y[j], nb_mag[j] = neighbours4(y[j : j + 1], h, w)[0], neighbours4(mag[j : j + 1], h, w)[0]
    return y, used
