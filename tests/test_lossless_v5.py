"""Near-lossless version 5 (nkcodec.coding.nearlossless_v5): version 4's tiles with an LMS
stage and five context models; the default of the ``near-lossless`` preset for every
depth.  Exact bounds, the encoder's efforts, the compiled kernel against its Python
source, corrupt streams, the pinned prior and the committed fixtures."""

import dataclasses
import hashlib

import numpy as np
import pytest

import nkcodec
from nkcodec.coding import nearlossless_v2, nearlossless_v4, nearlossless_v5
from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import pack_container, unpack_container

from .common import FIXTURES as FIXTURE_DIR
from .common import check_backwards_compatibility, check_corruption, check_deep_corruption
from .test_learned import photo
from .test_lossless_depth import deep


def _max_err(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("shape, dtype", [((64, 96, 3), np.uint8), ((40, 30), np.uint8), ((33, 70, 4), np.uint8), ((30, 20, 3), np.uint16)])
def test_the_preset_writes_version_5_for_every_depth(shape, dtype):
    img = photo(shape).astype(dtype) * (257 if dtype == np.uint16 else 1)
    data = nkcodec.compress(img, preset="near-lossless", max_error=0)
    assert unpack_container(data)[0].params["residual"]["v"] == 5
    out = nkcodec.decompress(data)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("max_error", [0, 1, 3])
def test_every_effort_keeps_the_bound_and_never_costs_more(max_error):
    """The encoder's search keeps the rule's choice unless another is smaller, so a higher
    effort is never larger; the decoder reads whatever it chose."""
    for img in (photo((70, 90, 3)), deep((50, 40, 5), 12, seed=3), photo((40, 60, 4))):
        bits = 12 if img.dtype == np.uint16 else None
        sizes = []
        for e in nearlossless_v4.EFFORTS:
            data = nkcodec.compress(img, preset="near-lossless", max_error=max_error, effort=e, bits=bits)
            out = nkcodec.decompress(data)
            assert out.shape == img.shape and _max_err(out, img) <= max_error
            sizes.append(len(data))
        assert sizes == sorted(sizes, reverse=True)


def test_the_search_tries_other_layouts_and_keeps_them_valid():
    tile = photo((40, 50, 4))
    lays = nearlossless_v4.candidates(tile, 1)
    assert np.array_equal(lays[0], nearlossless_v4.tile_layout(tile)) and len(lays) >= 4
    for lay in lays:  # each a permutation, references and guides coded before, alpha last and alone
        assert sorted(lay[:, 0]) == [0, 1, 2, 3] and lay[-1].tolist() == [3, -1, -1]
        seen = []
        for ch, ref, guide in lay.tolist():
            assert ref == -1 or ref in seen
            assert guide == -1 or (ref != -1 and guide in seen and guide != ref)
            seen.append(ch)
    assert len(nearlossless_v4.candidates(tile, 0)) == 1 and len(nearlossless_v4.candidates(tile[..., :1], 2)) == 1


def test_effort_is_checked():
    img = photo((8, 8, 3))
    for bad in (3, -1, 1.5, "1"):
        with pytest.raises(ValueError, match="effort"):
            nkcodec.compress(img, preset="near-lossless", max_error=0, effort=bad)
    with pytest.raises(ValueError, match="no effort"):
        nkcodec.compress(img, preset="near-lossless", max_error=1, base=6, effort=1)


@pytest.mark.parametrize("shape, max_error, bits", [((5, 7, 3), 0, 8), ((6, 4, 4), 2, 8), ((7, 6, 1), 1, 16)])
def test_compiled_kernel_matches_its_python_source_with_the_lms_stage(shape, max_error, bits):
    """Version 5's kernel options (five models, the LMS stage) give the same bytes and
    samples compiled and run by Python (NumPy scalar semantics)."""
    img = photo(shape)
    img = np.ascontiguousarray(img.astype(np.uint16) * 251 if bits == 16 else img)
    lay = nearlossless_v4.tile_layout(img)
    cfg = np.array([(1 << bits) - 1, bits, bits - 8, max(0, bits - 8 - (2 * max_error + 1).bit_length() + 1)], np.int64)
    steps = nearlossless_v2._steps(shape[2], max_error)
    state = lambda: [a.copy() for a in nearlossless_v4._state(lay, shape[2], bits, int(cfg[3]), nearlossless_v5.CODER)]  # noqa: E731
    out = {}
    compiled = nearlossless_v2.kernel(nearlossless_v5.MODELS)
    for name, fn in (("numba", compiled), ("python", compiled.py_func)):
        buf = np.zeros(img.size * 16 + 1024, np.uint8)
        rec = np.zeros_like(img)
        n = fn(img, rec, lay, cfg, steps, buf, nearlossless_v2._TABLES, *state(), True, nearlossless_v5.LMS)
        data = buf[:n].copy()
        dec = np.zeros_like(img)
        assert fn(dec, dec, lay, cfg, steps, data, nearlossless_v2._TABLES, *state(), False, nearlossless_v5.LMS) == n
        np.testing.assert_array_equal(dec, rec)
        assert _max_err(rec, img) <= max_error
        out[name] = data.tobytes(), rec
    assert out["numba"][0] == out["python"][0]
    np.testing.assert_array_equal(out["numba"][1], out["python"][1])


def test_the_lms_stage_and_the_models_change_the_bytes_and_pay_on_a_photo():
    """Version 5 is not version 4 under another number: on a photo it is smaller."""
    img = photo((96, 128, 3))
    v4 = sum(len(p) for p in nearlossless_v4.encode(img, 0))
    v5 = sum(len(p) for p in nearlossless_v5.encode(img, 0))
    assert v5 < v4


def test_corrupt_streams_raise():
    img = photo((40, 30, 3))
    data = nkcodec.compress(img, preset="near-lossless", max_error=0)
    check_corruption(nkcodec.decompress, data, flips=100)
    check_deep_corruption(nkcodec.decompress, data, flips=100)
    header, sections = unpack_container(data)
    for bad, msg in (([sections[0][:-1]], "ends at byte|fewer than"), ([sections[0] + b"\0"], "ends at byte"), ([sections[0], sections[0]], "tiles, expected")):
        with pytest.raises(CorruptStreamError, match=msg):
            nkcodec.decompress(pack_container(header, bad))
    for v in (6, "5", True):
        params = {**header.params, "residual": {**header.params["residual"], "v": v}}
        with pytest.raises(CorruptStreamError, match="residual.v"):
            nkcodec.decompress(pack_container(dataclasses.replace(header, params=params), sections))
    assert sections[0][0] == 1  # an 8-bit photo's tile: the LMS stage on
    mode = bytearray(sections[0])
    mode[0] = 2  # a tile mode this build does not know
    with pytest.raises(CorruptStreamError, match="mode 2"):
        nkcodec.decompress(pack_container(header, [bytes(mode)]))


def test_the_prior_is_pinned():
    """Version 5 streams decode with exactly the shipped prior: a changed prior is a new version."""
    probs, wts = nearlossless_v5.prior()
    assert probs.shape[0] == wts.shape[1] == nearlossless_v5.MODELS
    digest = hashlib.sha256(probs.astype("<u2").tobytes() + wts.astype("<i8").tobytes()).hexdigest()
    assert digest == PRIOR_SHA256, "the version 5 prior changed: that needs a new residual version"


PRIOR_SHA256 = "fb0e494fc337b27e03072561044176d4c90251a64a86e9057929ce935ac543af"  # of lossless-v5-prior.npz's arrays, as shipped


FIXTURES = {
    "near-lossless-v5-rgb_v1": lambda: (photo((48, 64, 3), seed=7), 0, None, 0),
    "near-lossless-v5-rgba-e2-effort2_v1": lambda: (photo((33, 70, 4), seed=8), 2, None, 2),
    "near-lossless-v5-16bit-e1_v1": lambda: (deep((48, 40), 16, seed=5), 1, None, 0),
    "near-lossless-v5-10ch-effort1_v1": lambda: (deep((30, 36, 10), 12, seed=9), 0, 12, 1),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_near_lossless_v5(name):
    img, max_error, bits, effort = FIXTURES[name]()
    make = lambda: nkcodec.compress(img, preset="near-lossless", max_error=max_error, bits=bits, effort=effort)  # noqa: E731
    check_backwards_compatibility(name, nkcodec.decompress, make, None)
    data = (FIXTURE_DIR / f"{name}.nkc").read_bytes()
    assert unpack_container(data)[0].params["residual"]["v"] == 5
    out = nkcodec.decompress(data)
    assert out.dtype == img.dtype and out.shape == img.shape and _max_err(out, img) <= max_error
