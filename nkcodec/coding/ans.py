"""A compiled decoder for the ANS streams that ``constriction`` writes.

Every learned preset's entropy-coded sections are written by ``constriction``'s
stack ANS coder (:func:`nkcodec.coding.entropy.encode_symbols`), with one
``Categorical(freq / total, perfect=False)`` model per integer table.  Reading
them back through the library costs one Python call per (table, run) of
symbols: for the context model, thousands per image, about a third of its
entropy-decoding time.  This module decodes the same bytes inside compiled code,
so that a whole latent decodes in one call (:mod:`nkcodec.coding.context`).

It follows the library's definitions exactly (constriction 0.4 and 0.5,
``DefaultAnsCoder`` and ``DefaultContiguousCategoricalEntropyModel``):

* **The model.**  A table of ``n >= 2`` frequencies ``f`` with total ``S``
  becomes a 24-bit CDF: ``cdf[i] = floor(c_i * (2**24 - n) / T) + i``, where
  ``c_i`` is the running sum of the float64 probabilities ``f / S`` and ``T``
  their sum, both summed left to right ("fast" quantisation), and
  ``cdf[n] = 2**24``.  With ``S = 2**16`` (every table nkcodec writes) every
  one of these floats is an exact dyadic value, so the CDF is the integer
  ``(C_i * (2**24 - n)) >> 16 + i``; for any other total the same IEEE
  operations run in the same order (no fast-math), so the result is the same.
* **The coder.**  A 64-bit state over 32-bit words, read from the end of the
  section: the last word (never zero) and, while the state is below ``2**32``,
  the word before it.  A symbol is the last ``i`` with ``cdf[i] <= state mod
  2**24``; then ``state = (state >> 24) * (cdf[i+1] - cdf[i]) + (q - cdf[i])``,
  and one more word is read whenever the state falls below ``2**32`` and words
  are left.  Past the end the state just goes on, as in the library, so
  decoding never fails; a corrupt stream is caught by the checks around it.

The tests compare it with the library on random tables and streams.

Examples
--------
>>> import numpy as np
>>> from nkcodec.coding.entropy import IntTables, encode_symbols
>>> t = IntTables.from_counts(np.array([[5, 3, 1, 1]]))
>>> dec = Decoder(encode_symbols([np.array([0, 1, 0, 3])], t))
>>> dec.decode_run(t, 0, [4]).tolist()
[0, 1, 0, 3]
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptStreamError

__all__ = ["PRECISION", "cdf_table", "Decoder", "start", "decode_symbol"]

PRECISION = 24  # constriction's DefaultContiguousCategoricalEntropyModel
_P = np.uint64(PRECISION)
_QMASK = np.uint64((1 << PRECISION) - 1)
_LOW = np.uint64(1 << 32)  # the state stays at or above this while words are left
_W = np.uint64(32)


@numba.njit(cache=True, nogil=True)
def _cdf_rows(freq, size):
    """(K, W+1) uint32 CDFs of the tables' first ``size[k]`` frequencies; a one-symbol
    table gets [0, 2**24] (it is never decoded: it costs nothing)."""
    k_n, w_n = freq.shape
    out = np.zeros((k_n, w_n + 1), np.uint32)
    for k in range(k_n):
        n = size[k]
        total = 0.0
        for i in range(n):
            total += float(freq[k, i])
        normalization = 0.0  # sum of the float probabilities, as the library sums them
        for i in range(n):
            normalization += float(freq[k, i]) / total
        scale = float((1 << PRECISION) - n) / normalization
        cum = 0.0
        for i in range(n):
            out[k, i] = np.uint32(np.int64(cum * scale) + i)
            cum += float(freq[k, i]) / total
        out[k, n] = 1 << PRECISION
        for i in range(n + 1, w_n + 1):
            out[k, i] = 1 << PRECISION
    return out


def cdf_table(freq: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The 24-bit CDFs (K, W+1) uint32 that constriction builds from integer tables
    ``freq`` (K, W) with ``size`` (K,) symbols each (module docstring)."""
    freq = np.ascontiguousarray(freq, np.uint32)
    size = np.ascontiguousarray(size, np.int64)
    return _cdf_rows(freq, size)


@numba.njit(cache=True, nogil=True)
def start(words):
    """The coder over ``words`` (uint32): ``(state, words left)``, or words left = -1
    when the last word is zero (constriction refuses such data)."""
    pos = words.size
    if pos == 0:
        return np.uint64(0), 0
    pos -= 1
    state = np.uint64(words[pos])
    if state == 0:
        return np.uint64(0), -1
    while pos > 0 and state < _LOW:
        pos -= 1
        state = (state << _W) | np.uint64(words[pos])
    return state, pos


@numba.njit(cache=True, nogil=True, inline="always")
def decode_symbol(words, state, pos, cdf, n):
    """One symbol with the CDF row ``cdf`` of ``n`` symbols: (symbol, state, words left)."""
    q = state & _QMASK
    lo, length = 0, n  # the last i in [0, n) with cdf[i] <= q (cdf[0] == 0); branch-free steps
    while length > 1:
        half = length >> 1
        lo = lo + half if np.uint64(cdf[lo + half]) <= q else lo
        length -= half
    left = np.uint64(cdf[lo])
    state = (state >> _P) * (np.uint64(cdf[lo + 1]) - left) + (q - left)
    if state < _LOW and pos > 0:
        pos -= 1
        state = (state << _W) | np.uint64(words[pos])
    return lo, state, pos


@numba.njit(cache=True, nogil=True)
def _decode_runs(words, st, pos, cdf, size, rows, counts, out):
    """``counts[i]`` symbols with table ``rows[i]``, for each i in turn, into ``out``;
    the state lives in ``st[0]`` (uint64: as a Python int it could not cross)."""
    state = st[0]
    o = 0
    for i in range(rows.size):
        k = rows[i]
        n = size[k]
        for _ in range(counts[i]):
            if n > 1:
                s, state, pos = decode_symbol(words, state, pos, cdf[k], n)
                out[o] = s
            else:
                out[o] = 0
            o += 1
    st[0] = state
    return pos


class Decoder:
    """Decodes the sections of :func:`~nkcodec.coding.entropy.encode_symbols` one run
    at a time, so that the next run's length and table may depend on what was
    decoded before (``entropy.SymbolDecoder``)."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise CorruptStreamError("entropy-coded section is not a whole number of 32-bit words")
        self.words = np.frombuffer(data, "<u4").astype(np.uint32)
        state, self.pos = start(self.words)
        self.st = np.array([state], np.uint64)
        if self.pos < 0:
            raise CorruptStreamError("entropy-coded section is invalid (it ends in a zero word)")

    def decode_run(self, tables, first: int, counts, rows=None) -> np.ndarray:
        """``counts[i]`` symbols with table ``first + i`` (or ``rows[i]``), concatenated."""
        counts = np.asarray(counts, np.int64)
        rows = np.arange(first, first + counts.size, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        if rows.shape != counts.shape or (rows.size and (rows.min() < 0 or rows.max() >= tables.size.size)) or (counts.size and counts.min() < 0):
            # the compiled loop does not check; rows may come from a stream (near-lossless version 1's table choices)
            raise CorruptStreamError("entropy decoder: table rows out of range, or counts that do not match them")
        out = np.empty(int(counts.sum()), np.int32)
        self.pos = _decode_runs(self.words, self.st, self.pos, tables.cdf(), tables.size, rows, counts, out)
        return out

    def decode(self, tables, k: int, n: int) -> np.ndarray:
        """``n`` symbols coded with table ``k``."""
        return self.decode_run(tables, k, [n])
