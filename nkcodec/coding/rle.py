"""NK-RLE: run-length coding exactly as the paper defines it.

A 1-D integer sequence becomes pairs ``[value, key]`` where ``key`` is the
*square* of the run length (``variant="nk"``, the default).  ``variant="plain"``
stores ``key = run_length`` for comparison.  Decoding takes an exact integer
square root; a key that is zero or not a perfect square is a corrupt stream.

The kernels are Numba-jitted (``cache=True``).  Each has a NumPy reference
(``*_reference``) that the tests compare against and that ``bench`` times as
the peer.

Examples
--------
>>> import numpy as np
>>> from nkcodec import rle
>>> values, keys = rle.encode(np.array([5, 5, 5, 0, 0, 7], dtype=np.int16))
>>> values.tolist(), keys.tolist()
([5, 0, 7], [9, 4, 1])
>>> rle.decode(values, keys).tolist()
[5, 5, 5, 0, 0, 7]
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptStreamError
from . import varint

__all__ = [
    "encode",
    "decode",
    "encode_reference",
    "decode_reference",
    "encode_image",
    "decode_image",
    "pack",
    "unpack",
    "VARIANTS",
]

VARIANTS = ("nk", "plain")
_MAX_RUN = np.uint64(0xFFFFFFFF)  # (2**32 - 1)**2 is the largest square in uint64
_BIG_KEY = np.uint64(1 << 52)  # below it float64 sqrt is exact for squares
_FILL = 16  # decode writes this many elements per run unconditionally

# error codes returned by kernels
_E_ZERO_KEY = -1
_E_NOT_SQUARE = -2
_E_OVER_CAP = -3
_E_TRUNCATED = varint.E_TRUNCATED
_E_VARINT = varint.E_MALFORMED


def _unsigned_view(a: np.ndarray) -> np.ndarray:
    """View an integer array as the unsigned type of the same width."""
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _check_symbols(symbols) -> np.ndarray:
    a = np.asarray(symbols)
    if a.dtype.kind not in "iu":
        raise ValueError(f"NK-RLE needs an integer array, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"NK-RLE needs a 1-D array, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _check_variant(variant: str) -> bool:
    if variant not in VARIANTS:
        raise ValueError(f"unknown NK-RLE variant {variant!r}; choose one of {VARIANTS}")
    return variant == "nk"


# ---------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _count_runs(a):
    c = 1
    for i in range(1, a.size):
        c += a[i] != a[i - 1]
    return c


@numba.njit(cache=True, nogil=True)
def _encode_kernel(a, values, keys, squared):
    """Fill values/keys (sized by _count_runs). Returns the number of runs."""
    n = a.size
    m = keys.size
    # Pass 1, branch-free: keys[j] collects the end position of run j.
    j = np.uint64(0)  # unsigned: no wraparound checks in the hot loop
    for i in range(1, n):
        keys[j] = i
        j += np.uint64(a[i] != a[i - 1])
    keys[m - 1] = n
    # Pass 2: turn end positions into keys, pick the values.
    start = np.uint64(0)
    for k in range(m):
        end = keys[k]
        length = end - start
        values[k] = a[start]
        keys[k] = length * length if squared else length
        start = end
    return m


@numba.njit(cache=True, nogil=True)
def _isqrt_exact(k):
    """Exact square root of a uint64 key, or -1 if k is not a perfect square."""
    r = np.uint64(np.sqrt(np.float64(k)))
    if r > _MAX_RUN:
        r = _MAX_RUN
    while r * r > k:
        r -= np.uint64(1)
    while r < _MAX_RUN and (r + np.uint64(1)) * (r + np.uint64(1)) <= k:
        r += np.uint64(1)
    if r * r != k:
        return np.int64(-1)
    return np.int64(r)


@numba.njit(cache=True, nogil=True)
def _run_lengths(keys, squared, cap, lengths):
    """Check every key and write its run length; return the total or an error code.

    The common case runs branch-free so LLVM vectorises it; errors are
    accumulated in flags and reported after the loop.
    """
    m = keys.size
    total = np.int64(0)
    zero = False
    bad = False
    big = False
    if squared:
        for k in range(m):
            key = keys[k]
            r = np.uint64(np.sqrt(np.float64(key)))
            lengths[k] = np.int64(r)
            total += np.int64(r)
            zero |= key == 0
            bad |= r * r != key
            big |= key >= _BIG_KEY
        if big:  # rare: float sqrt may be off by one, redo exactly
            total = np.int64(0)
            bad = False
            for k in range(m):
                r = _isqrt_exact(keys[k])
                bad |= r < 0
                lengths[k] = r
                if r > cap or total + r > cap:
                    return np.int64(_E_OVER_CAP)
                total += r
    else:
        for k in range(m):
            key = keys[k]
            zero |= key == 0
            big |= key > np.uint64(cap)
            lengths[k] = np.int64(key)
            total += np.int64(key)
        if big:
            return np.int64(_E_OVER_CAP)
    if zero:
        return np.int64(_E_ZERO_KEY)
    if bad:
        return np.int64(_E_NOT_SQUARE)
    if total > cap:
        return np.int64(_E_OVER_CAP)
    return total


@numba.njit(cache=True, nogil=True)
def _decode_kernel(values, lengths, out):
    """Bulk fill; ``out`` has _FILL elements of slack after the decoded data.

    Indices are unsigned so Numba emits no negative-index wraparound code and
    LLVM turns the fixed-count fill into one vector store.
    """
    pos = np.uint64(0)
    for k in range(values.size):
        v = values[k]
        n = np.uint64(lengths[k])
        for t in range(_FILL):  # unconditional short fill
            out[pos + np.uint64(t)] = v
        if n > np.uint64(_FILL):
            for t in range(np.uint64(_FILL), n):
                out[pos + t] = v
        pos += n
    return pos


# ---------------------------------------------------------------- public API


def encode(symbols, variant: str = "nk"):
    """Run-length code a 1-D integer array.

    Parameters
    ----------
    symbols : array_like
        1-D array of any integer dtype up to 64 bits.
    variant : {"nk", "plain"}
        ``"nk"`` (the paper): ``key = run_length**2``; ``"plain"``: ``key = run_length``.

    Returns
    -------
    values : ndarray
        The value of each run, same dtype as ``symbols``.
    keys : ndarray of uint64
        One key per run.

    Examples
    --------
    >>> encode(np.array([3, 3, 1], dtype=np.uint8))[1].tolist()
    [4, 1]
    """
    squared = _check_variant(variant)
    a = _check_symbols(symbols)
    if a.size == 0:
        return np.empty(0, a.dtype), np.empty(0, np.uint64)
    if a.size > int(_MAX_RUN) and squared:
        # a single run that long would not have a square key in uint64
        raise ValueError(f"NK-RLE supports at most {int(_MAX_RUN)} symbols, got {a.size}")
    u = _unsigned_view(a)
    m = _count_runs(u)
    values = np.empty(m, u.dtype)
    keys = np.empty(m, np.uint64)
    _encode_kernel(u, values, keys, squared)
    return values.view(a.dtype), keys


def _lengths_error(code: int, cap: int) -> CorruptStreamError:
    return CorruptStreamError(
        {
            _E_ZERO_KEY: "NK-RLE key of zero",
            _E_NOT_SQUARE: "NK-RLE key is not a perfect square",
            _E_OVER_CAP: f"NK-RLE runs add up to more than the cap of {cap} symbols",
        }[code]
    )


def _check_pairs(values, keys):
    values = np.asarray(values)
    keys = np.asarray(keys)
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise ValueError(f"values must be a 1-D integer array, got {values.dtype} {values.shape}")
    if keys.ndim != 1 or keys.dtype.kind not in "iu":
        raise ValueError(f"keys must be a 1-D integer array, got {keys.dtype} {keys.shape}")
    if keys.size != values.size:
        raise CorruptStreamError(f"{values.size} values but {keys.size} keys")
    if keys.dtype.kind == "i" and keys.size and keys.min() < 0:
        raise CorruptStreamError("negative NK-RLE key")
    return np.ascontiguousarray(values), np.ascontiguousarray(keys, dtype=np.uint64)


def decode(values, keys, variant: str = "nk", cap: int | None = None) -> np.ndarray:
    """Invert :func:`encode`.

    Parameters
    ----------
    values, keys : ndarray
        As returned by :func:`encode`.
    variant : {"nk", "plain"}
    cap : int, optional
        Largest number of symbols the caller accepts.  Defaults to 2**31.

    Raises
    ------
    CorruptStreamError
        A key is zero or not a perfect square, or the runs exceed ``cap``.
    """
    squared = _check_variant(variant)
    values, keys = _check_pairs(values, keys)
    cap = (1 << 31) if cap is None else int(cap)
    lengths = np.empty(keys.size, np.int64)
    total = _run_lengths(keys, squared, cap, lengths)
    if total < 0:
        raise _lengths_error(int(total), cap)
    u = _unsigned_view(values)
    out = np.empty(int(total) + _FILL, u.dtype)
    _decode_kernel(u, lengths, out)
    return out[: int(total)].view(values.dtype)


def encode_reference(symbols, variant: str = "nk"):
    """NumPy reference of :func:`encode` (same output)."""
    squared = _check_variant(variant)
    a = _check_symbols(symbols)
    if a.size == 0:
        return np.empty(0, a.dtype), np.empty(0, np.uint64)
    bounds = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [a.size]))
    lengths = (ends - starts).astype(np.uint64)
    return a[starts], lengths * lengths if squared else lengths


def decode_reference(values, keys, variant: str = "nk", cap: int | None = None) -> np.ndarray:
    """NumPy reference of :func:`decode` (same output and errors)."""
    squared = _check_variant(variant)
    values, keys = _check_pairs(values, keys)
    cap = (1 << 31) if cap is None else int(cap)
    if np.any(keys == 0):
        raise _lengths_error(_E_ZERO_KEY, cap)
    if squared:
        r = np.sqrt(keys.astype(np.float64)).astype(np.uint64)
        r = np.minimum(r, _MAX_RUN)
        r -= (r * r > keys).astype(np.uint64)
        up = (r < _MAX_RUN) & ((r + 1) * (r + 1) <= keys)
        r += up.astype(np.uint64)
        if np.any(r * r != keys):
            raise _lengths_error(_E_NOT_SQUARE, cap)
    else:
        r = keys
    if np.any(r > np.uint64(cap)) or int(r.sum(dtype=np.uint64)) > cap:
        raise _lengths_error(_E_OVER_CAP, cap)
    return np.repeat(values, r.astype(np.int64))


def encode_image(img, variant: str = "nk"):
    """The paper's image pseudo-code: flatten (C order), then :func:`encode`."""
    a = np.asarray(img)
    return encode(a.reshape(-1), variant)


def decode_image(values, keys, shape, variant: str = "nk") -> np.ndarray:
    """Decode pairs into an array of ``shape``; the runs must cover it exactly."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64))
    flat = decode(values, keys, variant, cap=n)
    if flat.size != n:
        raise CorruptStreamError(f"NK-RLE runs cover {flat.size} symbols, the shape {shape} needs {n}")
    return flat.reshape(shape)


# ---------------------------------------------------------------- varint packing


@numba.njit(cache=True, nogil=True)
def _pack_kernel(vals, keys):
    m = vals.size
    size = varint.size(np.uint64(m))
    for k in range(m):
        size += varint.size(vals[k]) + varint.size(keys[k])
    buf = np.empty(size, np.uint8)
    pos = varint.put(buf, 0, np.uint64(m))
    for k in range(m):
        pos = varint.put(buf, pos, vals[k])
        pos = varint.put(buf, pos, keys[k])
    return buf


@numba.njit(cache=True, nogil=True)
def _unpack_kernel(buf, pos, vals, keys):
    n = buf.size
    for k in range(vals.size):
        # fast path: both varints are single bytes
        if pos + 1 < n and buf[pos] < 0x80 and buf[pos + 1] < 0x80:
            vals[k] = buf[pos]
            keys[k] = buf[pos + 1]
            pos += 2
            continue
        pos = varint.get(buf, pos, vals, k)
        if pos < 0:
            return pos
        pos = varint.get(buf, pos, keys, k)
        if pos < 0:
            return pos
    return pos


def pack(values, keys) -> bytes:
    """Serialise NK-RLE pairs as LEB128 varints: ``count, (value, key) * count``.

    Signed values are zigzag-coded.  The dtype is not stored; pass it to
    :func:`unpack`.

    Examples
    --------
    >>> v, k = encode(np.array([-1, -1, 2], dtype=np.int8))
    >>> unpack(pack(v, k), np.int8)[1].tolist()
    [4, 1]
    """
    values, keys = _check_pairs(values, keys)
    return _pack_kernel(np.ascontiguousarray(varint.zigzag(values)), keys).tobytes()


def unpack(data, dtype, max_pairs: int | None = None):
    """Parse :func:`pack` output back into ``(values, keys)``.

    Parameters
    ----------
    data : bytes-like
        Exactly one packed stream (trailing bytes are an error).
    dtype : integer dtype of the values.
    max_pairs : int, optional
        Reject streams that announce more pairs than this before allocating.

    Raises
    ------
    CorruptStreamError
        Truncated data, an over-long varint, a value outside ``dtype``,
        too many pairs or trailing bytes.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"unpack needs an integer dtype, got {dtype}")
    buf = np.frombuffer(data, np.uint8)
    head = np.empty(1, np.uint64)
    pos = varint.get(buf, 0, head, 0)
    if pos < 0:
        raise CorruptStreamError("packed NK-RLE pair count is truncated or invalid")
    m = int(head[0])
    if max_pairs is not None and m > max_pairs:
        raise CorruptStreamError(f"packed NK-RLE stream announces {m} pairs, more than the cap {max_pairs}")
    if 2 * m > buf.size - pos:
        raise CorruptStreamError(f"packed NK-RLE stream announces {m} pairs but holds {buf.size - pos} bytes")
    zz = np.empty(m, np.uint64)
    keys = np.empty(m, np.uint64)
    end = _unpack_kernel(buf, pos, zz, keys)
    if end == _E_TRUNCATED:
        raise CorruptStreamError("packed NK-RLE stream is truncated")
    if end < 0:
        raise CorruptStreamError("packed NK-RLE stream has an over-long varint")
    if end != buf.size:
        raise CorruptStreamError(f"packed NK-RLE stream has {buf.size - end} trailing bytes")
    if dtype.kind == "u":
        if m and zz.max() > np.iinfo(dtype).max:
            raise CorruptStreamError(f"packed value out of range for {dtype}")
        return zz.astype(dtype), keys
    v = varint.unzigzag(zz)
    info = np.iinfo(dtype)
    if m and (v.min() < info.min or v.max() > info.max):
        raise CorruptStreamError(f"packed value out of range for {dtype}")
    return v.astype(dtype), keys
