import struct

import pytest

from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import MAX_SIDE, Header, pack_container, unpack_container

from .common import check_corruption, with_fixed_crc


def _stream(**kw):
    h = Header(height=3, width=5, channels=3, preset="rle", quality=4, params={"rle": {"variant": "nk"}}, **kw)
    return pack_container(h, [b"abc", b"", b"\x00" * 10])


def test_round_trip():
    header, sections = unpack_container(_stream())
    assert (header.height, header.width, header.channels, header.preset) == (3, 5, 3, "rle")
    assert header.params == {"rle": {"variant": "nk"}}
    assert sections == [b"abc", b"", b"\x00" * 10]
    assert header.shape == (3, 5, 3)


def test_fuzz_truncation_and_flips():
    check_corruption(unpack_container, _stream(), flips=500)


def test_lengths_checked_before_allocation():
    data = _stream()
    body = bytearray(data[:-4])
    # giant dimensions with a valid CRC
    big = bytearray(body)
    struct.pack_into("<II", big, 4, MAX_SIDE + 1, 5)
    with pytest.raises(CorruptStreamError, match="outside"):
        unpack_container(with_fixed_crc(bytes(big)))
    big = bytearray(body)
    struct.pack_into("<II", big, 4, MAX_SIDE, MAX_SIDE)
    with pytest.raises(CorruptStreamError, match="cap"):
        unpack_container(with_fixed_crc(bytes(big)))
    # a section that claims 4 GiB
    plen = struct.unpack_from("<I", body, 18)[0]
    sec0 = 22 + plen + 2
    lie = bytearray(body)
    struct.pack_into("<I", lie, sec0, 0xFFFFFFFF)
    with pytest.raises(CorruptStreamError, match="claims"):
        unpack_container(with_fixed_crc(bytes(lie)))
    # bad version, bad magic
    v = bytearray(body)
    v[3] = 99
    with pytest.raises(CorruptStreamError, match="version"):
        unpack_container(with_fixed_crc(bytes(v)))
    with pytest.raises(CorruptStreamError, match="magic"):
        unpack_container(b"PNG" + data[3:])
    # parameters that are not a JSON object
    j = bytearray(body)
    j[22] = ord("[")
    with pytest.raises(CorruptStreamError, match="JSON"):
        unpack_container(with_fixed_crc(bytes(j)))


def test_not_bytes():
    with pytest.raises(ValueError):
        unpack_container(12345)


def test_bad_header_on_write():
    with pytest.raises(ValueError, match="preset"):
        pack_container(Header(1, 1, 1, "nope"), [])
    with pytest.raises(CorruptStreamError):
        pack_container(Header(0, 1, 1, "rle"), [])


def _edit(data: bytes, offset: int, fmt: str, value) -> bytes:
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, offset, value)
    return with_fixed_crc(bytes(body))


@pytest.mark.parametrize(
    "offset, fmt, value, match",
    [
        (13, "<B", 2, "flags"),  # an unknown flag bit
        (13, "<B", 0x81, "flags"),
        (13, "<B", 1, "2-D"),  # the 2-D flag with 3 channels
        (14, "<B", 0, "preset id"),
        (14, "<B", 200, "preset id"),
        (12, "<B", 0, "channels"),
        (12, "<B", 17, "channels"),  # 5..16: near-lossless only, refused by the other presets (test_lossless_depth)
    ],
)
def test_header_fields_are_checked(offset, fmt, value, match):
    with pytest.raises(CorruptStreamError, match=match):
        unpack_container(_edit(_stream(), offset, fmt, value))


def test_stray_bytes_before_the_crc():
    body = _stream()[:-4]
    with pytest.raises(CorruptStreamError, match="unexpected bytes"):
        unpack_container(with_fixed_crc(body + b"\x00"))


def test_section_and_parameter_caps():
    from nkcodec.format.container import MAX_PARAMS, MAX_SECTIONS

    h = Header(height=3, width=5, channels=3, preset="rle", params={"rle": {"variant": "nk"}})
    with pytest.raises(ValueError, match="sections"):
        pack_container(h, [b""] * (MAX_SECTIONS + 1))
    with pytest.raises(ValueError, match="parameters"):
        pack_container(Header(3, 5, 3, "rle", params={"x": "y" * MAX_PARAMS}), [])
    # the same caps on read: a section count and a params length past them, CRC fixed
    data = pack_container(h, [])
    plen = struct.unpack_from("<I", data, 18)[0]
    with pytest.raises(CorruptStreamError, match="more than"):
        unpack_container(_edit(data, 22 + plen, "<H", MAX_SECTIONS + 1))
    with pytest.raises(CorruptStreamError, match="parameter block"):
        unpack_container(_edit(data, 18, "<I", MAX_PARAMS + 1))


def test_every_single_byte_flip_is_caught():
    """CRC32 detects every error burst of up to 32 bits: any one changed byte, header included, fails."""
    data = _stream()
    for i in range(len(data)):
        for x in (1, 0x80, 0xFF):
            buf = bytearray(data)
            buf[i] ^= x
            with pytest.raises(CorruptStreamError):
                unpack_container(bytes(buf))


def test_fixture_regeneration_never_overwrites_unless_named(monkeypatch):
    from . import common

    monkeypatch.setattr(common, "REGENERATE", "")
    assert not common.may_write_fixture("rle_v1", exists=True)
    monkeypatch.setattr(common, "REGENERATE", "1")
    assert not common.may_write_fixture("rle_v1", exists=True)  # "1" writes only what is missing
    assert common.may_write_fixture("context_v1_model9", exists=False)
    monkeypatch.setattr(common, "REGENERATE", "context_v1_model9, rle_v1")
    assert common.may_write_fixture("rle_v1", exists=True) and not common.may_write_fixture("palette_v1", exists=True)
