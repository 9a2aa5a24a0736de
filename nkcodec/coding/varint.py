"""Zigzag LEB128 varints, the one implementation: the Numba kernels that NK-RLE's
packing uses (:func:`size`, :func:`put`, :func:`get`) and the array API that the
entropy coders use for escapes and side information (:func:`pack`, :func:`unpack`,
:func:`read`).  A value takes 7 bits a byte, low bits first, the high bit set on
every byte but the last; signed values are zigzag-mapped first (0, -1, 1, -2, ... ->
0, 1, 2, 3, ...).  At most 10 bytes, and a 10th byte above 1 is malformed.

Examples
--------
>>> pack([0, -1, 1, 300]).hex()
'000102d804'
>>> unpack(bytes.fromhex('000102d804'), 4).tolist()
[0, -1, 1, 300]
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptStreamError

__all__ = ["pack", "unpack", "read", "zigzag", "unzigzag", "size", "put", "get", "E_TRUNCATED", "E_MALFORMED"]

E_TRUNCATED = -4  # get(): the buffer ends inside a varint
E_MALFORMED = -5  # get(): more than 64 bits


@numba.njit(cache=True, nogil=True)
def size(x):
    """Bytes of the varint of the uint64 ``x``."""
    s = 1
    while x >= np.uint64(0x80):
        x >>= np.uint64(7)
        s += 1
    return s


@numba.njit(cache=True, nogil=True)
def put(buf, pos, x):
    """Write the uint64 ``x`` at ``buf[pos]``; return the position after it."""
    while x >= np.uint64(0x80):
        buf[pos] = np.uint8((x & np.uint64(0x7F)) | np.uint64(0x80))
        x >>= np.uint64(7)
        pos += 1
    buf[pos] = np.uint8(x)
    return pos + 1


@numba.njit(cache=True, nogil=True)
def get(buf, pos, out, idx):
    """Read one varint at ``buf[pos]`` into ``out[idx]`` (uint64); return the new
    position, or :data:`E_TRUNCATED` / :data:`E_MALFORMED`."""
    x = np.uint64(0)
    shift = np.uint64(0)
    n = buf.size
    for _ in range(10):
        if pos >= n:
            return E_TRUNCATED
        b = np.uint64(buf[pos])
        pos += 1
        if shift == np.uint64(63) and b > np.uint64(1):
            return E_MALFORMED
        x |= (b & np.uint64(0x7F)) << shift
        if b < np.uint64(0x80):
            out[idx] = x
            return pos
        shift += np.uint64(7)
    return E_MALFORMED


@numba.njit(cache=True, nogil=True)
def _pack_kernel(zz):
    total = 0
    for k in range(zz.size):
        total += size(zz[k])
    buf = np.empty(total, np.uint8)
    pos = 0
    for k in range(zz.size):
        pos = put(buf, pos, zz[k])
    return buf


@numba.njit(cache=True, nogil=True)
def _unpack_kernel(buf, pos, out):
    for k in range(out.size):
        pos = get(buf, pos, out, k)
        if pos < 0:
            return pos
    return pos


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed int64 -> uint64 (0, -1, 1, -2 -> 0, 1, 2, 3); unsigned values pass as they are."""
    values = np.asarray(values)
    if values.dtype.kind == "u":
        return values.astype(np.uint64)
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


def unzigzag(zz: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zigzag`: uint64 -> int64."""
    return (zz >> np.uint64(1)).view(np.int64) ^ -(zz & np.uint64(1)).view(np.int64)


def pack(values) -> bytes:
    """The zigzag varints of an int array, back to back."""
    return _pack_kernel(np.ascontiguousarray(zigzag(np.asarray(values, np.int64)))).tobytes()


def unpack(data, count: int, what: str = "escape values") -> np.ndarray:
    """Exactly ``count`` zigzag varints (int64) that use all of ``data``; CorruptStreamError otherwise."""
    buf = np.frombuffer(data, np.uint8)
    if count > buf.size:  # every varint takes at least one byte: nothing is allocated for a lie
        raise CorruptStreamError("varint truncated or malformed")
    zz = np.empty(count, np.uint64)
    end = _unpack_kernel(buf, 0, zz)
    if end < 0:
        raise CorruptStreamError("varint truncated or malformed")
    if end != buf.size:
        raise CorruptStreamError(f"{buf.size - end} trailing bytes after {what}")
    return unzigzag(zz)


def read(data, pos: int = 0) -> tuple:
    """One zigzag varint at ``data[pos]``: ``(value, position after it)``."""
    out = np.empty(1, np.uint64)
    end = get(np.frombuffer(data, np.uint8), pos, out, 0)
    if end < 0:
        raise CorruptStreamError("varint truncated or malformed")
    return int(unzigzag(out)[0]), end
