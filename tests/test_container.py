import struct

import pytest

from nkcodec.container import MAX_SIDE, Header, pack_container, unpack_container
from nkcodec.errors import CorruptStreamError

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
