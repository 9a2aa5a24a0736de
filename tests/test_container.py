import struct

import pytest

from nkcodec.errors import CorruptStreamError
from nkcodec.format import compact
from nkcodec.format.container import MAX_SIDE, Header, join_raw, pack_container, split_raw, unpack_container

from .common import check_corruption, with_fixed_crc


def _stream(version=2, **kw):
    h = Header(height=3, width=5, channels=3, preset="rle", quality=4, params={"rle": {"variant": "nk"}}, **kw)
    return pack_container(h, [b"abc", b"", b"\x00" * 10], version=version)


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip(version):
    data = _stream(version)
    assert data[3] == version
    header, sections = unpack_container(data)
    assert (header.height, header.width, header.channels, header.preset, header.version) == (3, 5, 3, "rle", version)
    assert header.params == {"rle": {"variant": "nk"}}
    assert sections == [b"abc", b"", b"\x00" * 10]
    assert header.shape == (3, 5, 3)


@pytest.mark.parametrize("version", [1, 2])
def test_fuzz_truncation_and_flips(version):
    check_corruption(unpack_container, _stream(version), flips=500)


def test_lengths_checked_before_allocation():
    """Version 1's fixed fields, edited in place (version 2's: test_v2_fields_are_checked)."""
    data = _stream(1)
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
        unpack_container(_edit(_stream(1), offset, fmt, value))


def _v2(fields=None, params=None, sections=None, raw_params=None) -> bytes:
    """A version-2 stream with some of its fields, params or sections replaced (CRC fixed)."""
    f, p, s = split_raw(_stream(2))
    f = list(f)
    for i, v in (fields or {}).items():
        f[i] = v
    p = compact.pack_params(params) if params is not None else p
    p = raw_params if raw_params is not None else p
    f[-1] = len(p) if -1 not in (fields or {}) else f[-1]
    return with_fixed_crc(join_raw(f, p, s if sections is None else sections))


@pytest.mark.parametrize(
    "fields, match",
    [
        ({2: MAX_SIDE + 1}, "outside"),
        ({2: MAX_SIDE, 3: MAX_SIDE}, "cap"),
        ({4: 0}, "channels"),
        ({4: 17}, "channels"),
        ({5: 2}, "flags"),
        ({5: 1}, "2-D"),
        ({6: 0}, "preset id"),
        ({8: 1 << 16}, "model id"),
        ({-1: 1 << 17}, "parameter block"),
        ({-1: 1 << 16}, "runs past the end"),
    ],
)
def test_v2_fields_are_checked(fields, match):
    with pytest.raises(CorruptStreamError, match=match):
        unpack_container(_v2(fields))


def test_v2_overlong_integers_are_refused():
    """A LEB128 of more than 64 bits, or one that runs into the checksum."""
    for body in (b"NKC\x02" + b"\x80" * 10 + b"\x02" + b"\x01" * 12, b"NKC\x02" + b"\xff" * 16):
        with pytest.raises(CorruptStreamError, match="64 bits|past the end"):
            unpack_container(with_fixed_crc(body))


def test_v2_lengths_and_counts_are_checked():
    f, p, s = split_raw(_stream(2))
    with pytest.raises(CorruptStreamError, match="claims"):  # a section longer than what is left
        body = bytearray(join_raw(f, p, [b"abc"]))
        body[-4] = 0x7F  # the length byte of the one section, 3 -> 127
        unpack_container(with_fixed_crc(bytes(body)))
    from nkcodec.format.container import MAX_SECTIONS

    with pytest.raises(CorruptStreamError, match="more than"):
        unpack_container(_v2(sections=[b""] * (MAX_SECTIONS + 1)))
    for cut in range(4, len(join_raw(f, p, s))):  # every truncation of the body, CRC fixed
        with pytest.raises(CorruptStreamError):
            unpack_container(with_fixed_crc(join_raw(f, p, s)[:cut]))


@pytest.mark.parametrize(
    "raw, match",
    [
        (bytes([6, 0]), "not an object"),  # a list
        (bytes([7, 1, 2 * 100, 0, 0]), "unknown parameter key"),
        (bytes([7, 1, 2, 9]), "unknown parameter tag"),
        (bytes([7, 2, 2, 0, 0, 2, 0, 0]), "twice"),
        (bytes([7, 1, 2, 0, 0, 0]), "stray"),
        (bytes([7, 1, 2, 5, 10, 65]), "string runs past"),
        (bytes([7, 1, 3, 0xFF, 0, 0]), "UTF-8"),
        (bytes([7, 200, 2]), "items in"),  # a count past the bytes: no huge allocation
        (bytes([7, 1, 2, 8, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F]), "not finite"),  # NaN
        (bytes([7, 1, 2] + [7, 1, 2] * 40 + [0, 0]), "deep"),
    ],
)
def test_v2_params_are_checked(raw, match):
    with pytest.raises(CorruptStreamError, match=match):
        unpack_container(_v2(raw_params=raw))


def test_compact_params_round_trip():
    obj = {"latent": {"escapes": 3, "v": 2}, "zz": [None, True, False, -1, -(1 << 40), 1 << 63, 0.5, -0.0, "é", {"x": []}], "residual": {}}
    data = compact.pack_params(obj)
    assert compact.unpack_params(data) == obj
    assert len(compact.pack_params({"residual": {"v": 4, "max_error": 0, "bits": 16}})) == 14  # 44 bytes as JSON
    for bad in ({"x": float("nan")}, {"x": 1 << 64}, {1: 2}, {"x": object()}):
        with pytest.raises(ValueError):
            compact.pack_params(bad)


def test_v2_is_smaller_and_v1_still_decodes():
    """A one-tile near-lossless image: 76 bytes of container in version 1, 33 in version 2;
    the same image comes back from both."""
    import numpy as np

    import nkcodec

    img = (np.arange(40 * 30) % 251).astype(np.uint16).reshape(40, 30) * 7
    data = nkcodec.compress(img, preset="near-lossless", max_error=0)
    header, sections = unpack_container(data)
    old = pack_container(header, sections, version=1)
    assert len(data) - sum(map(len, sections)) == 33 and len(old) - sum(map(len, sections)) == 76
    np.testing.assert_array_equal(nkcodec.decompress(old), img)
    np.testing.assert_array_equal(nkcodec.decompress(data), img)


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
    # the same caps on read (version 1's fixed fields): a section count and a params length past them, CRC fixed
    data = pack_container(h, [], version=1)
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


@pytest.mark.parametrize("name", ["container-v2-context_v1_model6", "container-v2-near-lossless-16bit_v1"])
def test_container_v2_fixtures_keep_decoding(name):
    """Version 2 containers are forever too: one of the default preset, one of a 16-bit
    near-lossless image (the format byte checked to be 2 in the committed stream)."""
    import numpy as np

    import nkcodec

    from .common import FIXTURES, check_backwards_compatibility
    from .test_learned import photo

    def make():
        if "context" in name:
            return nkcodec.compress(photo((40, 56, 3), seed=11), quality=3)
        img = (np.arange(24 * 20, dtype=np.uint32).reshape(24, 20) * 2731 % 65536).astype(np.uint16)
        return nkcodec.compress(img, preset="near-lossless", max_error=0)

    check_backwards_compatibility(name, nkcodec.decompress, make, None)
    assert (FIXTURES / f"{name}.nkc").read_bytes()[3] == 2
