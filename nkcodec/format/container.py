"""The ``.nkc`` container.

Version 2 (written since issue 27; little-endian, ``uint`` = unsigned LEB128,
:mod:`nkcodec.format.compact`)::

    size  field
    3     magic b"NKC"
    1     format version (2)
    uint  height           1..MAX_SIDE
    uint  width            1..MAX_SIDE
    1     channels         1..16 (more than 4: near-lossless only)
    1     flags            bit 0: image had no channel axis (HxW)
    1     preset id        (see PRESET_IDS)
    1     quality
    uint  model id         0..65535 (0: no model)
    uint  params length    <= MAX_PARAMS
    .     params           each stage's parameters, compact (compact.pack_params)
    uint  section count    <= MAX_SECTIONS
    .     sections         uint length, then bytes, repeated
    4     CRC32 of every byte before it

Version 1 (written until issue 27, read forever) has the same fields at fixed
places, the parameters as a UTF-8 JSON object::

    offset size  field
    0      3     magic b"NKC"
    3      1     format version (1)
    4      4     height           u32
    8      4     width            u32
    12     1     channels         u8
    13     1     flags            u8
    14     1     preset id        u8
    15     1     quality          u8
    16     2     model id         u16
    18     4     params length    u32, <= MAX_PARAMS
    22     .     params           UTF-8 JSON object
    .      2     section count    u16, <= MAX_SECTIONS
    .      4+n   sections         u32 length, then bytes, repeated
    end-4  4     CRC32 of every byte before it

Version 2 saves about 40 bytes a stream (a one-tile near-lossless image: 76 bytes
of container in version 1, 33 in version 2), which small images and Zarr chunks
feel.  Every length and the dimensions are checked against caps and against the
bytes actually present before anything is allocated; any malformed input
raises :class:`~nkcodec.errors.CorruptStreamError`.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

from ..errors import CorruptStreamError
from .compact import get_uint, pack_params, put_uint, unpack_params
from .limits import MAX_PIXELS, MAX_SIDE, MAX_STREAM_CHANNELS

__all__ = [
    "MAGIC",
    "VERSION",
    "VERSIONS",
    "MAX_SIDE",
    "MAX_PIXELS",
    "PRESET_IDS",
    "Header",
    "pack_container",
    "unpack_container",
    "FIXED_HEADER",
    "split_raw",
    "join_raw",
]

MAGIC = b"NKC"
VERSION = 2  # the version written
VERSIONS = (1, 2)  # the versions read
MAX_PARAMS = 1 << 16
MAX_SECTIONS = 1024

# Preset ids are part of the format: never renumber, only append.  Each names one
# preset class of nkcodec.codec (checked when that module loads).  Id 4 is reserved:
# it was assigned to "default", which has always been an alias resolved before
# writing, so no stream carries it.
PRESET_IDS = {"rle": 1, "palette": 2, "paper": 3, "scalar": 5, "cluster": 6, "scalar-rle": 7, "context": 8, "near-lossless": 9}
RESERVED_PRESET_IDS = {4: "default"}
_PRESET_NAMES = {v: k for k, v in PRESET_IDS.items()}

FIXED_HEADER = _FIXED = struct.Struct("<3sBIIBBBBHI")  # version 1's magic .. params length: the fields of split_raw
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


@dataclass
class Header:
    """What a container says about the image and how it was coded."""

    height: int
    width: int
    channels: int
    preset: str
    quality: int = 0
    model_id: int = 0
    squeeze: bool = False  # True when the image was HxW (no channel axis)
    params: dict = field(default_factory=dict)
    version: int = VERSION

    @property
    def shape(self) -> tuple:
        if self.squeeze:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def num_pixels(self) -> int:
        return self.height * self.width


def check_dims(height: int, width: int, channels: int) -> None:
    """Raise ValueError-derived CorruptStreamError if dimensions break the caps."""
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise CorruptStreamError(f"image size {height}x{width} outside 1..{MAX_SIDE}")
    if height * width > MAX_PIXELS:
        raise CorruptStreamError(f"image of {height * width} pixels exceeds the cap of {MAX_PIXELS}")
    if not 1 <= channels <= MAX_STREAM_CHANNELS:
        raise CorruptStreamError(f"{channels} channels, expected 1..{MAX_STREAM_CHANNELS}")


def pack_container(header: Header, sections: list, version: int = VERSION) -> bytes:
    """Serialise a header and a list of byte sections into ``.nkc`` bytes of format
    ``version`` (the current one unless a test or a tool asks for an older one)."""
    check_dims(header.height, header.width, header.channels)
    if header.preset not in PRESET_IDS:
        raise ValueError(f"unknown preset {header.preset!r}; choose one of {sorted(PRESET_IDS)}")
    if version not in VERSIONS:
        raise ValueError(f"format version {version} is not one of {VERSIONS}")
    params = params_bytes(header.params, version)
    if len(params) > MAX_PARAMS:
        raise ValueError(f"stage parameters take {len(params)} bytes, more than {MAX_PARAMS}")
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections, more than {MAX_SECTIONS}")
    for sec in sections:
        if len(sec) >= 1 << 32:
            raise ValueError("a section is larger than 4 GiB")
    fields = (MAGIC, version, header.height, header.width, header.channels, 1 if header.squeeze else 0,
              PRESET_IDS[header.preset], header.quality, header.model_id, len(params))  # fmt: skip
    body = join_raw(fields, params, sections)
    return body + _U32.pack(zlib.crc32(body))


def params_bytes(params, version: int) -> bytes:
    """The parameters object as format ``version`` stores it: JSON (1) or compact (2)."""
    if version == 1:
        return json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return pack_params(params)


def params_object(data: bytes, version: int) -> dict:
    """Inverse of :func:`params_bytes`; CorruptStreamError if malformed."""
    if version != 1:
        return unpack_params(data)
    try:
        params = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise CorruptStreamError(f"parameter block is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(params, dict):
        raise CorruptStreamError("parameter block is not a JSON object")
    return params


def join_raw(fields, params: bytes, sections: list) -> bytes:
    """The container's bytes before the CRC, from its ``fields`` (magic, version,
    height, width, channels, flags, preset id, quality, model id, params length: as
    :data:`FIXED_HEADER` packs them in version 1, the integers as LEB128 in version 2),
    the params bytes and the sections, unchecked: :func:`pack_container` checks first;
    the fuzzer builds malformed streams with it."""
    if fields[1] == 1:
        parts = [FIXED_HEADER.pack(*fields), params, _U16.pack(len(sections) & 0xFFFF)]
        for sec in sections:
            sec = bytes(sec)
            parts += [_U32.pack(len(sec)), sec]
        return b"".join(parts)
    magic, version, h, w, c, flags, preset_id, quality, model_id, plen = fields
    out = bytearray(magic + bytes([version & 0xFF]))
    put_uint(out, h)
    put_uint(out, w)
    out += bytes([c & 0xFF, flags & 0xFF, preset_id & 0xFF, quality & 0xFF])
    put_uint(out, model_id)
    put_uint(out, plen)
    out += params
    put_uint(out, len(sections))
    for sec in sections:
        put_uint(out, len(sec))
        out += sec
    return bytes(out)


_LEAST_V2 = 4 + 2 + 4 + 3 + 4  # magic and version, height and width, 4 bytes, model id, params and section counts, CRC


def _fields(data, end: int, version: int) -> tuple:
    """The header's fields (as :func:`join_raw` takes them) and where the params start;
    CorruptStreamError where they run past ``end``."""
    if version == 1:
        if end < _FIXED.size:
            raise CorruptStreamError("header runs past the end")
        return list(_FIXED.unpack_from(data, 0)), _FIXED.size
    pos = 4
    h, pos = get_uint(data, pos, end, "height")
    w, pos = get_uint(data, pos, end, "width")
    if end - pos < 4:
        raise CorruptStreamError("header runs past the end")
    c, flags, preset_id, quality = data[pos], data[pos + 1], data[pos + 2], data[pos + 3]
    model_id, pos = get_uint(data, pos + 4, end, "model id")
    plen, pos = get_uint(data, pos, end, "parameter block length")
    return [bytes(data[:3]), data[3], h, w, c, flags, preset_id, quality, model_id, plen], pos


def _length(data, pos: int, end: int, version: int, word: struct.Struct, what: str) -> tuple:
    """``(value, position after it)`` of a count or length: a little-endian ``word`` in
    version 1, a LEB128 in version 2; CorruptStreamError where it runs past ``end``."""
    if version != 1:
        return get_uint(data, pos, end, what)
    if pos + word.size > end:
        raise CorruptStreamError(f"{what} runs past the end")
    return word.unpack_from(data, pos)[0], pos + word.size


def split_raw(data: bytes):
    """Inverse of :func:`join_raw`, unchecked: ``(fields, params bytes, sections)``, or
    None where the bytes do not even parse (the fuzzer's view of a stream; decoding
    goes through :func:`unpack_container`).  Lengths are not checked against the data:
    a section that claims more than is there gets what is there."""
    try:
        end = len(data)
        version = data[3]
        fields, pos = _fields(data, end, version)
        params = bytes(data[pos : pos + fields[-1]])
        count, pos = _length(data, pos + fields[-1], end, version, _U16, "section count")
        sections = []
        for _ in range(min(count, end)):
            n, pos = _length(data, pos, end, version, _U32, "section length")
            sections.append(bytes(data[pos : pos + n]))
            pos += n
        return fields, params, sections
    except (IndexError, CorruptStreamError):
        return None


def unpack_container(data) -> tuple:
    """Parse and verify ``.nkc`` bytes; return ``(Header, [section bytes])``.

    Raises
    ------
    CorruptStreamError
        Bad magic, unknown version, failed CRC, a length past the end of the
        data, dimensions over the caps, or malformed parameters.
    """
    try:
        data = memoryview(data).cast("B")
    except TypeError as e:
        raise ValueError(f"expected bytes-like input, got {type(data).__name__}") from e
    n = len(data)
    if n < 3 or bytes(data[:3]) != MAGIC:
        raise CorruptStreamError("not an .nkc stream (bad magic)")
    if n >= 4 and data[3] not in VERSIONS:
        raise CorruptStreamError(f"unsupported format version {data[3]} (this build reads {', '.join(map(str, VERSIONS))})")
    if n < (_FIXED.size + _U16.size + _U32.size if n >= 4 and data[3] == 1 else _LEAST_V2):
        raise CorruptStreamError(f"stream of {n} bytes is shorter than the smallest header")
    (crc,) = _U32.unpack_from(data, n - 4)
    if zlib.crc32(data[: n - 4]) != crc:
        raise CorruptStreamError("CRC32 mismatch: the stream is damaged")
    end = n - 4
    version = data[3]
    (_, _, h, w, c, flags, preset_id, quality, model_id, plen), pos = _fields(data, end, version)
    check_dims(h, w, c)
    if flags & ~1:
        raise CorruptStreamError(f"unknown header flags {flags:#x}")
    if flags & 1 and c != 1:
        raise CorruptStreamError("2-D image flag set with more than one channel")
    if preset_id not in _PRESET_NAMES:
        raise CorruptStreamError(f"unknown preset id {preset_id}")
    if model_id >> 16:
        raise CorruptStreamError(f"model id {model_id} above 65535")
    if plen > MAX_PARAMS or plen > end - pos:
        raise CorruptStreamError(f"parameter block of {plen} bytes runs past the end")
    params = params_object(data[pos : pos + plen], version)
    pos += plen
    count, pos = _length(data, pos, end, version, _U16, "section count")
    if count > MAX_SECTIONS:
        raise CorruptStreamError(f"{count} sections, more than {MAX_SECTIONS}")
    sections = []
    for i in range(count):
        slen, pos = _length(data, pos, end, version, _U32, f"section {i} length")
        if slen > end - pos:
            raise CorruptStreamError(f"section {i} claims {slen} bytes, only {end - pos} remain")
        sections.append(bytes(data[pos : pos + slen]))
        pos += slen
    if pos != end:
        raise CorruptStreamError(f"{end - pos} unexpected bytes before the checksum")
    header = Header(
        height=h,
        width=w,
        channels=c,
        preset=_PRESET_NAMES[preset_id],
        quality=quality,
        model_id=model_id,
        squeeze=bool(flags & 1),
        params=params,
        version=version,
    )
    return header, sections
