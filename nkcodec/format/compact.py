"""The compact binary forms of the container's version 2: unsigned integers and the
parameters object.

Version 1 spent fixed 4-byte fields and a JSON object on every stream (76 bytes for a
one-tile near-lossless image, 44 of them JSON; 33 in version 2); small images and Zarr
chunks felt it.
Version 2 writes:

* **integers** as unsigned LEB128 (7 bits a byte, low bits first, the high bit set on
  every byte but the last; at most 10 bytes, 64 bits);
* **the parameters** (what JSON carried: objects, lists, integers, booleans, null,
  strings and floats) as tagged values: a tag byte, then

  ======  =====================================================================
  tag     value
  ======  =====================================================================
  0       an integer >= 0: its LEB128
  1       an integer < 0: the LEB128 of ``-1 - x``
  2, 3    false, true
  4       null
  5       a string: its UTF-8 length (LEB128), then the bytes
  6       a list: its length, then the values
  7       an object: its length, then (key, value) pairs in sorted key order;
          a key is an integer ``k``: even, the known key ``KEYS[k // 2]``;
          odd, a string of ``k // 2`` UTF-8 bytes that follows
  8       a float: 8 bytes, IEEE 754 binary64, little-endian
  ======  =====================================================================

:data:`KEYS` is part of the format: append only, never reorder.  This module is
plain Python (no Numba: reading a header loads nothing heavy); the array varints
of the entropy coders are :mod:`nkcodec.coding.varint`.

Examples
--------
>>> data = pack_params({"residual": {"v": 4, "max_error": 0, "bits": 16}})
>>> len(data), unpack_params(data)
(14, {'residual': {'bits': 16, 'max_error': 0, 'v': 4}})
"""

from __future__ import annotations

import math
import struct

from ..errors import CorruptStreamError

__all__ = ["KEYS", "put_uint", "get_uint", "pack_params", "unpack_params"]

# The keys every stream's parameters have used, by id // 2 (format: append only).
KEYS = (
    "residual", "v", "max_error", "bits", "wide", "latent", "escapes", "image", "gray", "alpha", "alpha_v", "base",
    "blocks", "cluster", "filter", "flat", "frac", "k", "pairs", "palette", "paper", "rgb", "rle", "size", "taps",
    "variant", "vmin", "dtype",
)  # fmt: skip
_KEY_IDS = {k: i for i, k in enumerate(KEYS)}
_DEPTH = 32  # nesting a decoder follows (the parameters nest 3 deep)
_F64 = struct.Struct("<d")


def put_uint(out: bytearray, x: int) -> None:
    """Append the LEB128 of ``0 <= x < 2**64``."""
    if not 0 <= x < 1 << 64:
        raise ValueError(f"{x} is not an unsigned 64-bit integer")
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)


def get_uint(data, pos: int, end: int, what: str = "integer") -> tuple:
    """``(value, position after it)`` of the LEB128 at ``data[pos]``, which must end
    before ``end``; CorruptStreamError if it runs past it or past 64 bits."""
    x = shift = 0
    while True:
        if pos >= end:
            raise CorruptStreamError(f"{what} runs past the end")
        b = data[pos]
        pos += 1
        x |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise CorruptStreamError(f"{what} is longer than 64 bits")
    if x >> 64:
        raise CorruptStreamError(f"{what} is longer than 64 bits")
    return x, pos


def _put_str(out: bytearray, s: str, shift: int = 0) -> None:
    b = s.encode("utf-8")
    put_uint(out, (len(b) << shift) | shift)  # shift 1: an odd key id (a literal key)
    out += b


def _put(out: bytearray, v, depth: int) -> None:
    if depth > _DEPTH:
        raise ValueError("parameters nest too deep")
    if isinstance(v, bool):
        out.append(3 if v else 2)
    elif isinstance(v, int):
        out.append(0 if v >= 0 else 1)
        put_uint(out, v if v >= 0 else -1 - v)
    elif v is None:
        out.append(4)
    elif isinstance(v, str):
        out.append(5)
        _put_str(out, v)
    elif isinstance(v, (list, tuple)):
        out.append(6)
        put_uint(out, len(v))
        for x in v:
            _put(out, x, depth + 1)
    elif isinstance(v, dict):
        out.append(7)
        put_uint(out, len(v))
        for k in sorted(v):
            if not isinstance(k, str):
                raise ValueError(f"parameter key {k!r} is not a string")
            if k in _KEY_IDS:
                put_uint(out, 2 * _KEY_IDS[k])
            else:
                _put_str(out, k, 1)
            _put(out, v[k], depth + 1)
    elif isinstance(v, float) and math.isfinite(v):
        out.append(8)
        out += _F64.pack(v)
    else:
        raise ValueError(f"a parameter of type {type(v).__name__} ({v!r}) has no compact form")


def pack_params(params: dict) -> bytes:
    """The compact form of a parameters object (module docstring)."""
    if not isinstance(params, dict):
        raise ValueError("parameters must be an object")
    out = bytearray()
    _put(out, params, 0)
    return bytes(out)


def _text(data, pos: int, n: int, end: int) -> tuple:
    if n > end - pos:
        raise CorruptStreamError("parameter string runs past the end")
    try:
        return bytes(data[pos : pos + n]).decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise CorruptStreamError("parameter string is not UTF-8") from None


def _get(data, pos: int, end: int, depth: int) -> tuple:
    if depth > _DEPTH:
        raise CorruptStreamError("parameters nest too deep")
    if pos >= end:
        raise CorruptStreamError("parameter value runs past the end")
    tag = data[pos]
    pos += 1
    if tag in (0, 1):
        x, pos = get_uint(data, pos, end, "parameter integer")
        return (x if tag == 0 else -1 - x), pos
    if tag in (2, 3, 4):
        return (False, True, None)[tag - 2], pos
    if tag == 5:
        n, pos = get_uint(data, pos, end, "parameter string length")
        return _text(data, pos, n, end)
    if tag in (6, 7):
        n, pos = get_uint(data, pos, end, "parameter count")
        if n > end - pos:  # every item takes a byte at least: no huge allocation
            raise CorruptStreamError(f"{n} parameter items in {end - pos} bytes")
        if tag == 6:
            items = []
            for _ in range(n):
                v, pos = _get(data, pos, end, depth + 1)
                items.append(v)
            return items, pos
        obj = {}
        for _ in range(n):
            k, pos = get_uint(data, pos, end, "parameter key")
            if k & 1:
                key, pos = _text(data, pos, k >> 1, end)
            elif k >> 1 < len(KEYS):
                key = KEYS[k >> 1]
            else:
                raise CorruptStreamError(f"unknown parameter key id {k >> 1}")
            if key in obj:
                raise CorruptStreamError(f"parameter key {key!r} appears twice")
            obj[key], pos = _get(data, pos, end, depth + 1)
        return obj, pos
    if tag == 8:
        if end - pos < _F64.size:
            raise CorruptStreamError("parameter float runs past the end")
        (x,) = _F64.unpack_from(data, pos)
        if not math.isfinite(x):
            raise CorruptStreamError("parameter float is not finite")
        return x, pos + _F64.size
    raise CorruptStreamError(f"unknown parameter tag {tag}")


def unpack_params(data) -> dict:
    """Inverse of :func:`pack_params`: the object, which must fill ``data`` exactly;
    CorruptStreamError for anything malformed."""
    obj, pos = _get(data, 0, len(data), 0)
    if not isinstance(obj, dict):
        raise CorruptStreamError("parameter block is not an object")
    if pos != len(data):
        raise CorruptStreamError(f"{len(data) - pos} stray bytes after the parameters")
    return obj
