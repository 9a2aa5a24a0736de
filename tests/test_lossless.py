"""The predictive bounded-error coder (nkcodec.coding.nearlossless_v2, near-lossless version 2):
exact bounds on every sample, any channels and sizes, identical bytes on repeat
and across thread counts, the compiled kernel against its Python source, corrupt
and forged streams, the pinned prior and the committed fixtures."""

import dataclasses
import hashlib

import numpy as np
import pytest

import nkcodec
from nkcodec.coding import nearlossless_v2
from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import pack_container, unpack_container

from .common import check_backwards_compatibility, check_corruption, check_deep_corruption
from .test_learned import photo


def v2_stream(img, max_error):
    """A version 2 stream (3 with a stored tile) of ``img``, as the preset wrote them
    before version 5: the format is read forever, so it is tested forever."""
    header = unpack_container(nkcodec.compress(img[:1, :1], preset="near-lossless", max_error=max_error))[0]
    parts, stored = nearlossless_v2.with_stored(img, nearlossless_v2.encode(img, max_error))
    channels = 1 if img.ndim == 2 else img.shape[2]
    params = {"residual": {"v": 3 if stored else 2, "max_error": max_error}, "image": {"gray": channels <= 2, "alpha": channels in (2, 4)}}
    return pack_container(dataclasses.replace(header, height=img.shape[0], width=img.shape[1], params=params), parts)


def _images(shape):
    noise = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    extreme = np.zeros(shape, np.uint8)
    extreme[::2] = 255  # errors at the ends of the range: clipping on both sides
    return photo(shape), noise, extreme


@pytest.mark.parametrize("max_error", [0, 1, 2, 7, 32])
@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (2, 3, 2), (9, 13, 3), (40, 24), (23, 19, 1), (30, 70, 4), (300, 9, 3), (3, 2100, 4)])
def test_every_sample_within_the_bound(shape, max_error):
    """|decoded - original| <= max_error on every sample of every image (alpha: 0),
    through the public API; (300, 9) and (3, 2100) span several tiles."""
    for img in _images(shape):
        out = nkcodec.decompress(nkcodec.compress(img, preset="near-lossless", max_error=max_error))
        assert out.shape == img.shape and out.dtype == np.uint8
        err = np.abs(out.astype(int) - img.astype(int))
        assert int(err.max()) <= max_error
        if img.ndim == 3 and img.shape[2] in (2, 4):
            assert int(err[..., -1].max()) == 0  # alpha is lossless


def test_lossless_is_exact_on_a_shipped_photo():
    from importlib.resources import files

    from PIL import Image

    path = sorted(p for p in files("nkcodec").joinpath("samples").iterdir() if p.name.endswith(".png"))[0]
    img = np.asarray(Image.open(path).convert("RGB"))[:300, :200]
    data = nkcodec.compress(img, preset="near-lossless", max_error=0)
    np.testing.assert_array_equal(nkcodec.decompress(data), img)
    assert len(data) < img.size * 0.6  # a photo: far below its raw size


def test_a_looser_bound_costs_fewer_bytes_and_no_model():
    img = photo((48, 64, 3))
    sizes = [len(nkcodec.compress(img, preset="near-lossless", max_error=d)) for d in (0, 1, 2, 4)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
    header = unpack_container(nkcodec.compress(img, preset="near-lossless", max_error=3))[0]
    assert header.model_id == 0 and header.params["residual"] == {"v": 5, "max_error": 3, "bits": 8}


def test_same_bytes_on_repeat_and_for_any_thread_count():
    img = photo((600, 40, 4))  # 4 tiles
    first = nearlossless_v2.encode(img, 1)
    assert len(first) == len(nearlossless_v2.tiles(600, 40)) == 4
    assert nearlossless_v2.encode(img, 1) == first
    assert nearlossless_v2.encode(img, 1, threads=1) == first == nearlossless_v2.encode(img, 1, threads=3)
    np.testing.assert_array_equal(nearlossless_v2.decode(first, img.shape, 1, threads=1), nearlossless_v2.decode(first, img.shape, 1, threads=2))


def test_concurrent_calls_share_the_cores(monkeypatch):
    """A pool of callers does not multiply tile threads: each call gets the cores
    divided by the calls running at once (at least 1); a given count is kept."""
    monkeypatch.setattr(nearlossless_v2, "_cores", lambda: 4)
    with nearlossless_v2._tile_threads(None) as a, nearlossless_v2._tile_threads(None) as b, nearlossless_v2._tile_threads(None) as c:
        assert (a, b, c) == (4, 2, 1)
    with nearlossless_v2._tile_threads(3) as n:
        assert n == 3
    assert nearlossless_v2._ACTIVE[0] == 0
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            nearlossless_v2.encode(np.zeros((2, 2), np.uint8), 0, threads=bad)


@pytest.mark.parametrize("shape, max_error", [((5, 7, 3), 0), ((6, 4, 4), 2), ((4, 5, 1), 1)])
def test_compiled_kernel_matches_its_python_source(shape, max_error):
    """The Numba kernel and the same code run by Python (int64 semantics of NumPy
    scalars and arrays) give the same bytes and the same decoded samples."""
    img = photo(shape)
    lay, cfg = nearlossless_v2._layout(shape[2]), nearlossless_v2._CFG8
    steps = nearlossless_v2._steps(shape[2], max_error)
    out = {}
    compiled = nearlossless_v2.kernel(3)
    for name, fn in (("numba", compiled), ("python", compiled.py_func)):
        buf = np.zeros(img.size * 8 + 1024, np.uint8)
        rec = np.zeros_like(img)
        n = fn(img, rec, lay, cfg, steps, buf, nearlossless_v2._TABLES, *nearlossless_v2._state(), True, 0)
        data = buf[:n].copy()
        dec = np.zeros_like(img)
        assert fn(dec, dec, lay, cfg, steps, data, nearlossless_v2._TABLES, *nearlossless_v2._state(), False, 0) == n
        np.testing.assert_array_equal(dec, rec)
        out[name] = data.tobytes(), rec
    assert out["numba"][0] == out["python"][0]
    np.testing.assert_array_equal(out["numba"][1], out["python"][1])


def test_tiles_cover_the_image_once_in_an_even_number_of_bands():
    for h, w in [(1, 1), (127, 5), (256, 3), (512, 768), (768, 512), (1000, 4097), (16384, 16384)]:
        grid = nearlossless_v2.tiles(h, w)
        cover = np.zeros((h, w), np.int64) if h * w < 10**7 else None
        if cover is not None:
            for rs, cs in grid:
                cover[rs, cs] += 1
            assert cover.min() == cover.max() == 1
        bands = len({rs.start for rs, _ in grid})
        assert bands == 1 or bands % 2 == 0
        assert all(rs.stop - rs.start <= nearlossless_v2.TILE_ROWS and cs.stop - cs.start <= nearlossless_v2.TILE_COLS for rs, cs in grid)


def test_corrupt_streams_raise():
    img = photo((40, 30, 3))
    data = v2_stream(img, 0)
    check_corruption(nkcodec.decompress, data, flips=100)
    check_deep_corruption(nkcodec.decompress, data, flips=100)
    header, sections = unpack_container(data)
    for bad, msg in (
        ([sections[0][:-1]], "ends at byte|fewer than"),  # one byte short
        ([sections[0] + b"\0"], "ends at byte"),  # one byte too many
        ([sections[0], sections[0]], "tiles, expected"),
        ([b"\0\0\0"], "fewer than"),
    ):
        with pytest.raises(CorruptStreamError, match=msg):
            nkcodec.decompress(pack_container(header, bad))
    flags = {**header.params, "image": {"gray": True, "alpha": False}}
    with pytest.raises(CorruptStreamError, match="image flags"):
        nkcodec.decompress(pack_container(dataclasses.replace(header, params=flags), sections))
    with pytest.raises(CorruptStreamError, match="no model"):
        nkcodec.decompress(pack_container(dataclasses.replace(header, model_id=6), sections))
    for v in (6, "2", True, [2]):  # 3 is version 2 with stored tiles, 4 and 5 any depth
        params = {**header.params, "residual": {**header.params["residual"], "v": v}}
        with pytest.raises(CorruptStreamError, match="residual.v"):
            nkcodec.decompress(pack_container(dataclasses.replace(header, params=params), sections))


@pytest.mark.parametrize("shape", [(512, 2048, 4), (300, 300), (2, 2, 3)])
def test_the_length_floor_never_rejects_the_cheapest_images(shape):
    """Flat images are the cheapest streams: every tile stays above min_bytes, and
    a forged header declaring many more pixels over them fails before decoding."""
    for v in (0, 255):
        img = np.full(shape, v, np.uint8)
        parts = nearlossless_v2.encode(img, 0)
        channels = 1 if img.ndim == 2 else img.shape[2]
        for (rs, cs), part in zip(nearlossless_v2.tiles(*img.shape[:2]), parts):
            assert len(part) >= nearlossless_v2.min_bytes((rs.stop - rs.start) * (cs.stop - cs.start) * channels)
        np.testing.assert_array_equal(nearlossless_v2.decode(parts, (*img.shape[:2], channels), 0).reshape(img.shape), img)
    for data, msg in (
        (v2_stream(np.zeros((300, 300), np.uint8), 0), "fewer than"),
        (nkcodec.compress(np.zeros((300, 300), np.uint8), preset="near-lossless", max_error=0), None),
    ):
        header, sections = unpack_container(data)
        forged = dataclasses.replace(header, height=600, width=600)  # 4x the pixels, in as many tiles
        with pytest.raises(CorruptStreamError, match=msg):  # version 5's tiles are longer: they fail as they decode
            nkcodec.decompress(pack_container(forged, sections * 2))


def test_the_prior_is_pinned():
    """Version 2 streams decode with exactly the shipped prior: a changed prior is a new version."""
    probs, wts = nearlossless_v2.prior()
    digest = hashlib.sha256(probs.astype("<i4").tobytes() + wts.astype("<i8").tobytes()).hexdigest()
    assert digest == PRIOR_SHA256, "the lossless prior changed: that needs a new residual version"


PRIOR_SHA256 = "6a4e7a6402db724870330bda3427c92d1f98cc853f004de62f20872c543cc332"  # of lossless-v2-prior.npz's arrays, as shipped


FIXTURE_CASES = {
    "near-lossless-v2_v1": ((48, 64, 3), 0),
    "near-lossless-v2-e2_v1": ((48, 64, 3), 2),
    "near-lossless-v2-rgba_v1": ((33, 70, 4), 1),
    "near-lossless-v2-gray_v1": ((40, 31), 0),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_CASES))
def test_fixture_near_lossless_v2(name):
    shape, max_error = FIXTURE_CASES[name]
    img = photo(shape, seed=7)
    check_backwards_compatibility(name, nkcodec.decompress, lambda: v2_stream(img, max_error), None)
    out = nkcodec.decompress(nkcodec.compress(img, preset="near-lossless", max_error=max_error))
    assert int(np.abs(out.astype(int) - img.astype(int)).max()) <= max_error


def test_version_1_still_encodes_with_a_base():
    img = photo((24, 20, 3))
    data = nkcodec.compress(img, preset="near-lossless", max_error=1, base=6)
    header = unpack_container(data)[0]
    assert header.params["residual"]["base"] == 6 and "v" not in header.params["residual"]
    assert int(np.abs(nkcodec.decompress(data).astype(int) - img.astype(int)).max()) <= 1


@pytest.mark.parametrize("shape", [(300, 300), (260, 2100, 3), (64, 64, 4)])
@pytest.mark.parametrize("max_error", [0, 1])
def test_incompressible_tiles_are_stored_so_noise_costs_raw_plus_a_few_bytes(shape, max_error):
    """Version 3: a tile the coder cannot shrink is stored as its samples; the bound holds
    (exactly: stored samples are the originals) and the stream is raw plus at most 150 bytes."""
    img = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    data = nkcodec.compress(img, preset="near-lossless", max_error=max_error)
    out = nkcodec.decompress(data)
    assert int(np.abs(out.astype(int) - img).max()) <= max_error
    if max_error == 0:  # at max_error 1 the coder shrinks noise: no tile is stored
        assert len(data) <= img.size + 150
        old = v2_stream(img, max_error)  # version 3, as version 2 wrote it
        assert unpack_container(old)[0].params["residual"]["v"] == 3 and len(old) <= img.size + 150
        np.testing.assert_array_equal(nkcodec.decompress(old).reshape(img.shape), img)


def test_a_stored_tile_longer_than_raw_is_corrupt():
    img = np.random.default_rng(8).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for data in (nkcodec.compress(img, preset="near-lossless", max_error=0), v2_stream(img, 0)):
        _stored_tile_longer_than_raw_is_corrupt(data)


def _stored_tile_longer_than_raw_is_corrupt(data):
    header, sections = unpack_container(data)
    with pytest.raises(CorruptStreamError, match="more than its"):
        nkcodec.decompress(pack_container(header, [sections[0] + b"x"]))
    check_corruption(nkcodec.decompress, data, flips=40)


def test_stored_fixture_keeps_decoding():
    img = np.random.default_rng(9).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    check_backwards_compatibility("near-lossless-v3-stored_v1", nkcodec.decompress, lambda: v2_stream(img, 0), None)
