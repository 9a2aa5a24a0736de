"""Shared test helpers (numcodecs style)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from nkcodec.errors import CorruptStreamError, RetiredModelError

FIXTURES = Path(__file__).parent / "fixtures"
# Fixtures are forever: a missing one is written when NKCODEC_REGENERATE_FIXTURES is set,
# but an existing one only when it is named there on purpose (comma-separated names,
# e.g. NKCODEC_REGENERATE_FIXTURES=context_v1_model7): "1" rewrites nothing that exists.
REGENERATE = os.environ.get("NKCODEC_REGENERATE_FIXTURES", "")


def may_write_fixture(name: str, exists: bool) -> bool:
    """Whether fixture ``name`` may be (re)written under NKCODEC_REGENERATE_FIXTURES."""
    if not REGENERATE:
        return False
    return not exists or name in {n.strip() for n in REGENERATE.split(",")}


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()


def check_corruption(decode, data: bytes, flips: int = 200, seed: int = 0) -> None:
    """Truncate ``data`` at every offset and flip random bytes; only CorruptStreamError may escape."""
    for cut in range(len(data)):
        with pytest.raises(CorruptStreamError):
            decode(data[:cut])
    rng = np.random.default_rng(seed)
    buf = bytearray(data)
    for _ in range(flips):  # CRC32 catches every single-byte change: each must fail
        i = int(rng.integers(len(buf)))
        old = buf[i]
        buf[i] ^= int(rng.integers(1, 256))
        with pytest.raises(CorruptStreamError):
            decode(bytes(buf))
        buf[i] = old


def check_backwards_compatibility(name: str, decode, make_stream, expected_image_fn) -> None:
    """Decode a committed fixture stream and compare it with its committed checksum.

    With NKCODEC_REGENERATE_FIXTURES=1 the fixture is rewritten (on purpose only).
    """
    stream_path = FIXTURES / f"{name}.nkc"
    sum_path = FIXTURES / f"{name}.sha256"
    if may_write_fixture(name, stream_path.exists()) or not stream_path.exists():
        if not REGENERATE:
            pytest.fail(f"missing fixture {stream_path}; write it with NKCODEC_REGENERATE_FIXTURES=1")
        FIXTURES.mkdir(exist_ok=True)
        data = make_stream()
        stream_path.write_bytes(data)
        sum_path.write_text(sha256(decode(data)) + "\n")
    decoded = decode(stream_path.read_bytes())
    assert sha256(decoded) == sum_path.read_text().strip()
    if expected_image_fn is not None:
        np.testing.assert_array_equal(decoded, expected_image_fn())


def with_fixed_crc(body: bytes) -> bytes:
    import struct
    import zlib

    return body + struct.pack("<I", zlib.crc32(body))


def check_deep_corruption(decode, data: bytes, flips: int = 100, seed: int = 0) -> None:
    """Flip bytes *and* fix the CRC, so the preset decoders themselves see garbage.

    A damaged stream may still decode (to a wrong image); any exception other than
    CorruptStreamError is a bug.
    """
    rng = np.random.default_rng(seed)
    body = bytearray(data[:-4])
    for _ in range(flips):
        buf = bytearray(body)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(buf)))  # the header too: its checks must hold with a valid CRC
            buf[i] ^= int(rng.integers(1, 256))
        try:
            decode(with_fixed_crc(bytes(buf)))
        except (CorruptStreamError, RetiredModelError):  # a changed model id may name a retired model
            pass
    for cut in range(0, len(body), max(1, len(body) // 40)):
        try:
            decode(with_fixed_crc(bytes(body[:cut])))
        except CorruptStreamError:
            pass


def as_version_1(data: bytes) -> bytes:
    """A stream rewrapped in a version-1 container (what every encoder wrote before container
    version 2): lets a test pin an encoder's bytes against a fixture written back then."""
    from nkcodec.format.container import pack_container, unpack_container

    header, sections = unpack_container(data)
    return pack_container(header, sections, version=1)
