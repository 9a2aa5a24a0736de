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

Every value the decoder computes is an exact sum of decoded integers (every
product and sum stays below 2^47, so int64 and float64 both hold it exactly,
whatever the order of the additions), so it selects the encoder's tables on
every machine.  The whole decode of a latent, the ANS decoding included
(:mod:`nkcodec.coding.ans`), is one compiled call (:func:`_decode_tiles`)
that releases the GIL.

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
from . import ans
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
def _own_neighbours(x, h, w, out):
    """``out`` = the 4-neighbour sum of the one plane ``x`` (h*w; zero outside), in
    ``out``'s type (int64 rows for the encoder, float64 for the decoder)."""
    for r in range(h):
        for c in range(w):
            p = r * w + c
            s = out[p] * 0
            if r > 0:
                s += x[p - w]
            if r < h - 1:
                s += x[p + w]
            if c > 0:
                s += x[p - 1]
            if c < w - 1:
                s += x[p + 1]
            out[p] = s


@numba.njit(cache=True, nogil=True)
def neighbours4(a, h, w):
    """Sum over the 4 neighbours (zero outside the latent or tile) of each of
    the (C, h*w) int64 rows."""
    out = np.zeros(a.shape, np.int64)
    for ch in range(a.shape[0]):
        _own_neighbours(a[ch], h, w, out[ch])
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


_BLOCK = 16  # channels whose terms on the channels before them the decoder sums together
# The weighted sums of the decoder add exact integers held in float64 (see _decode_tiles), so
# their order does not matter: this kernel may reassociate them, which lets it vectorise.
_EXACT_SUMS = {"reassoc", "nsz", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_EXACT_SUMS)
def _block_sums(wa, xa, wb, xb, i1, out):
    """``out[jj, p] = wa[jj, :i1] . xa[p, :i1] + wb[jj, :i1] . xb[p, :i1]`` for every
    position p of the position-major (n, M) planes ``xa``, ``xb`` (two positions at a
    time: each weight is loaded once for both).  Single-threaded on purpose: a BLAS
    product is faster alone, but serialises when several decoders run in threads."""
    n, b_n = xa.shape[0], wa.shape[0]
    for p in range(0, n, 2):
        q = min(p + 1, n - 1)
        for jj in range(b_n):
            s0 = 0.0
            s1 = 0.0
            for i in range(i1):
                u, v = wa[jj, i], wb[jj, i]
                s0 += u * xa[p, i] + v * xb[p, i]
                s1 += u * xa[q, i] + v * xb[q, i]
            out[jj, p] = s0
            out[jj, q] = s1


@numba.njit(cache=True, nogil=True)
def _decode_tiles(words, st, pos, cdf, row_size, order, wmag, wmean, thresholds, lo, size, esc_vals, tiles, width, out):
    """The whole latent's decode (:func:`decode_latent`) in compiled code: every tile,
    channel and pass, the entropy decode (:mod:`nkcodec.coding.ans`) and the escapes.

    The predictions run in float64 over exact integers: every value the decoder has
    accepted is below 2**20 in magnitude (2**22 for a neighbour sum), every weight
    below 2**15, so each product is below 2**37 and each sum of at most 2M+1 < 2**15
    of them below 2**52, which float64 holds exactly whatever the order of the
    additions: the same integers as int64, faster on cores without 64-bit integer
    vector multiplies.  The terms on the channels before a block of :data:`_BLOCK`
    channels are summed for the whole block when it starts (:func:`_block_sums`, on
    position-major copies of the decoded planes); the block's own earlier channels are
    added channel by channel.  ``wmean`` of size 0: version 1 (no mean, no neighbours).
    Returns (words left, escapes used, error): error 0, or 1 (more escapes than
    declared), or 2 (a value beyond MAX_LATENT)."""
    m_n = order.size
    passes, k_n = thresholds.shape[1], thresholds.shape[2] + 1
    spatial = wmean.size > 0
    thr = thresholds.astype(np.float64)  # exact (|threshold| < 2**53): compared with the float activities
    wm = wmag.astype(np.float64)
    we = wmean.astype(np.float64) if spatial else np.zeros((m_n, 2 * m_n + 1))
    wn = wm if spatial else np.zeros((m_n, 2 * m_n + 1))  # version 1: no neighbour terms
    state = st[0]
    used = 0
    lim = float(MAX_LATENT)
    for t in range(tiles.shape[0]):
        r0, r1, c0, c1 = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3]
        h, w = r1 - r0, c1 - c0
        n = h * w
        y = np.zeros((m_n, n))
        mag = np.zeros((m_n, n))
        nb_y = np.zeros((m_n, n))
        nb_mag = np.zeros((m_n, n))
        act = np.empty(n)
        acc = np.empty(n)
        ctx = np.empty(n, np.int64)
        slot = np.empty(n, np.int64)
        counts = np.empty(k_n, np.int64)
        ppos = np.empty(n, np.int64)  # the positions of pass 0, then of pass 1, each in raster order
        pstart = np.zeros(3, np.int64)
        for g in range(passes):
            pstart[g + 1] = pstart[g]
            for r in range(h):
                for c in range(w):
                    if passes == 1 or ((r + c) & 1) == g:
                        ppos[pstart[g + 1]] = r * w + c
                        pstart[g + 1] += 1
        base_act = np.zeros((_BLOCK, n))
        base_acc = np.zeros((_BLOCK, n))
        # position-major copies of the decoded planes, a block behind, for _block_sums
        pm = np.zeros((4, n, m_n))
        for j in range(m_n):
            j0 = j - j % _BLOCK
            if j == j0:  # what the channels before this block add to its channels
                j1 = min(j0 + _BLOCK, m_n)
                for i in range(max(0, j0 - _BLOCK), j0):
                    for p in range(n):
                        pm[0, p, i] = mag[i, p]
                        pm[1, p, i] = nb_mag[i, p]
                        pm[2, p, i] = y[i, p]
                        pm[3, p, i] = nb_y[i, p]
                _block_sums(np.ascontiguousarray(wm[j0:j1, :j0]), pm[0], np.ascontiguousarray(wn[j0:j1, m_n : m_n + j0]), pm[1], j0, base_act)
                if spatial:
                    _block_sums(np.ascontiguousarray(we[j0:j1, :j0]), pm[2], np.ascontiguousarray(we[j0:j1, m_n : m_n + j0]), pm[3], j0, base_acc)
            act[:] = base_act[j - j0]
            if spatial:
                acc[:] = base_acc[j - j0]
            for i in range(j0, j):  # and the channels of the block decoded so far
                a = wm[j, i]
                if a != 0.0:
                    for p in range(n):
                        act[p] += a * mag[i, p]
                if spatial:
                    a = wm[j, m_n + i]
                    if a != 0.0:
                        for p in range(n):
                            act[p] += a * nb_mag[i, p]
                    b = we[j, i]
                    if b != 0.0:
                        for p in range(n):
                            acc[p] += b * y[i, p]
                    b = we[j, m_n + i]
                    if b != 0.0:
                        for p in range(n):
                            acc[p] += b * nb_y[i, p]
            own_mag = wm[j, 2 * m_n] if spatial else 0.0
            own_mean = we[j, 2 * m_n]
            lo_j, size_j = lo[j], size[j]
            for g in range(passes):
                # the pass's positions by context, stably (the encoder's stream order)
                counts[:] = 0
                for t in range(pstart[g], pstart[g + 1]):
                    p = ppos[t]
                    a = act[p]
                    if g == 1:
                        a += own_mag * nb_mag[j, p]
                    c = _reached(a, thr[j, g], k_n)
                    ctx[t] = c
                    counts[c] += 1
                first = 0
                for c in range(k_n):
                    cnt = counts[c]
                    counts[c] = first
                    first += cnt
                for t in range(pstart[g], pstart[g + 1]):
                    slot[counts[ctx[t]]] = ppos[t]
                    counts[ctx[t]] += 1
                # decode: the slots of context c hold its run, in order
                c = 0
                for d in range(first):
                    while d >= counts[c]:
                        c += 1
                    p = slot[d]
                    row = (j * passes + g) * k_n + c
                    n_sym = row_size[row]
                    sym = 0
                    if n_sym > 1:
                        sym, state, pos = ans.decode_symbol(words, state, pos, cdf[row], n_sym)
                    if sym == 0 or sym == size_j - 1:
                        if used >= esc_vals.size:
                            st[0] = state
                            return pos, used, 1
                        v = float(esc_vals[used])
                        used += 1
                    else:
                        v = float(sym + lo_j - 1)
                    if spatial:
                        a = acc[p]
                        if g == 1:
                            a += own_mean * nb_y[j, p]
                        v += float(round_shift(np.int64(a)))
                    if abs(v) > lim:
                        st[0] = state
                        return pos, used, 2
                    y[j, p] = v
                    mag[j, p] = abs(v)
                if spatial:
                    _own_neighbours(y[j], h, w, nb_y[j])
                    _own_neighbours(mag[j], h, w, nb_mag[j])
        for r in range(h):
            for c in range(w):
                q, p = (r0 + r) * width + c0 + c, r * w + c
                for j in range(m_n):
                    out[q, order[j]] = np.int32(y[j, p])
    st[0] = state
    return pos, used, 0


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
        each, from the whole latent ``v`` (M, n) in coding order.

        The weighted sums are float64 matrix products over integers: exact while
        every |value| is within MAX_LATENT (the bound of :func:`_decode_tiles`),
        so they equal the int64 sums the decoder makes; beyond it (a latent the
        encoder refuses anyway) the int64 loop runs."""
        m = v.shape[0]
        mag = np.abs(v)
        exact = mag.max(initial=0) <= MAX_LATENT
        if self.wmean is None:
            act = _times(self.wmag, mag) if exact else _predict(self.wmag, mag, mag, 0, m)
            return act, np.zeros_like(v)
        nb_v, nb_mag = neighbours4(v, h, w), neighbours4(mag, h, w)
        second = pass_map(h, w, self.passes)[None, :].astype(bool)
        if exact:
            act = _times(self.wmag[:, : 2 * m], np.concatenate([mag, nb_mag]))
            acc = _times(self.wmean[:, : 2 * m], np.concatenate([v, nb_v]))
        else:
            act, acc = _predict(self.wmag, mag, nb_mag, 0, m), _predict(self.wmean, v, nb_v, 0, m)
        act += self.wmag[:, 2 * m : 2 * m + 1] * nb_mag * second
        acc += self.wmean[:, 2 * m : 2 * m + 1] * nb_v * second
        return act, round_shift(acc)


def _times(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``weights @ x`` of int64 arrays, as an exact float64 product (every term
    below 2**37 and every sum below 2**52: see :func:`_decode_tiles`), int64."""
    return (weights.astype(np.float64) @ x.astype(np.float64)).astype(np.int64)


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
    (h, w) (a count n means one row of n).  The whole decode runs in compiled
    code (:func:`_decode_tiles`), entropy decoding included."""
    from .entropy import check_length, escape_count, unpack_varints

    M = ct.order.size
    h, w = _shape(shape)
    if stream_version(params) != ct.version:
        raise CorruptStreamError("context model version disagrees with the stream")
    n_esc = escape_count(params, h * w * M)
    check_length(len(sections[0]), h * w * ct.min_bits_per_position(), "latent section")
    esc_vals = unpack_varints(sections[1], n_esc)
    if n_esc and np.abs(esc_vals).max() > (MAX_LATENT if ct.wmean is None else MAX_RESIDUAL):
        raise CorruptStreamError("latent value out of range")
    dec = ans.Decoder(sections[0])
    tiles = np.array([[rs.start, rs.stop, cs.start, cs.stop] for rs, cs in coding_tiles(h, w, ct.version)], np.int64).reshape(-1, 4)
    wmean = np.zeros((0, 0), np.int64) if ct.wmean is None else ct.wmean
    out = np.empty((h * w, M), np.int32)
    args = (ct.tables.cdf(), ct.tables.size, ct.order, ct.wmag, wmean, ct.thresholds, ct.lo, ct.size, esc_vals.astype(np.int64), tiles, w, out)
    _, used, err = _decode_tiles(dec.words, dec.st, dec.pos, *args)
    if err == 1:
        raise CorruptStreamError("more escapes than the stream declares")
    if err == 2:
        raise CorruptStreamError("latent value out of range")
    if used != n_esc:
        raise CorruptStreamError("escape count disagrees with the decoded symbols")
    return out
