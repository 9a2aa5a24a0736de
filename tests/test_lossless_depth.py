"""Near-lossless versions 4 and 5 (nkcodec.coding.nearlossless_v4, the tiles both share): samples of 1 to 16 bits and
up to 16 channels, the bound exact on every sample, the encoder's per-tile choices
read back and checked by the decoder, stored tiles, forged streams, and its fixtures."""

import dataclasses

import numpy as np
import pytest

import nkcodec
from nkcodec.coding import nearlossless_v2, nearlossless_v4, nearlossless_v5
from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import pack_container, unpack_container

from .common import FIXTURES as FIXTURE_DIR
from .common import check_backwards_compatibility, check_corruption, check_deep_corruption


def deep(shape, bits=12, seed=0, correlated=True):
    """A smooth image of ``bits``-bit samples with noise; its channels share a signal (or not)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    c = 1 if len(shape) == 2 else shape[2]
    y, x = np.mgrid[0:h, 0:w]
    top = (1 << bits) - 1
    planes = []
    texture = rng.normal(0, top / 200 + 1, (h, w))  # what correlated channels share besides the signal
    for k in range(c):
        if correlated:
            signal = (np.sin(x / 7) + np.cos(y / 5)) * top / 5 + top / 2
        else:  # unrelated smooth fields
            signal = np.sin(x * (k + 1) / 9 + y * (k % 3) / 6) * top / 3 + top / 2
        own = rng.normal(0, top / 200 + 1, (h, w))
        planes.append(signal * (1 + 0.05 * k) + (texture + own / 8 if correlated else own))
    img = np.clip(np.stack(planes, -1), 0, top).astype(np.uint16 if bits > 8 else np.uint8)
    return img[..., 0] if len(shape) == 2 else img


def _max_err(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("bits", [1, 5, 8, 10, 12, 16])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5, 2), (33, 40, 3), (20, 30, 6), (9, 300, 16)])
@pytest.mark.parametrize("max_error", [0, 1, 9])
def test_every_sample_within_the_bound_at_any_depth(bits, shape, max_error):
    img = deep(shape, bits)
    for x in (img, np.full_like(img, (1 << bits) - 1), np.random.default_rng(1).integers(0, 1 << bits, shape).astype(img.dtype)):
        data = nkcodec.compress(x, preset="near-lossless", max_error=max_error, bits=bits)
        out = nkcodec.decompress(data)
        assert out.dtype == x.dtype and out.shape == x.shape
        alpha = x.ndim == 3 and x.shape[2] in (2, 4)
        if alpha:  # alpha is always lossless
            np.testing.assert_array_equal(out[..., -1], x[..., -1])
        assert _max_err(out, x) <= max_error
        assert int(out.max()) < 1 << bits
        if max_error == 0:
            np.testing.assert_array_equal(out, x)


def test_every_depth_is_version_5_and_names_its_bits():
    rgb = deep((24, 20, 3), 8)
    assert unpack_container(nkcodec.compress(rgb, preset="near-lossless", max_error=0))[0].params == {"residual": {"v": 5, "max_error": 0, "bits": 8}}
    wide = rgb.astype(np.uint16)
    header = unpack_container(nkcodec.compress(wide, preset="near-lossless", max_error=0))[0]
    assert header.params == {"residual": {"v": 5, "max_error": 0, "bits": 16}}  # bits > 8: uint16
    data = nkcodec.compress(wide, preset="near-lossless", max_error=0, bits=8)
    assert unpack_container(data)[0].params["residual"]["wide"] is True
    out = nkcodec.decompress(data)
    assert out.dtype == np.uint16  # the array's dtype comes back, whatever bits it declared
    np.testing.assert_array_equal(out, wide)
    many = deep((10, 12, 7), 8)
    assert unpack_container(nkcodec.compress(many, preset="near-lossless", max_error=0))[0].params["residual"]["v"] == 5
    # a max_error above version 2's 32
    out = nkcodec.decompress(nkcodec.compress(rgb, preset="near-lossless", max_error=40))
    assert out.dtype == np.uint8 and _max_err(out, rgb) <= 40


def test_a_deeper_bound_costs_fewer_bytes():
    img = deep((64, 64), 16)
    sizes = [len(nkcodec.compress(img, preset="near-lossless", max_error=e)) for e in (0, 4, 64, 1000)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0] / 3


def test_correlated_channels_are_coded_against_each_other():
    """The encoder gives a channel a reference where the difference is smoother, and
    that costs fewer bytes than coding every channel alone."""
    img = deep((64, 80, 5), 12, correlated=True)
    lay = nearlossless_v4.tile_layout(img)
    assert (lay[1:, 1] >= 0).all()  # every channel after the first has a reference
    indep = deep((64, 80, 5), 12, correlated=False)
    assert (nearlossless_v4.tile_layout(indep)[1:, 1] == -1).any()
    together = len(nkcodec.compress(img, preset="near-lossless", max_error=0))
    alone = sum(len(nkcodec.compress(np.ascontiguousarray(img[..., k]), preset="near-lossless", max_error=0)) for k in range(5))
    assert together < 0.9 * alone


def test_a_flat_colour_tile_codes_its_channels_from_the_first():
    """A tile of one colour is as flat in its differences as in its channels: the encoder
    still codes R and B from G (B guided by R), which halves its bytes against every
    channel alone (the tie once left every channel alone)."""
    flat = np.full((40, 50, 3), 77, np.uint8)
    assert nearlossless_v4.tile_layout(flat).tolist() == [[1, -1, -1], [0, 1, -1], [2, 1, 0]]
    with_refs = len(nearlossless_v4._search(flat, 8, np.ones(3, np.int64), nearlossless_v5.CODER, 0))
    alone = len(nearlossless_v4._code(flat, np.array([[1, -1, -1], [0, -1, -1], [2, -1, -1]]), 8, 0, 0, np.ones(3, np.int64), nearlossless_v5.CODER, 1))
    assert with_refs < alone
    assert np.array_equal(nkcodec.decompress(nkcodec.compress(flat, preset="near-lossless", max_error=0)), flat)


def test_values_above_the_declared_depth_are_refused():
    img = np.full((4, 4), 4096, np.uint16)
    with pytest.raises(ValueError, match="above the largest 12-bit"):
        nkcodec.compress(img, preset="near-lossless", bits=12)
    with pytest.raises(ValueError, match="bits"):
        nkcodec.compress(img, preset="near-lossless", bits=17)
    with pytest.raises(ValueError, match="bits"):
        nkcodec.compress(img.astype(np.uint8), preset="near-lossless", bits=9)


@pytest.mark.parametrize("preset", ["default", "palette", "scalar"])
def test_other_presets_refuse_deep_or_many_channel_images_clearly(preset):
    with pytest.raises(ValueError, match="uint16.*near-lossless and rle"):
        nkcodec.compress(np.zeros((8, 8), np.uint16), preset=preset)
    with pytest.raises(ValueError, match=r"C in \(1, 2, 3, 4\)"):
        nkcodec.compress(np.zeros((8, 8, 5), np.uint8), preset=preset)
    with pytest.raises(ValueError, match="1..16"):
        nkcodec.compress(np.zeros((8, 8, 17), np.uint8), preset="near-lossless")


@pytest.mark.parametrize("shape", [(20, 30), (9, 7, 3), (5, 6, 16)])
def test_rle_codes_uint16_and_many_channels_exactly(shape):
    img = deep(shape, 16)
    data = nkcodec.compress(img, preset="rle")
    assert unpack_container(data)[0].params["rle"] == {"variant": "nk", "dtype": "uint16"}
    out = nkcodec.decompress(data)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, img)
    small = nkcodec.compress(img.astype(np.uint8), preset="rle")
    assert unpack_container(small)[0].params["rle"] == {"variant": "nk"}  # uint8 streams as before


def test_same_bytes_on_repeat_and_for_any_thread_count():
    img = deep((600, 70, 3), 14)
    one = nearlossless_v4.encode(img, 1, threads=1)
    assert one == nearlossless_v4.encode(img, 1, threads=2) == nearlossless_v4.encode(img, 1)
    np.testing.assert_array_equal(nearlossless_v4.decode(one, img.shape, 1, 16, threads=1), nearlossless_v4.decode(one, img.shape, 1, 16, threads=2))


@pytest.mark.parametrize("shape", [(300, 300), (260, 2100, 3), (40, 40, 9)])
def test_noise_is_stored_so_it_costs_raw_plus_a_few_bytes(shape):
    img = np.random.default_rng(7).integers(0, 1 << 16, shape).astype(np.uint16)
    data = nkcodec.compress(img, preset="near-lossless", max_error=0)
    np.testing.assert_array_equal(nkcodec.decompress(data), img)
    assert len(data) <= img.nbytes + 200


def test_the_prior_starts_each_plane_from_version_2s_plane_of_its_role():
    """At 8 bits the prior is version 2's exactly, plane by plane (shift 0)."""
    p2, w2 = nearlossless_v2.prior()
    lay = nearlossless_v2._layout(3)
    probs, wts = nearlossless_v4._state(lay, 3, 8, 0)
    np.testing.assert_array_equal(probs, p2[:, : probs.shape[1]])
    np.testing.assert_array_equal(wts, w2[: wts.shape[0]])


def test_corrupt_and_forged_streams_raise():
    img = deep((40, 30, 5), 12)
    data = nkcodec.compress(img, preset="near-lossless", max_error=0, bits=12)
    check_corruption(nkcodec.decompress, data, flips=60)
    check_deep_corruption(nkcodec.decompress, data, flips=150)
    header, sections = unpack_container(data)
    part = sections[0]
    head = nearlossless_v4._HEAD
    for bad, msg in (
        (part[:-1], "ends at byte"),
        (part + b"\0", "ends at byte"),
        (b"\0" * 10, "fewer than"),
        (bytes([2]) + part[1:], "mode 2"),  # version 5 has modes 0 and 1
        (part[:1] + bytes([17]) + part[2:], "shifts"),
        (part[:head] + bytes([0, 0, 0]) * 5 + part[head + 15 :], "permutation"),
        (part[:head] + bytes([0, 2, 0]) + part[head + 3 :], "not coded before"),
        (part[:head] + part[head : head + 3] + bytes([part[head + 3], part[head] + 1, part[head] + 1]) + part[head + 6 :], "bad guide"),
    ):
        with pytest.raises(CorruptStreamError, match=msg):
            nkcodec.decompress(pack_container(header, [bad]))
    res = header.params["residual"]
    for change, msg in (({"bits": 17}, "residual.bits"), ({"bits": 9, "wide": False}, "9-bit samples"), ({"wide": 1}, "residual.wide")):
        forged = dataclasses.replace(header, params={**header.params, "residual": {**res, **change}})
        with pytest.raises(CorruptStreamError, match=msg):
            nkcodec.decompress(pack_container(forged, sections))
    for preset, v in (("near-lossless", 2), ("context", None)):  # 5 channels are version 4's only
        params = {"residual": {"v": v, "max_error": 0}, "image": {"gray": False, "alpha": False}} if v else header.params
        with pytest.raises(CorruptStreamError, match="at most 4 channels"):
            nkcodec.decompress(pack_container(dataclasses.replace(header, preset=preset, params=params), sections))


def test_a_stored_tile_with_samples_above_the_depth_is_corrupt():
    img = np.random.default_rng(3).integers(0, 1 << 16, (30, 30)).astype(np.uint16)
    header, sections = unpack_container(nkcodec.compress(img, preset="near-lossless", max_error=0))
    assert len(sections[0]) == img.nbytes  # noise: stored
    forged = dataclasses.replace(header, params={**header.params, "residual": {**header.params["residual"], "bits": 10}})
    with pytest.raises(CorruptStreamError, match="above 10 bits"):
        nkcodec.decompress(pack_container(forged, sections))


FIXTURES = {
    "near-lossless-v4-16bit_v1": lambda: (deep((48, 40), 16, seed=5), 0, None),
    "near-lossless-v4-12bit-e3_v1": lambda: (deep((40, 33, 3), 12, seed=6), 3, 12),
    "near-lossless-v4-9ch_v1": lambda: (deep((30, 36, 9), 8, seed=7), 1, None),
    "near-lossless-v4-1bit_v1": lambda: (deep((35, 20, 2), 1, seed=8), 0, 1),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_near_lossless_v4(name):
    img, max_error, bits = FIXTURES[name]()
    check_backwards_compatibility(name, nkcodec.decompress, lambda: nkcodec.compress(img, preset="near-lossless", max_error=max_error, bits=bits), None)
    out = nkcodec.decompress((FIXTURE_DIR / f"{name}.nkc").read_bytes())
    assert out.dtype == img.dtype and out.shape == img.shape and _max_err(out, img) <= max_error
