"""Entropy coding with integer frequency tables (``constriction`` ANS coder).

Tables are integer frequencies (summing to 2**16 per context) shipped with the
model or carried in the stream; the probabilities handed to the coder are
``freq / 2**16``, exact in float64 on every machine, so encoder and decoder
build bit-identical models.  ``constriction`` (Rust, well kept) does the
arithmetic; nothing here is a hand-written range coder.

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

from .errors import CorruptStreamError

__all__ = ["IntTables", "encode_symbols", "decode_symbols", "pack_varints", "unpack_varints", "PRECISION"]

PRECISION = 16
_TOTAL = 1 << PRECISION


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
        self._models = [None] * freq.shape[0]

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> "IntTables":
        """Quantise symbol counts (K, W) to tables; every symbol keeps frequency >= 1."""
        from .zoo import _quantize_pmf

        counts = np.atleast_2d(np.asarray(counts, np.float64))
        freq = np.stack([_quantize_pmf(c + 1e-3, _TOTAL) for c in counts])
        return cls(freq, np.full(counts.shape[0], counts.shape[1]))

    def model(self, k: int):
        import constriction

        if self._models[k] is None:
            f = self.freq[k, : self.size[k]].astype(np.float64) / float(self.freq[k, : self.size[k]].sum())
            self._models[k] = constriction.stream.model.Categorical(f, perfect=False)
        return self._models[k]


def encode_symbols(streams: list, tables: IntTables) -> bytes:
    """ANS-code ``streams[k]`` (int symbols in 0..size[k]-1) with table k, into bytes."""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    for k in reversed(range(len(streams))):
        s = np.ascontiguousarray(streams[k], np.int32)
        if s.size:
            if s.min() < 0 or s.max() >= tables.size[k]:
                raise ValueError(f"symbol out of range for table {k}")
            coder.encode_reverse(s, tables.model(k))
    return coder.get_compressed().tobytes()


def decode_symbols(data: bytes, tables: IntTables, counts: list) -> list:
    """Inverse of :func:`encode_symbols`; ``counts[k]`` symbols per table."""
    import constriction

    if len(data) % 4:
        raise CorruptStreamError("entropy-coded section is not a whole number of 32-bit words")
    words = np.frombuffer(data, np.uint32).copy()
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = [coder.decode(tables.model(k), int(n)) if n else np.empty(0, np.int32) for k, n in enumerate(counts)]
    except Exception as e:  # constriction raises its own errors on impossible states
        raise CorruptStreamError(f"entropy decoder failed ({e.__class__.__name__})") from None
    return out


def pack_varints(values) -> bytes:
    """Zigzag + LEB128 of a small int array (escapes, side info)."""
    out = bytearray()
    for v in np.asarray(values, np.int64).tolist():
        z = (v << 1) ^ (v >> 63)
        z &= (1 << 64) - 1
        while z >= 0x80:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        out.append(z)
    return bytes(out)


def unpack_varints(data: bytes, count: int) -> np.ndarray:
    """Read exactly ``count`` zigzag varints; all of ``data`` must be used."""
    vals = []
    pos = 0
    n = len(data)
    for _ in range(count):
        z = shift = 0
        while True:
            if pos >= n or shift > 63:
                raise CorruptStreamError("escape values truncated or malformed")
            b = data[pos]
            pos += 1
            z |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        vals.append((z >> 1) ^ -(z & 1))
    if pos != n:
        raise CorruptStreamError(f"{n - pos} trailing bytes after escape values")
    return np.asarray(vals, np.int64)
