"""Inter-channel context coding of the quantised latent (the ``context`` preset).

The latent's channels are coded one after another, most active first.  Before
channel ``j`` is coded, every latent position ``p`` has an *activity*
``A_j(p) = sum_i W[j, i] |y_i(p)|`` over the channels ``i < j`` already coded
at ``p``: an integer linear prediction of ``|y_j(p)|`` that the decoder can
compute as well.  ``W`` (integers, 2^12 per unit) is a least-squares fit on the
training latents; with all weights equal it would be a plain sum of magnitudes,
which measured 5% more bits.  ``K - 1`` integer thresholds per channel
split the activity into ``K`` contexts, and every (channel, context) pair has
its own integer frequency table, counted once on latents of the training photos
(never Kodak) and stored in the weights file (group ``ctx/``).  Textured
regions are active in many channels at once, so the contexts work like a
small hyperprior that needs no training and no side information.

Everything the decoder computes is integer arithmetic on decoded symbols, so
the tables it selects are the encoder's on every machine.

Examples
--------
>>> import numpy as np
>>> contexts(np.array([0, 1, 3, 4, 9]), np.array([1, 4])).tolist()  # thresholds passed
[0, 1, 1, 2, 2]
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import numpy as np

from .entropy import MAX_LATENT
from .errors import CorruptStreamError

__all__ = ["ContextTables", "fit", "add_to_weights", "contexts", "code_latent", "decode_latent"]

NUM_CONTEXTS = 8
PSEUDO_COUNTS = 16.0  # spread like the model's own table: keeps rare contexts sane
_TOTAL = 1 << 16
WEIGHT_BITS = 12  # fixed-point scale of the prediction weights
MAX_WEIGHT = 1 << 15  # |W| <= 2**15, |y| <= 2**20, 192 channels: every sum < 2**43 (int64; exact in float64 too)


@numba.njit(cache=True, nogil=True)
def _activity(weights, mag, j0, j1):
    """Rows j0..j1-1 of ``weights @ mag`` in int64 (weights strictly lower triangular,
    so row j only reads channels before j).  Exact: every sum is below 2**43."""
    n = mag.shape[1]
    out = np.zeros((j1 - j0, n), np.int64)
    for j in range(j0, j1):
        for i in range(j):
            w = weights[j, i]
            if w != 0:
                for p in range(n):
                    out[j - j0, p] += w * mag[i, p]
    return out


def contexts(activity: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Context index (0..K-1) of each activity value for one channel: how many
    of the channel's K-1 thresholds the activity has reached."""
    return np.searchsorted(thresholds, activity, side="right")


class ContextTables:
    """The context model of one quality: channel ``order``, integer prediction
    ``weights`` (M, M; lower triangle, coding order), ``thresholds`` (M, K-1), the value range ``lo``/``size`` per ordered channel (the model's
    own tables, escapes included) and :class:`~nkcodec.entropy.IntTables` with
    one row per (ordered channel j, context k) at ``j * K + k``."""

    def __init__(self, order, weights, thresholds, lo, size, freq_flat):
        from .entropy import IntTables

        self.order = np.asarray(order, np.int64)
        self.weights = np.ascontiguousarray(np.tril(np.asarray(weights, np.int64), -1))  # row j: channels before j
        self.thresholds = np.asarray(thresholds, np.int64)
        self.k = self.thresholds.shape[1] + 1
        self.lo = np.asarray(lo, np.int64)
        self.size = np.asarray(size, np.int64)
        row_size = np.repeat(self.size, self.k)
        used = np.arange(int(self.size.max()))[None, :] < row_size[:, None]  # rows stored back to back
        if int(used.sum()) != np.size(freq_flat):
            raise ValueError("context tables do not match the model's tables")
        freq = np.zeros(used.shape, np.uint32)
        freq[used] = freq_flat
        if np.any(freq.sum(axis=1) != _TOTAL):
            raise ValueError("context tables are not normalised")
        self.tables = IntTables(freq, row_size)

    @classmethod
    def from_arrays(cls, arrays: dict, model_tables: list, quality: int) -> "ContextTables":
        """The ContextTables of ``quality`` from a weights file's ``ctx/`` group;
        ``model_tables[q-1]`` is the model's own ``tables_for(q)`` (it gives each
        channel's table size, hence where each quality's rows start)."""
        order, thr, flat, wts = arrays["order"], arrays["thresholds"], arrays["freq"], arrays["weights"]
        k = thr.shape[2] + 1
        lengths = [k * int(t["size"].astype(np.int64).sum()) for t in model_tables]
        if sum(lengths) != flat.size:
            raise ValueError("context tables do not match the model's tables")
        q = quality - 1
        o = order[q].astype(np.int64)
        if sorted(o.tolist()) != list(range(o.size)):
            raise ValueError("context tables: channel order is not a permutation")
        if np.abs(wts[q]).max(initial=0) > MAX_WEIGHT:
            raise ValueError("context tables: prediction weight out of range")
        t = model_tables[q]
        start = sum(lengths[:q])
        return cls(o, wts[q], thr[q], t["lo"].astype(np.int64)[o], t["size"].astype(np.int64)[o], flat[start : start + lengths[q]])


def fit(m, images: list, k: int = NUM_CONTEXTS, progress: bool = True) -> dict:
    """Count context tables for a :class:`~nkcodec.zoo.LoadedModel` on training
    images (uint8 RGB arrays) at every quality; returns the ``ctx/`` arrays."""
    from tqdm import tqdm

    from .entropy import to_symbols
    from .model import NUM_QUALITIES
    from .zoo import _quantize_pmf

    M = m.latent_channels
    orders, weights, thresholds, rows = [], [], [], []
    bar = tqdm(total=NUM_QUALITIES * len(images), desc="context tables", disable=not progress)
    for q in range(1, NUM_QUALITIES + 1):
        ys = []
        for im in images:
            ys.append(m.encode_latent(im, q).reshape(-1, M).astype(np.int64))
            bar.update(1)
        Y = np.concatenate(ys)
        t = m.tables_for(q)
        order = np.argsort(-np.abs(Y).mean(0), kind="stable")
        mag = np.abs(Y[:, order]).astype(np.float64)
        gram = mag.T @ mag
        w = np.zeros((M, M))
        for j in range(1, M):  # least squares |y_j| ~ sum_i<j w_ji |y_i| (tiny ridge for empty channels)
            w[j, :j] = np.linalg.solve(gram[:j, :j] + 1e-3 * np.eye(j), gram[:j, j])
        w = np.clip(np.round(w * (1 << WEIGHT_BITS)), -MAX_WEIGHT, MAX_WEIGHT)
        activity = (mag @ w.T).astype(np.int64)  # exact: integer sums below 2**53
        thr_q = np.zeros((M, k - 1), np.int64)
        for j, c in enumerate(order):
            thr_q[j] = np.quantile(activity[:, j], np.linspace(0, 1, k + 1)[1:-1], method="lower")
            ctx = contexts(activity[:, j], thr_q[j])
            lo, size = int(t["lo"][c]), int(t["size"][c])
            idx, _ = to_symbols(Y[:, c], lo, size)
            counts = np.zeros((k, size))
            np.add.at(counts, (ctx, idx), 1.0)
            base = t["freq"][c, :size].astype(np.float64) / _TOTAL
            rows += [_quantize_pmf(counts[i] + PSEUDO_COUNTS * base, _TOTAL) for i in range(k)]
        weights.append(w.astype(np.int32))
        orders.append(order)
        thresholds.append(thr_q)
    bar.close()
    return {
        "order": np.asarray(orders, np.int16),
        "weights": np.asarray(weights, np.int32),
        "thresholds": np.asarray(thresholds, np.int64),
        "freq": np.concatenate(rows).astype(np.uint16),
        "images": np.asarray(len(images), np.int64),
    }


def add_to_weights(path, arrays: dict) -> Path:
    """Write (or replace) the ``ctx/`` group of a weights file; other arrays are kept as they are."""
    path = Path(path)
    with np.load(path) as z:
        data = {key: z[key] for key in z.files if not key.startswith("ctx/")}
    data.update({f"ctx/{key}": v for key, v in arrays.items()})
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, path)
    return path


def code_latent(ct: ContextTables, y: np.ndarray):
    """ANS-code an int latent (..., M) with context tables.  Returns (params, [ans bytes, escape bytes]).

    The encoder has every channel at once, so it computes all activities and
    contexts in one pass (the decoder has to go channel by channel)."""
    from .entropy import encode_symbols, pack_varints, to_symbols

    v = np.ascontiguousarray(y.reshape(-1, y.shape[-1]).T[ct.order], dtype=np.int32)  # (M, n), coding order
    if np.abs(v).max(initial=0) > MAX_LATENT:
        raise ValueError("latent value out of range")
    activity = _activity(ct.weights, np.abs(v).astype(np.int64), 0, v.shape[0])  # (M, n)
    thr = ct.thresholds
    kdt = np.int16 if v.shape[0] * ct.k < 1 << 15 else np.int32  # int16 sorts by radix
    key = np.repeat(np.arange(v.shape[0], dtype=kdt) * ct.k, v.shape[1]).reshape(v.shape)
    for i in range(ct.k - 1):  # contexts(): how many thresholds the activity has reached
        key += activity >= thr[:, i : i + 1]
    key = key.ravel()
    perm = np.argsort(key, kind="stable")  # channel, then context, then position
    vals = v.ravel()[perm].astype(np.int64)  # channel j's values fill block j, so:
    idx, esc = to_symbols(vals, np.repeat(ct.lo, v.shape[1]), np.repeat(ct.size, v.shape[1]))
    idx = idx.astype(np.int32)
    counts = np.bincount(key, minlength=ct.order.size * ct.k)
    ends = np.cumsum(counts)
    starts = ends - counts
    streams = [idx[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    return {"escapes": int(esc.sum())}, [encode_symbols(streams, ct.tables, checked=True), pack_varints(vals[esc])]


def decode_latent(ct: ContextTables, params: dict, sections: list, n: int) -> np.ndarray:
    """Inverse of :func:`code_latent`: (n, M) int32."""
    from .entropy import SymbolDecoder, escape_count, from_symbols, unpack_varints

    M = ct.order.size
    n_esc = escape_count(params, n * M)
    esc_vals = unpack_varints(sections[1], n_esc)
    if n_esc and np.abs(esc_vals).max() > MAX_LATENT:
        raise CorruptStreamError("latent value out of range")
    dec = SymbolDecoder(sections[0])
    y = np.empty((M, n), np.int64)
    mag = np.zeros((M, n), np.int64)  # |y| in coding order, filled as channels are decoded
    used = 0
    for j, c in enumerate(ct.order):
        activity = _activity(ct.weights, mag, j, j + 1)[0]
        ctx = contexts(activity, ct.thresholds[j]).astype(np.uint8)
        perm = np.argsort(ctx, kind="stable")
        counts = np.bincount(ctx, minlength=ct.k)
        idx = np.concatenate([dec.decode(ct.tables, j * ct.k + i, counts[i]) for i in range(ct.k)]).astype(np.int64)
        vals, esc = from_symbols(idx, ct.lo[j], ct.size[j])
        ne = int(esc.sum())
        if used + ne > n_esc:
            raise CorruptStreamError("more escapes than the stream declares")
        vals[esc] = esc_vals[used : used + ne]
        used += ne
        y[c, perm] = vals
        mag[j] = np.abs(y[c])
    if used != n_esc:
        raise CorruptStreamError("escape count disagrees with the decoded symbols")
    return np.ascontiguousarray(y.T, dtype=np.int32)
