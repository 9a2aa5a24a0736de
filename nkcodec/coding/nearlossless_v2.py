"""Predictive bounded-error coding: the ``near-lossless`` preset's residual version 2.

Every sample is predicted from the already decoded samples around it, the
prediction error is quantised with step ``2 * max_error + 1`` inside the loop
(so the decoder predicts from exactly what it decodes, and every sample ends
within ``max_error`` of the original; ``max_error=0`` is lossless), and the
quantised error is coded with an adaptive binary arithmetic coder.

Each tile's planes are coded one after another, G, then R and B, then alpha,
each in raster order:

* **Colour.** R and B are coded as differences from the pixel's decoded G, and
  their neighbours are differences too (a reversible colour transform on
  decoded values, so the bound holds on R and B themselves).  What the blend
  of the earlier plane missed at this pixel, scaled by a slope counted per
  activity bin (``sum(e * e_prev) / sum(e_prev**2)``), corrects R; R's corrects B.
* **Prediction.** A blend of :data:`NUM_SUB` predictors: 8 on the plane (N, W,
  N + W - NW, ...), and for R and B three that take the plane itself as flat
  and two averages of the neighbours weighted by how alike their G (and, for
  B, their R) is to the pixel's.  Each is weighted by ``1 / (s + 4)**2``, where
  ``s`` is its error summed over 9 decoded neighbours: the predictor that has
  been right nearby counts most.  Then a bias correction: the mean error so far
  in the pixel's context (activity x a 6-bit texture pattern) is added back, as
  in CALIC.
* **Coding.** The quantised error's bit length in unary, then its sign and the
  bits below the leading one.  Each bit's probability mixes three adaptive
  context models (the activity bin; the best predictor's recent error; the
  neighbours' quantised errors and the earlier plane's) in the logistic domain,
  with weights learnt as coding goes (PAQ-style), and a carry-less 32-bit
  binary arithmetic coder writes it.  Every tile starts from a prior counted on
  the training photos (:func:`prior`).

All arithmetic is integer, so every machine decodes the same bytes to the same
pixels.  Images are coded in tiles of at most :data:`TILE_ROWS` x :data:`TILE_COLS`
pixels (:func:`tiles`), each on its own (tiles run in parallel threads; memory stays bounded).
A tile's bytes end exactly where its decoder stops reading, which the decoder
checks.

Why a hand-written coder: the probability of every bit depends on the samples
decoded just before it, so the coder must run inside the compiled per-pixel
loop; a library coder (``constriction``, used by every other preset) would be
called once per bit from Python, about a hundred times slower.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
>>> data = encode(x, max_error=1)
>>> out = decode(data, x.shape, max_error=1)
>>> int(np.abs(out.astype(int) - x).max()) <= 1
True
"""

from __future__ import annotations

import contextlib
import threading
import types

import numba
import numpy as np

from ..config import cpu_count
from ..errors import CorruptStreamError, check_int
from ..format.limits import check_image
from .nearlossless_v1 import check_max_error  # version 1's bound is version 2's: one check

__all__ = ["encode", "decode", "with_stored", "tiles", "min_bytes", "prior", "TILE_ROWS", "TILE_COLS", "NUM_BINS", "VERSION", "VERSION_STORED"]

VERSION = 2  # the near-lossless residual version this module writes and reads
VERSION_STORED = 3  # as VERSION, but a tile whose bytes are exactly its raw size is its samples, stored
TILE_ROWS = 256  # pixels per coding tile: each tile is coded on its own (bounded memory, parallel threads)
TILE_COLS = 2048
NUM_BINS = 24  # activity bins per plane
NUM_SUB = 13  # sub-predictors in the blend
_MAX_PLANES = 4
_GUIDE_SCALE = 64  # G-guided weights: 1 / (64 * |G difference| + 4)**2
_MAX_BITS = 8  # |quantised error| <= 255 has at most 8 bits
_PROB_BITS = 16
_ONE = 1 << _PROB_BITS
_RATE = 5  # probability adaptation of every model: p += (target - p) >> _RATE
_MODELS = 3  # context models mixed per bit
_MIX_RATE = 1  # mixer learning rate
_CTX2 = 24  # contexts of model 2 (the best sub-predictor's recent error)
_CTX3 = 256  # contexts of model 3 (the neighbours' quantised errors)
_WEIGHT_TABLE = 1 << 14  # blend weight lookup: s clipped below this (a 64 KB table)
_BIAS_CTX = NUM_BINS * 64
_BIAS_HALVE = 128  # bias counts are halved at this count (recent errors weigh more)
_SLOPE_HALVE = 1 << 40
_MASK32 = 0xFFFFFFFF
_LMS_TAPS = 8 + NUM_SUB  # the LMS stage's inputs: 7 neighbour errors, a constant, the sub-predictors' deviations
_LMS_CLIP = 4095  # inputs clipped to +-this (x8, shifted up by the activity shift)
_LMS_MAX = 2000  # the stage's correction clipped to +-this (x8)
_LMS_WMAX = 1 << 30  # weights clipped to +-4 (Q28)


def tiles(h: int, w: int) -> list:
    """(rows, cols) slices of the coding tiles, in raster order: an even number of
    bands of at most :data:`TILE_ROWS` rows (so that two threads share the work
    evenly; at least 128 rows each, as a tile pays for learning its statistics),
    split into columns of at most :data:`TILE_COLS`."""
    bands = max(1, min(h // 128, 2 * -(-h // (2 * TILE_ROWS))))
    cols = -(-w // TILE_COLS)
    rh, cw = -(-h // bands), -(-w // cols)
    return [(slice(r, min(r + rh, h)), slice(c, min(c + cw, w))) for r in range(0, h, rh) for c in range(0, w, cw)]


def _weights() -> np.ndarray:
    s = np.arange(_WEIGHT_TABLE, dtype=np.int64)
    return (1 << 32) // ((s + 4) * (s + 4))  # int64: products with samples need 41 bits


_WT = _weights()


_SQUASH_POINTS = (1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095)  # fmt: skip
# 4096 / (1 + exp(-d / 256)) at d = -2048, -1920, ..., 2048, rounded: the logistic
# function, kept as integers so that every machine mixes identically


def _squash_tables():
    """(squash, stretch): squash[d + 2048] = 12-bit probability of logit d (1/256
    units, linear between the points); stretch[p] = the least d with squash(d) >= p."""
    t = np.array(_SQUASH_POINTS, np.int64)
    d = np.arange(4096, dtype=np.int64)  # d + 2048
    i, f = d >> 7, d & 127
    sq = t[i] + (((t[np.minimum(i + 1, 32)] - t[i]) * f) >> 7)
    st = np.searchsorted(sq, np.arange(4096), side="left").astype(np.int64) - 2048
    return sq, np.clip(st, -2047, 2047)


_SQUASH, _STRETCH = _squash_tables()


@numba.njit(cache=True, nogil=True, inline="always")
def _code(st, buf, p, bit, enc):
    """Code (enc) or decode one bit whose probability of being 1 is ``p / 2**16``.
    st: [x1, x2, x, pos, len]; returns the bit."""
    x1 = st[0]
    x2 = st[1]
    rng = x2 - x1
    xmid = x1 + (rng >> 16) * p + (((rng & 0xFFFF) * p) >> 16)
    if not enc:
        bit = 1 if st[2] <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if enc:
            buf[st[3]] = x2 >> 24
        else:
            nxt = 0
            if st[3] < st[4]:
                nxt = buf[st[3]]
            st[2] = ((st[2] << 8) & _MASK32) | nxt
        st[3] += 1
        x1 = (x1 << 8) & _MASK32
        x2 = ((x2 << 8) & _MASK32) | 255
    st[0] = x1
    st[1] = x2
    return bit


@numba.njit(cache=True, nogil=True, inline="always")
def _bit(st, buf, probs, wts, sq, stt, sts, ctx, off, ws, bit, enc, nm):
    """Code one bit: the probabilities of the models (``probs[k]`` at
    ``ctx[k] + off``) mixed in the logistic domain with weight set ``ws``; every
    model and the weights then learn from the bit."""
    dot = 0
    for k in range(nm):
        sk = stt[probs[k, ctx[k] + off] >> 4]
        sts[k] = sk
        dot += wts[ws, k] * sk
    dot >>= 16
    if dot > 2047:
        dot = 2047
    elif dot < -2047:
        dot = -2047
    p12 = sq[dot + 2048]
    p = p12 << 4
    if p < 64:
        p = 64
    elif p > _ONE - 64:
        p = _ONE - 64
    bit = _code(st, buf, p, bit, enc)
    e = ((bit << 12) - p12) * _MIX_RATE
    for k in range(nm):
        wts[ws, k] += (sts[k] * e) >> 13
        i = ctx[k] + off
        q = np.int64(probs[k, i])
        if bit:
            probs[k, i] = q + ((_ONE - q) >> _RATE)
        else:
            probs[k, i] = q - (q >> _RATE)
    return bit


@numba.njit(cache=True, nogil=True, inline="always")
def _value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, a, neg, enc, mb, nm):
    """Code (enc) or decode one quantised error of at most ``mb`` bits: its bit length
    in unary, its sign, then the bits below its leading one.  Each model's context
    ``ctx[k]`` is the start of its block of ``1 + mb + mb * mb`` probabilities: mb length
    bits, 1 sign bit, mb x mb mantissa bits; ``wbase`` the plane's first weight set."""
    nb = 0
    if enc:
        t = a
        while t > 0:
            nb += 1
            t >>= 1
        for j in range(mb):
            more = 1 if nb > j else 0
            _bit(st, buf, probs, wts, sq, stt, sts, ctx, j, wbase + j, more, True, nm)
            if not more:
                break
    else:
        while nb < mb and _bit(st, buf, probs, wts, sq, stt, sts, ctx, nb, wbase + nb, 0, False, nm):
            nb += 1
    if nb == 0:
        return 0
    neg = _bit(st, buf, probs, wts, sq, stt, sts, ctx, mb, wbase + mb, neg, enc, nm)
    v = a if enc else 1
    for j in range(nb - 2, -1, -1):
        b = _bit(st, buf, probs, wts, sq, stt, sts, ctx, mb + 1 + (nb - 1) * mb + j, wbase + mb + 1 + (j == nb - 2), (a >> j) & 1, enc, nm)
        if not enc:
            v = (v << 1) | b
    return -v if neg else v


_BLOCK = 1 + _MAX_BITS + _MAX_BITS * _MAX_BITS  # probabilities per context
_WSETS = _MAX_BITS + 3  # mixer weight sets per (plane, activity group): length bits, sign, leading and other mantissa bits
_WGROUPS = 4  # activity groups of mixer weight sets (NUM_BINS // _WGROUPS bins each)


def _bins(first: int, num: int, grow) -> np.ndarray:
    """Bin of every activity value below _ACT_TABLE: thresholds ``first``, then each
    ``grow(t)`` of the last, ``num`` bins in all (integer thresholds)."""
    edges, t = [], first
    for _ in range(num - 1):
        edges.append(t)
        t = grow(t)
    a = np.arange(_ACT_TABLE, dtype=np.int64)
    return np.searchsorted(np.array(edges), a, side="right").astype(np.int64)


_ACT_TABLE = 1 << 13  # activities are clipped below this before binning
_QBINS = _bins(24, NUM_BINS, lambda t: t * 5 // 4 + 1)  # coding context
_SBINS = _bins(16, 16, lambda t: t * 3 // 2)  # slope context (chroma correction)
_MBINS = _bins(8, _CTX2, lambda t: t * 5 // 4 + 1)  # the best sub-predictor's recent error


def _tile_kernel(img, rec, lay, cfg, steps, buf, tabs, probs, wts, enc, lms):
    """Code (enc=True: img -> buf) or decode (buf -> rec) one tile.

    img, rec: (h, w, channels) uint8 or uint16 (img is read when encoding only; rec gets
    the decoded samples either way).  lay: (planes, 3), in coding order, each plane's
    [channel, reference, guide]: a reference (>= 0, coded earlier) makes the plane
    coded as its difference from the reference's decoded sample, with the colour
    predictors; a guide (>= 0, coded earlier, with a reference) weighs the neighbours
    too, as R does for B.  cfg: [largest sample, bits of the largest quantised error,
    activity shift, error-context shift]: samples of more than 8 bits have their
    activities and errors shifted down into the 8-bit contexts.  steps[c]: quantiser
    step of channel c.  tabs: (weights, squash, stretch, coding bins, slope bins, error
    bins, guided weights) lookup tables.  probs, wts: the models' probabilities (a
    block of ``_CTX3`` contexts per channel) and the mixer's weights, which start from
    the prior (:func:`prior`) and are left in their final state.  Only the plane being
    coded and the one before it are kept, so memory does not grow with the channels.
    lms: the LMS stage's step, 2**-lms (0: off; version 5's tiles in mode 1; compiled in
    only where :func:`kernel` says so).  Five models (version 5) add the spread and
    texture contexts.
    Returns the number of bytes written (enc) or read (dec), or -1 when buf is too
    small (enc)."""
    wt, sq, stt, qbins, sbins, mbins, gwt = tabs
    h, w = rec.shape[0], rec.shape[1]
    nplanes = lay.shape[0]
    maxv, mb, ash, qsh = cfg[0], cfg[1], cfg[2], cfg[3]
    blk = 1 + mb + mb * mb
    wsets = mb + 3
    ngw = len(gwt) - 1
    val = np.zeros((h + 2, w + 4), np.int32)  # decoded values of the plane (minus its reference), padded
    err = np.zeros((2, h + 2, w + 4), np.int32)  # final prediction errors (x8): this plane, the one before
    serr = np.zeros((2, h + 2, w + 4), np.int32)  # blend (spatial) prediction errors (x8)
    qerr = np.zeros((2, h + 2, w + 4), np.int32)  # |quantised errors|
    perr = np.zeros((h + 2, w + 4, NUM_SUB), np.int32)  # |sub-predictor errors| (x8) of the current plane
    rowf = np.zeros((w, NUM_SUB), np.int32)
    bsum = np.zeros(_BIAS_CTX, np.int64)
    bcnt = np.zeros(_BIAS_CTX, np.int64)
    sxy = np.zeros(16, np.int64)
    sxx = np.zeros(16, np.int64)
    nm = _NM  # constants of each compiled copy (:func:`kernel`): the loops over the models unrolled
    ctx = np.zeros(nm, np.int64)
    sts = np.zeros(nm, np.int64)
    lw = np.zeros(_LMS_TAPS, np.int64)  # the LMS stage's weights (Q28)
    lu = np.zeros(_LMS_TAPS, np.int64)  # and its inputs
    sub = np.zeros(NUM_SUB, np.int64)
    st = np.zeros(5, np.int64)
    st[1] = _MASK32
    st[4] = len(buf)
    if not enc:
        for i in range(4):
            nxt = 0
            if i < st[4]:
                nxt = buf[i]
            st[2] = (st[2] << 8) | nxt
        st[3] = 4
    for ci in range(nplanes):
        c = lay[ci, 0]
        gi = lay[ci, 1]
        ri = lay[ci, 2]
        cr = gi >= 0
        cur = ci & 1
        prev = 1 - cur
        v_ = val
        e_ = err[cur]
        q_ = qerr[cur]
        perr[:] = 0
        bsum[:] = 0
        bcnt[:] = 0
        sxy[:] = 0
        sxx[:] = 0
        lw[:] = 0
        step = steps[c]
        half = step >> 1
        nsub = NUM_SUB if cr else 8  # the colour-only predictors repeat others on other planes
        for y in range(h):
            py = y + 2
            for x in range(w):  # the row above's part of every sub-predictor's error window
                px = x + 2
                for k in range(nsub):
                    rowf[x, k] = (
                        2 * (perr[py - 1, px, k] + perr[py - 1, px - 1, k] + perr[py - 1, px + 1, k]) + perr[py - 1, px - 2, k] + perr[py - 1, px + 2, k]
                    )
            for x in range(w):
                px = x + 2
                # neighbours (plane values), with fallbacks at the edges
                if y > 0:
                    n = v_[py - 1, px]
                elif x > 0:
                    n = v_[py, px - 1]
                else:
                    n = 0
                wv = v_[py, px - 1] if x > 0 else n
                nw = v_[py - 1, px - 1] if (y > 0 and x > 0) else n
                ne = v_[py - 1, px + 1] if (y > 0 and x + 1 < w) else n
                nn = v_[py - 2, px] if y > 1 else n
                ww = v_[py, px - 2] if x > 1 else wv
                nne = v_[py - 2, px + 1] if (y > 1 and x + 1 < w) else ne
                sub[0] = 8 * n
                sub[1] = 8 * wv
                sub[2] = 8 * (n + wv - nw)
                sub[3] = 4 * (wv + ne)
                sub[4] = 8 * n + 4 * (ne - nw)
                sub[5] = 8 * (2 * n - nn)
                sub[6] = 8 * (2 * wv - ww)
                sub[7] = 8 * (n + ne - nne)
                g0 = 0
                if cr:  # the plane itself (not its difference from the reference) locally flat
                    g0 = np.int64(rec[y, x, gi])
                    gn = np.int64(rec[y - 1, x, gi]) - g0 if y > 0 else 0
                    gw = np.int64(rec[y, x - 1, gi]) - g0 if x > 0 else 0
                    sub[8] = 8 * (n + gn)
                    sub[9] = 8 * (wv + gw)
                    sub[10] = 4 * (n + gn + wv + gw)
                    # reference-guided: the neighbours' differences, weighted by how alike their reference is
                    gnw = np.int64(rec[y - 1, x - 1, gi]) - g0 if (y > 0 and x > 0) else gn
                    gne = np.int64(rec[y - 1, x + 1, gi]) - g0 if (y > 0 and x + 1 < w) else gn
                    gnn = np.int64(rec[y - 2, x, gi]) - g0 if y > 1 else gn
                    gww = np.int64(rec[y, x - 2, gi]) - g0 if x > 1 else gw
                    dn, dw, dnw, dne, dnn, dww = abs(gn), abs(gw), abs(gnw), abs(gne), abs(gnn), abs(gww)
                    if ri >= 0:  # a second guide (B: R), decoded too
                        r0 = np.int64(rec[y, x, ri])
                        if y > 0:
                            dn += abs(np.int64(rec[y - 1, x, ri]) - r0)
                        if x > 0:
                            dw += abs(np.int64(rec[y, x - 1, ri]) - r0)
                        if y > 0 and x > 0:
                            dnw += abs(np.int64(rec[y - 1, x - 1, ri]) - r0)
                        if y > 0 and x + 1 < w:
                            dne += abs(np.int64(rec[y - 1, x + 1, ri]) - r0)
                        if y > 1:
                            dnn += abs(np.int64(rec[y - 2, x, ri]) - r0)
                        if x > 1:
                            dww += abs(np.int64(rec[y, x - 2, ri]) - r0)
                    w0 = gwt[min(dn >> ash, ngw)]
                    w1 = gwt[min(dw >> ash, ngw)]
                    w2 = gwt[min(dnw >> ash, ngw)]
                    w3 = gwt[min(dne >> ash, ngw)]
                    sub[11] = (8 * (w0 * n + w1 * wv + w2 * nw + w3 * ne) + (w0 + w1 + w2 + w3) // 2) // (w0 + w1 + w2 + w3)
                    w4 = gwt[min(dnn >> ash, ngw)]
                    w5 = gwt[min(dww >> ash, ngw)]
                    tw = w0 + w1 + w2 + w3 + w4 + w5
                    sub[12] = (8 * (w0 * n + w1 * wv + w2 * nw + w3 * ne + w4 * nn + w5 * ww) + tw // 2) // tw
                else:
                    sub[11] = sub[2]
                    sub[12] = sub[2]
                    sub[8] = sub[0]
                    sub[9] = sub[1]
                    sub[10] = sub[2]
                num = 0
                den = 0
                smin = _WEIGHT_TABLE - 1
                b0 = b1 = 0
                for k in range(nsub):
                    s = (rowf[x, k] + perr[py - 2, px, k] + 4 * perr[py, px - 1, k] + perr[py, px - 2, k]) >> ash
                    if s > smin:
                        s2 = _WEIGHT_TABLE - 1 if s >= _WEIGHT_TABLE else s
                    else:
                        smin = s
                        s2 = s
                    wk = wt[s2]
                    num += wk * sub[k]
                    den += wk
                    if k == 2 and not cr:  # predictors 8..12 repeat 0, 1, 2, 2, 2 on a plane that is not colour
                        num += b0 * sub[0] + b1 * sub[1] + 3 * wk * sub[2]
                        den += b0 + b1 + 3 * wk
                    elif k == 0:
                        b0 = wk
                    elif k == 1:
                        b1 = wk
                p = (num + den // 2) // den
                en = e_[py - 1, px]
                ew = e_[py, px - 1]
                spread = 0
                if nm > 3:  # how far the sub-predictors are from the blend: a context
                    for k in range(nsub):
                        spread += abs(sub[k] - p)
                    spread //= nsub
                nu = 0
                nrm = 1
                if _LMS_ON and lms:  # the LMS stage: the blend corrected by a learned sum of the neighbours' errors and the sub-predictors' deviations
                    lu[0] = en
                    lu[1] = ew
                    lu[2] = e_[py - 1, px - 1]
                    lu[3] = e_[py - 1, px + 1]
                    lu[4] = e_[py - 2, px]
                    lu[5] = e_[py, px - 2]
                    lu[6] = err[prev, py, px] if cr else 0
                    lu[7] = 8
                    nu = 8
                    for k in range(nsub):
                        lu[nu] = sub[k] - p
                        nu += 1
                    dot = 0
                    lim = _LMS_CLIP << ash
                    for t in range(nu):
                        ut = min(max(lu[t], -lim), lim)
                        lu[t] = ut
                        dot += lw[t] * ut
                        nrm += ut * ut
                    p += min(max((dot + (1 << 27)) >> 28, -(_LMS_MAX << ash)), _LMS_MAX << ash)
                sp = p
                a = 8 * (abs(n - nw) + abs(wv - nw) + abs(ne - n)) + 3 * (abs(en) + abs(ew)) + 2 * (abs(e_[py - 1, px - 1]) + abs(e_[py - 1, px + 1]))
                aq = 0
                if cr:
                    aq = sbins[min(a >> ash, _ACT_TABLE - 1)]
                    eg = serr[prev, py, px]
                    cor = ((sxy[aq] * 16) // (sxx[aq] + 64)) * eg
                    p += cor // 16 if cor >= 0 else -((-cor) // 16)
                    a += 2 * abs(err[prev, py, px])
                q = qbins[min(a >> ash, _ACT_TABLE - 1)]
                tex = (
                    (1 if 8 * n > p else 0)
                    | (2 if 8 * wv > p else 0)
                    | (4 if 8 * nw > p else 0)
                    | (8 if 8 * ne > p else 0)
                    | (16 if ew > 0 else 0)
                    | (32 if en > 0 else 0)
                )
                bc = q * 64 + tex
                bias = 0
                if bcnt[bc] > 0:
                    bs = bsum[bc]
                    bias = bs // bcnt[bc] if bs >= 0 else -((-bs) // bcnt[bc])
                p += bias
                pred = g0 + ((p + 4) >> 3)
                if pred < 0:
                    pred = 0
                elif pred > maxv:
                    pred = maxv
                d3 = min(q_[py, px - 1] >> qsh, 7) * 8 + min(q_[py - 1, px] >> qsh, 7)
                if cr:
                    d3 += 64 * min(qerr[prev, py, px] >> qsh, 3)
                ctx[0] = (c * _CTX3 + q) * blk
                wbase = (c * _WGROUPS + q // (NUM_BINS // _WGROUPS)) * wsets
                ctx[1] = (c * _CTX3 + mbins[min(smin, _ACT_TABLE - 1)]) * blk
                ctx[2] = (c * _CTX3 + d3) * blk
                if nm > 3:
                    ctx[3] = (c * _CTX3 + mbins[min(spread >> ash, _ACT_TABLE - 1)] * 8 + min((q_[py - 1, px - 1] + q_[py - 1, px + 1]) >> qsh, 7)) * blk
                    ctx[4] = (c * _CTX3 + tex * 4 + q // (NUM_BINS // 4)) * blk
                if enc:
                    e = np.int64(img[y, x, c]) - pred
                    qe = (e + half) // step if e >= 0 else -((half - e) // step)
                    _value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, abs(qe), 1 if qe < 0 else 0, True, mb, nm)
                else:
                    qe = _value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, 0, 0, False, mb, nm)
                q_[py, px] = abs(qe)
                r = pred + qe * step
                if r < 0:
                    r = 0
                elif r > maxv:
                    r = maxv
                rec[y, x, c] = r
                v = r - g0
                v_[py, px] = v
                fe = 8 * v - p
                e_[py, px] = fe
                se = 8 * v - sp
                serr[cur, py, px] = se
                for k in range(nsub):
                    perr[py, px, k] = abs(8 * v - sub[k])
                if _LMS_ON and lms:  # normalised LMS, in integers: w += 2**-lms * e * u / (1 + |u|**2)
                    f = (se << (44 - lms)) // nrm
                    for t in range(nu):
                        lw[t] = min(max(lw[t] + ((f * lu[t] + 32768) >> 16), -_LMS_WMAX), _LMS_WMAX)
                if cr:
                    eg = serr[prev, py, px]
                    sxy[aq] += se * eg
                    sxx[aq] += eg * eg
                    if sxx[aq] > _SLOPE_HALVE:
                        sxy[aq] //= 2
                        sxx[aq] //= 2
                bsum[bc] += fe + bias
                bcnt[bc] += 1
                if bcnt[bc] >= _BIAS_HALVE:
                    bsum[bc] //= 2
                    bcnt[bc] //= 2
            if enc and st[3] + 64 * w > len(buf):
                return -1  # out of room: the caller retries with a larger buffer
    if enc:
        x1 = st[0]
        for i in range(4):
            buf[st[3]] = (x1 >> (24 - 8 * i)) & 255
            st[3] += 1
    return st[3]


_NM = _MODELS  # what :func:`_tile_kernel` reads as constants; each compiled copy has its own (:func:`kernel`)
_LMS_ON = False
_KERNELS = {}
_KERNELS_LOCK = threading.Lock()


def kernel(models: int = _MODELS):
    """The tile kernel (:func:`_tile_kernel`) compiled for ``models`` context models: a copy
    of the function whose constants ``_NM`` and ``_LMS_ON`` are these models and whether the
    LMS stage is compiled in (version 5's five models: yes; its ``lms`` argument still turns
    it off per tile), so that the loops over the models unroll and version 2's three-model
    coder runs no LMS branches.  Each copy has its own name, so Numba caches each on its own."""
    if models not in (_MODELS, 5):
        raise ValueError(f"the tile kernel mixes 3 or 5 context models, not {models}")
    key = (int(models), models > _MODELS)
    if key in _KERNELS:  # every tile asks: no lock once compiled
        return _KERNELS[key]
    with _KERNELS_LOCK:
        if key not in _KERNELS:
            g = dict(_tile_kernel.__globals__, _NM=key[0], _LMS_ON=key[1])
            name = f"_tile_kernel_m{key[0]}{'_lms' if key[1] else ''}"
            fn = types.FunctionType(_tile_kernel.__code__, g, name, _tile_kernel.__defaults__)
            fn.__qualname__ = name
            fn.__module__ = __name__
            _KERNELS[key] = numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
        return _KERNELS[key]


def _code_tile(img, rec, lay, cfg, steps, buf, tabs, probs, wts, enc, lms=0):
    """Code or decode one tile (:func:`_tile_kernel`) with the compiled copy for ``probs``'
    number of models (:func:`kernel`)."""
    return kernel(probs.shape[0])(img, rec, lay, cfg, steps, buf, tabs, probs, wts, enc, lms)


_GWT = _WT[np.minimum(_GUIDE_SCALE * np.arange(1024), _WEIGHT_TABLE - 1)]  # the G-guided weights (differences <= 510)
_TABLES = (_WT, _SQUASH, _STRETCH, _QBINS, _SBINS, _MBINS, _GWT)
_PROBS_SHAPE = (_MODELS, _MAX_PLANES * _CTX3 * _BLOCK)
_WTS_SHAPE = (_MAX_PLANES * _WGROUPS * _WSETS, _MODELS)
PRIOR_FILE = "lossless-v2-prior.npz"  # the starting probabilities of version 2: fixed forever


def flat_prior():
    """(probabilities, mixer weights) knowing nothing: every bit even, every model weighted alike."""
    return np.full(_PROBS_SHAPE, _ONE // 2, np.uint16), np.full(_WTS_SHAPE, (1 << 16) // _MODELS, np.int64)


_PRIOR = []


def prior():
    """The shipped starting state of every tile (:func:`nkcodec.fit.lossless_prior.fit_prior` on the training
    photos): (probabilities uint16, mixer weights int64).  Streams of version 2 decode
    with exactly this file, so it never changes; a new prior is a new version."""
    if not _PRIOR:
        _PRIOR.append(load_prior(PRIOR_FILE, _PROBS_SHAPE, _WTS_SHAPE))
    return _PRIOR[0]


def load_prior(name: str, probs_shape: tuple, wts_shape: tuple) -> tuple:
    """A shipped prior, ``nkcodec/weights/<name>``: (probabilities uint16, mixer weights int64)
    of these shapes."""
    from importlib.resources import files

    with files("nkcodec").joinpath("weights", name).open("rb") as f, np.load(f) as z:
        probs, wts = z["probs"].astype(np.uint16), z["wts"].astype(np.int64)
    if probs.shape != probs_shape or wts.shape != wts_shape:
        raise RuntimeError(f"{name} has shapes {probs.shape}, {wts.shape}; expected {probs_shape}, {wts_shape}")
    return probs, wts


def _state():
    """A fresh copy of the prior, for one tile."""
    probs, wts = prior()
    return probs.copy(), wts.copy()


def min_bytes(samples: int) -> int:
    """The fewest bytes any tile of ``samples`` samples codes to: each sample codes at
    least one bit at a probability of at most 1 - 64 / 2**16, which costs at least
    0.00140 bits (0.000176 bytes); the coder's bytes are at least that information
    and at least its 4-byte flush.  A decoder refuses shorter tiles, so a forged
    header cannot make it decode far more pixels than the stream could hold."""
    return max(4, samples * 17 // 100000)


def _layout(channels: int) -> np.ndarray:
    """Version 2's planes for an image of ``channels`` channels, in coding order, as
    :func:`_code_tile` takes them ([channel, reference, guide]): G first, then R and B
    as differences from G (B guided by R too), then alpha; gray and alpha alone."""
    return np.array({1: [[0, -1, -1]], 2: [[0, -1, -1], [1, -1, -1]], 3: [[1, -1, -1], [0, 1, -1], [2, 1, 0]],
                     4: [[1, -1, -1], [0, 1, -1], [2, 1, 0], [3, -1, -1]]}[channels], np.int64)  # fmt: skip


_CFG8 = np.array([255, _MAX_BITS, 0, 0], np.int64)  # 8-bit samples: no shifts (:func:`_code_tile`'s cfg)


def _steps(channels: int, max_error: int) -> np.ndarray:
    """Quantiser step per plane (at least :data:`_MAX_PLANES` of them): alpha (channel 2
    of 2, 4 of 4) is always lossless."""
    s = np.full(max(channels, _MAX_PLANES), 2 * max_error + 1, np.int64)
    if channels in (2, 4):
        s[channels - 1] = 1
    return s


def _as_hwc(image: np.ndarray) -> np.ndarray:
    """The checked image (:func:`~nkcodec.format.limits.check_image`) as HxWxC."""
    image = check_image(image)
    return image.reshape(image.shape[0], image.shape[1], -1)


def _map(fn, items, threads):
    if threads <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="nkcodec-lossless") as ex:
        return list(ex.map(fn, items))


_ACTIVE = [0]  # lossless encode/decode calls running now, in any thread
_ACTIVE_LOCK = threading.Lock()


def _cores() -> int:
    return cpu_count()


@contextlib.contextmanager
def _tile_threads(threads):
    """The number of tile threads for one call: ``threads`` when given, else the
    cores shared among the calls running at once, so that a pool of callers
    (``compress_many``, Dask) does not multiply threads, or tile memory, by the cores."""
    threads = check_int(threads, "threads", 1, none=True)
    with _ACTIVE_LOCK:
        _ACTIVE[0] += 1
        running = _ACTIVE[0]
    try:
        yield int(threads) if threads is not None else max(1, _cores() // running)
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE[0] -= 1


def encode(image: np.ndarray, max_error: int = 0, threads: int | None = None) -> list:
    """Code a uint8 image (HxW or HxWxC, C in 1..4; C = 2 and 4 carry alpha, coded
    losslessly) so that every sample decodes within ``max_error``: one bytes
    object per tile (:func:`tiles`)."""
    image = _as_hwc(image)
    max_error = check_max_error(max_error)
    lay = _layout(image.shape[2])
    steps = _steps(image.shape[2], max_error)

    def one(t):
        tile = np.ascontiguousarray(image[t])
        rec = np.empty_like(tile)
        size = tile.size * 2 + 1024
        while True:
            buf = np.empty(size, np.uint8)
            n = _code_tile(tile, rec, lay, _CFG8, steps, buf, _TABLES, *_state(), True)
            if n >= 0:
                return buf[:n].tobytes()
            size *= 4

    with _tile_threads(threads) as n:
        return _map(one, tiles(*image.shape[:2]), n)


def with_stored(image: np.ndarray, parts: list) -> tuple:
    """(parts, whether any is stored): each tile of :func:`encode`'s ``parts`` that took
    no fewer bytes than its raw samples replaced by those samples (row-major, channels
    last), so that no tile, and no image, costs more than raw plus the container's few
    bytes.  Streams with a stored tile are :data:`VERSION_STORED`."""
    image = _as_hwc(image)
    out, stored = [], False
    for t, part in zip(tiles(*image.shape[:2]), parts):
        raw = np.ascontiguousarray(image[t])
        if len(part) >= raw.size:
            out.append(raw.tobytes())
            stored = True
        else:
            out.append(part)
    return out, stored


def decode(parts: list, shape: tuple, max_error: int = 0, threads: int | None = None, stored: bool = False) -> np.ndarray:
    """Inverse of :func:`encode`: the uint8 image of ``shape`` (HxWxC; HxW for gray
    comes back HxWx1), every sample within ``max_error`` of the original.  ``stored``
    (version 3): a tile whose bytes are exactly its raw size is its samples
    (:func:`with_stored`); a longer one is corrupt."""
    h, w, channels = shape if len(shape) == 3 else (*shape, 1)
    lay = _layout(channels)
    steps = _steps(channels, max_error)
    grid = tiles(h, w)
    if len(parts) != len(grid):
        raise CorruptStreamError(f"{len(parts)} lossless tiles, expected {len(grid)}")
    for i, ((rs, cs), part) in enumerate(zip(grid, parts)):
        samples = (rs.stop - rs.start) * (cs.stop - cs.start) * channels
        if stored and len(part) > samples:
            raise CorruptStreamError(f"lossless tile {i} has {len(part)} bytes, more than its {samples} raw samples")
        least = min_bytes(samples)
        if len(part) < least and not (stored and len(part) == samples):  # a stored tile of a few samples may be below the floor
            raise CorruptStreamError(f"lossless tile {i} has {len(part)} bytes, fewer than the {least} its samples need at least")
    out = np.empty((h, w, channels), np.uint8)

    def one(i):
        rs, cs = grid[i]
        rec = np.empty((rs.stop - rs.start, cs.stop - cs.start, channels), np.uint8)
        if stored and len(parts[i]) == rec.size:
            out[rs, cs] = np.frombuffer(parts[i], np.uint8).reshape(rec.shape)
            return
        data = np.frombuffer(parts[i], np.uint8).copy()  # writable: the kernel is shared with the encoder
        n = _code_tile(rec, rec, lay, _CFG8, steps, data, _TABLES, *_state(), False)
        if n != data.size:
            raise CorruptStreamError(f"lossless tile {i} ends at byte {n} of {data.size}")
        out[rs, cs] = rec

    with _tile_threads(threads) as n:
        _map(one, list(range(len(grid))), n)
    return out
