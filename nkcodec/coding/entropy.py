"""Entropy coding with integer frequency tables (``constriction`` ANS coder).

Tables are integer frequencies (summing to 2**16 per context) shipped with the
model or carried in the stream; the probabilities handed to the coder are
``freq / 2**16``, exact in float64 on every machine, so encoder and decoder
build bit-identical models.  ``constriction`` (Rust, well kept) encodes;
the decoder (:mod:`nkcodec.coding.ans`) reads the library's streams in compiled
code, so that a whole latent decodes in one call.

Examples
--------
>>> import numpy as np
>>> t = IntTables.from_counts(np.array([[5, 3, 1, 1]]))
>>> data = encode_symbols([np.array([0, 1, 0, 3])], t)
>>> decode_symbols(data, t, [4])[0].tolist()
[0, 1, 0, 3]
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptStreamError
from .ans import Decoder, cdf_table
from .varint import pack as pack_varints  # noqa: F401  (re-exported: entropy.pack_varints)
from .varint import read as read_varint
from .varint import unpack as unpack_varints  # noqa: F401

__all__ = [
    "IntTables",
    "quantize_pmf",
    "check_length",
    "encode_symbols",
    "decode_symbols",
    "SymbolDecoder",
    "encode_adaptive",
    "decode_adaptive",
    "pack_varints",
    "to_symbols",
    "from_symbols",
    "escape_count",
    "MAX_LATENT",
    "unpack_varints",
    "PRECISION",
    "TABLE_TOTAL",
]

PRECISION = 16  # every integer frequency table sums to 2**PRECISION (model, context and residual tables)
TABLE_TOTAL = 1 << PRECISION
_TOTAL = TABLE_TOTAL
MAX_LATENT = 1 << 20  # largest |latent value| a decoder accepts


def to_symbols(values: np.ndarray, lo, size):
    """Table symbols of integer latent values: ``v - lo + 1``, with values outside
    the table in the escape bins 0 (below) and ``size - 1`` (above; their values
    travel as varints).  ``lo`` and ``size`` broadcast against ``values``.
    Returns (symbols, escaped mask)."""
    idx = values - lo + 1
    below, above = idx < 1, idx > size - 2
    return np.where(below, 0, np.where(above, size - 1, idx)), below | above


def from_symbols(symbols: np.ndarray, lo, size):
    """Inverse of :func:`to_symbols`: (values, escaped mask); escaped entries still
    need their varint values."""
    return symbols + lo - 1, (symbols == 0) | (symbols == size - 1)


def quantize_pmf(pmf: np.ndarray, total: int) -> np.ndarray:
    """Integer frequencies >= 1 summing exactly to ``total``."""
    pmf = np.maximum(pmf, 0.0)
    pmf = pmf / pmf.sum()
    n = pmf.size
    freq = np.maximum(1, np.floor(pmf * (total - n)).astype(np.int64))
    # hand out the remainder to the largest-probability bins (deterministic)
    rest = total - int(freq.sum())
    order = np.argsort(-pmf, kind="stable")
    i = 0
    while rest > 0:
        freq[order[i % n]] += 1
        rest -= 1
        i += 1
    while rest < 0:  # pragma: no cover - floor keeps the sum below total
        j = order[i % n]
        if freq[j] > 1:
            freq[j] -= 1
            rest += 1
        i += 1
    return freq.astype(np.uint32)


def check_length(nbytes: int, bits: float, what: str) -> None:
    """CorruptStreamError unless an ANS section of ``nbytes`` can hold ``bits``,
    the least that the symbols the header declares cost (each at its table's
    largest probability).  Checked before decoding, so a header that declares
    a huge image over a tiny payload fails before any large allocation, and a
    truncated stream in time proportional to its length.  The margin covers
    the coder's state (up to 64 bits) and its fixed-point rounding."""
    if 0.98 * bits - 128 > 8 * nbytes:
        raise CorruptStreamError(
            f"{what} of {nbytes} bytes is too short for the image the header declares (it needs at least {int(0.98 * bits - 128) // 8} bytes)"
        )


def escape_count(params, limit: int) -> int:
    """The ``escapes`` count of a latent's stream parameters, checked against ``limit``."""
    if not isinstance(params, dict):
        raise CorruptStreamError("latent parameters are not a mapping")
    n_esc = params.get("escapes")
    if not isinstance(n_esc, int) or isinstance(n_esc, bool) or not 0 <= n_esc <= limit:
        raise CorruptStreamError(f"bad escape count {n_esc!r}")
    return n_esc


class IntTables:
    """One integer frequency table per context: ``freq`` (K, W) uint32, ``size`` (K,)."""

    def __init__(self, freq: np.ndarray, size: np.ndarray):
        freq = np.asarray(freq, np.uint32)
        size = np.asarray(size, np.int64)
        if freq.ndim != 2 or size.shape != (freq.shape[0],):
            raise ValueError("freq must be (K, W) and size (K,)")
        if np.any(size < 1) or np.any(size > freq.shape[1]):
            raise ValueError("table sizes out of range")
        self.freq, self.size = freq, size
        self._coding = None

    def min_bits(self) -> np.ndarray:
        """Per table: the fewest bits any symbol costs, ``-log2`` of its largest
        probability (0 for a one-symbol alphabet); built once."""
        if getattr(self, "_min_bits", None) is None:
            inside = np.arange(self.freq.shape[1])[None, :] < self.size[:, None]
            f = np.where(inside, self.freq, 0).astype(np.float64)
            self._min_bits = -np.log2(f.max(axis=1) / f.sum(axis=1))
        return self._min_bits

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> IntTables:
        """Quantise symbol counts (K, W) to tables; every symbol keeps frequency >= 1."""
        counts = np.atleast_2d(np.asarray(counts, np.float64))
        return cls(np.stack([_table_row(c) for c in counts]), np.full(counts.shape[0], counts.shape[1]))

    def cdf(self) -> np.ndarray:
        """The 24-bit CDFs (K, W+1) that the compiled decoder reads
        (:func:`nkcodec.coding.ans.cdf_table`: the library's own quantisation of
        :meth:`coding_models`); built once."""
        if getattr(self, "_cdf", None) is None:
            self._cdf = cdf_table(self.freq, self.size)
        return self._cdf

    def coding_models(self) -> list:
        """Per table: its constriction model, or None for a one-symbol alphabet
        (nothing to code); built once, so that coding many short streams pays no
        lookup per stream.  Each model gets ``freq / row total``, exact in float64."""
        import constriction

        if self._coding is None:
            inside = np.arange(self.freq.shape[1])[None, :] < self.size[:, None]
            f = self.freq.astype(np.float64)
            f /= np.where(inside, f, 0.0).sum(axis=1)[:, None]
            cat = constriction.stream.model.Categorical
            self._coding = [cat(f[k, :n], perfect=False) if n > 1 else None for k, n in enumerate(self.size.tolist())]
        return self._coding


def encode_symbols(streams: list, tables: IntTables, checked: bool = False, rows=None) -> bytes:
    """ANS-code ``streams[k]`` (int symbols in 0..size[k]-1) with table k (or
    table ``rows[k]``, when given), into bytes.

    ``checked=True`` skips the range check for callers whose symbols are in range
    by construction (int32 arrays)."""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    models = tables.coding_models()
    for i in reversed(range(len(streams))):
        k = i if rows is None else rows[i]
        s = streams[i] if checked else np.ascontiguousarray(streams[i], np.int32)
        if not s.size:
            continue
        if not checked and (s.min() < 0 or s.max() >= tables.size[k]):
            raise ValueError(f"symbol out of range for table {k}")
        if models[k] is not None:  # a one-symbol alphabet costs nothing
            coder.encode_reverse(s, models[k])
    return coder.get_compressed().tobytes()


def decode_symbols(data: bytes, tables: IntTables, counts: list) -> list:
    """Inverse of :func:`encode_symbols`; ``counts[k]`` symbols per table."""
    dec = SymbolDecoder(data)
    return [dec.decode(tables, k, n) for k, n in enumerate(counts)]


SymbolDecoder = Decoder  # decodes the streams of encode_symbols one run at a time, in compiled code (.ans)


MAX_ALPHABET = 1 << 16


def encode_adaptive(streams: list, sizes: list) -> bytes:
    """Code each stream (symbols 0..size-1) with an integer table built from its own
    histogram; the tables (varints) travel in front of the ANS data."""
    counts = [np.bincount(np.asarray(s, np.int64), minlength=n)[:n] for s, n in zip(streams, sizes)]
    rows = [_table_row(c) for c in counts]
    tables = IntTables(_pad_rows(rows), np.asarray(sizes))
    head = pack_varints([len(streams), *sizes, *np.concatenate(rows).tolist()])
    body = encode_symbols(streams, tables)
    return pack_varints([len(head)]) + head + body


def _table_row(counts: np.ndarray) -> np.ndarray:
    return quantize_pmf(np.asarray(counts, np.float64) + 1e-3, _TOTAL)


def _pad_rows(rows: list) -> np.ndarray:
    out = np.zeros((len(rows), max(r.size for r in rows)), np.uint32)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def decode_adaptive(data: bytes, counts: list) -> list:
    """Inverse of :func:`encode_adaptive`; ``counts[k]`` symbols in stream k."""
    hlen, pos = read_varint(data, 0)
    if not 0 < hlen <= len(data) - pos:
        raise CorruptStreamError("adaptive table header length out of range")
    head, body = data[pos : pos + hlen], data[pos + hlen :]
    k, p = read_varint(head, 0)
    if k != len(counts):
        raise CorruptStreamError(f"{k} adaptive tables, expected {len(counts)}")
    sizes = []
    for _ in range(k):
        n, p = read_varint(head, p)
        if not 1 <= n <= MAX_ALPHABET:
            raise CorruptStreamError(f"alphabet size {n} out of range")
        sizes.append(n)
    if sum(sizes) > len(head):  # every frequency takes at least one byte
        raise CorruptStreamError("adaptive tables truncated")
    freqs = unpack_varints(head[p:], sum(sizes))
    rows, off = [], 0
    for n in sizes:
        row = freqs[off : off + n]
        off += n
        if row.min() < 1 or row.sum() != _TOTAL:
            raise CorruptStreamError("adaptive frequency table is not normalised")
        rows.append(row.astype(np.uint32))
    tables = IntTables(_pad_rows(rows), np.asarray(sizes))
    check_length(len(body), float(np.dot(tables.min_bits(), np.asarray(counts, np.float64))), "adaptive-coded section")
    return decode_symbols(body, tables, counts)
