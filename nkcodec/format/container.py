"""The ``.nkc`` container.

Layout (little-endian)::

    offset size  field
    0      3     magic b"NKC"
    3      1     format version (1)
    4      4     height           u32, 1..MAX_SIDE
    8      4     width            u32, 1..MAX_SIDE
    12     1     channels         u8, 1..16 (more than 4: near-lossless only)
    13     1     flags            u8, bit 0: image had no channel axis (HxW)
    14     1     preset id        u8 (see PRESET_IDS)
    15     1     quality          u8
    16     2     model id         u16 (0: no model)
    18     4     params length    u32, <= MAX_PARAMS
    22     .     params           UTF-8 JSON object: each stage's parameters
    .      2     section count    u16, <= MAX_SECTIONS
    .      4+n   sections         u32 length, then bytes, repeated
    end-4  4     CRC32 of every byte before it

Every length and the dimensions are checked against caps and against the
bytes actually present before anything is allocated; any malformed input
raises :class:`~nkcodec.errors.CorruptStreamError`.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

from ..errors import CorruptStreamError
from .limits import MAX_PIXELS, MAX_SIDE, MAX_STREAM_CHANNELS

__all__ = [
    "MAGIC",
    "VERSION",
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
VERSION = 1
MAX_PARAMS = 1 << 16
MAX_SECTIONS = 1024

# Preset ids are part of the format: never renumber, only append.  Each names one
# preset class of nkcodec.codec (checked when that module loads).  Id 4 is reserved:
# it was assigned to "default", which has always been an alias resolved before
# writing, so no stream carries it.
PRESET_IDS = {"rle": 1, "palette": 2, "paper": 3, "scalar": 5, "cluster": 6, "scalar-rle": 7, "context": 8, "near-lossless": 9}
RESERVED_PRESET_IDS = {4: "default"}
_PRESET_NAMES = {v: k for k, v in PRESET_IDS.items()}

FIXED_HEADER = _FIXED = struct.Struct("<3sBIIBBBBHI")  # magic .. params length: the fields of split_raw
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


def pack_container(header: Header, sections: list) -> bytes:
    """Serialise a header and a list of byte sections into ``.nkc`` bytes."""
    check_dims(header.height, header.width, header.channels)
    if header.preset not in PRESET_IDS:
        raise ValueError(f"unknown preset {header.preset!r}; choose one of {sorted(PRESET_IDS)}")
    params = json.dumps(header.params, sort_keys=True, separators=(",", ":")).encode()
    if len(params) > MAX_PARAMS:
        raise ValueError(f"stage parameters take {len(params)} bytes, more than {MAX_PARAMS}")
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections, more than {MAX_SECTIONS}")
    for sec in sections:
        if len(sec) >= 1 << 32:
            raise ValueError("a section is larger than 4 GiB")
    fields = (MAGIC, VERSION, header.height, header.width, header.channels, 1 if header.squeeze else 0,
              PRESET_IDS[header.preset], header.quality, header.model_id, len(params))  # fmt: skip
    body = join_raw(fields, params, sections)
    return body + _U32.pack(zlib.crc32(body))


def join_raw(fields, params: bytes, sections: list) -> bytes:
    """The container's bytes before the CRC, from its fixed ``fields`` (as
    :data:`FIXED_HEADER` packs them), the params bytes and the sections, unchecked:
    :func:`pack_container` checks first; the fuzzer builds malformed streams with it."""
    parts = [FIXED_HEADER.pack(*fields), params, _U16.pack(len(sections) & 0xFFFF)]
    for sec in sections:
        sec = bytes(sec)
        parts += [_U32.pack(len(sec)), sec]
    return b"".join(parts)


def split_raw(data: bytes):
    """Inverse of :func:`join_raw`, unchecked: ``(fields, params bytes, sections)``, or
    None where the bytes do not even parse (the fuzzer's view of a stream; decoding
    goes through :func:`unpack_container`)."""
    try:
        fields = list(FIXED_HEADER.unpack_from(data, 0))
        pos = FIXED_HEADER.size
        params = bytes(data[pos : pos + fields[-1]])
        pos += fields[-1]
        (count,) = _U16.unpack_from(data, pos)
        pos += _U16.size
        sections = []
        for _ in range(count):
            (n,) = _U32.unpack_from(data, pos)
            sections.append(bytes(data[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        return fields, params, sections
    except struct.error:
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
    if n < _FIXED.size + _U16.size + _U32.size:
        raise CorruptStreamError(f"stream of {n} bytes is shorter than the smallest header")
    magic, version, h, w, c, flags, preset_id, quality, model_id, plen = _FIXED.unpack_from(data, 0)
    if version != VERSION:
        raise CorruptStreamError(f"unsupported format version {version} (this build reads {VERSION})")
    (crc,) = _U32.unpack_from(data, n - 4)
    if zlib.crc32(data[: n - 4]) != crc:
        raise CorruptStreamError("CRC32 mismatch: the stream is damaged")
    check_dims(h, w, c)
    if flags & ~1:
        raise CorruptStreamError(f"unknown header flags {flags:#x}")
    if flags & 1 and c != 1:
        raise CorruptStreamError("2-D image flag set with more than one channel")
    if preset_id not in _PRESET_NAMES:
        raise CorruptStreamError(f"unknown preset id {preset_id}")
    end = n - 4
    pos = _FIXED.size
    if plen > MAX_PARAMS or pos + plen + _U16.size > end:
        raise CorruptStreamError(f"parameter block of {plen} bytes runs past the end")
    try:
        params = json.loads(bytes(data[pos : pos + plen]).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise CorruptStreamError(f"parameter block is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(params, dict):
        raise CorruptStreamError("parameter block is not a JSON object")
    pos += plen
    (count,) = _U16.unpack_from(data, pos)
    pos += _U16.size
    if count > MAX_SECTIONS:
        raise CorruptStreamError(f"{count} sections, more than {MAX_SECTIONS}")
    sections = []
    for i in range(count):
        if pos + _U32.size > end:
            raise CorruptStreamError(f"section {i} length runs past the end")
        (slen,) = _U32.unpack_from(data, pos)
        pos += _U32.size
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
