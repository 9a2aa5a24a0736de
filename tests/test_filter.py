"""The exact adaptive filter after the synthesis (``adaptive_filter=True``): the integer
kernel against its NumPy reference, the bound on its sums, round trips through the API and
the batched pipeline, the per-image decision, forged streams, a committed fixture."""

import numpy as np
import pytest

import nkcodec
from nkcodec.coding import adaptive_filter as af
from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import Header, pack_container, unpack_container

from .common import check_backwards_compatibility, check_corruption, check_deep_corruption
from .test_learned import photo


def _reference(decoded, coefs):
    """The filter as written in the module docstring, in plain int64 NumPy."""
    r = af.TAPS // 2
    p = np.pad(decoded, ((r, r), (r, r), (0, 0)), mode="edge").astype(np.int64) - 128
    h, w = decoded.shape[:2]
    out = np.empty(decoded.shape, np.int64)
    for c in range(3):
        acc = np.full((h, w), coefs[c, -1], np.int64)
        k = 0
        for ch in range(3):
            for dy in range(af.TAPS):
                for dx in range(af.TAPS):
                    acc += coefs[c, k] * p[dy : dy + h, dx : dx + w, ch]
                    k += 1
        out[..., c] = decoded[..., c].astype(np.int64) + ((acc + (1 << (af.FRAC - 1))) >> af.FRAC)
    return np.clip(out, 0, 255).astype(np.uint8)


def test_the_kernel_is_its_reference_even_at_the_coefficient_limits():
    rng = np.random.default_rng(0)
    decoded = rng.integers(0, 256, (21, 34, 3), dtype=np.uint8)
    for coefs in (
        af.fit(decoded, np.clip(decoded.astype(int) + rng.integers(-9, 10, decoded.shape), 0, 255).astype(np.uint8)),
        np.concatenate([rng.choice([-af.MAX_WEIGHT, af.MAX_WEIGHT], (3, 75)), rng.choice([-af.MAX_BIAS, af.MAX_BIAS], (3, 1))], axis=1),
    ):
        np.testing.assert_array_equal(af.apply(decoded, coefs), _reference(decoded, coefs))
    extreme = np.zeros((9, 9, 3), np.uint8)
    extreme[::2] = 255  # the largest |x - 128| of either sign under the largest weights
    worst = np.full((3, 76), af.MAX_WEIGHT, np.int64)
    worst[:, -1] = af.MAX_BIAS
    np.testing.assert_array_equal(af.apply(extreme, worst), _reference(extreme, worst))
    assert 75 * 128 * af.MAX_WEIGHT + af.MAX_BIAS + (1 << af.FRAC) < 2**31  # the bound the docstring states


@pytest.mark.parametrize("preset", ["default", "scalar", "cluster", "scalar-rle"])
@pytest.mark.parametrize("shape", [(96, 128, 3), (64, 80), (48, 64, 4)])
def test_round_trips_and_the_pipeline_give_the_same_pixels(preset, shape):
    img = photo(shape, seed=2)
    data = nkcodec.compress(img, quality=7, preset=preset, adaptive_filter=True)
    out = nkcodec.decompress(data)
    assert out.shape == img.shape
    np.testing.assert_array_equal(next(nkcodec.decompress_many([data])), out)
    assert list(nkcodec.compress_many([img], quality=7, preset=preset, adaptive_filter=True)) == [data]


def test_the_filter_is_sent_only_where_it_pays():
    """A stream with the filter is never worse by the nets' objective than without it."""
    from nkcodec.config import LAMBDAS

    for seed, q in ((1, 2), (2, 6), (3, 8)):
        img = photo((128, 192, 3), seed=seed)
        plain, filtered = nkcodec.compress(img, q), nkcodec.compress(img, q, adaptive_filter=True)
        if "filter" not in unpack_container(filtered)[0].params:
            assert filtered == plain
            continue

        def cost(data):
            mse = nkcodec.metrics.mse(img, nkcodec.decompress(data))
            return LAMBDAS[q - 1] * mse + nkcodec.metrics.bpp(data, img)

        assert cost(filtered) < cost(plain)


def test_the_option_is_checked():
    with pytest.raises(ValueError, match="adaptive_filter"):
        nkcodec.Codec(3, adaptive_filter="yes")
    with pytest.raises(ValueError, match="adaptive_filter"):
        nkcodec.Codec(3, "paper", adaptive_filter=True)


def _filtered_stream():
    img = photo((96, 128, 3), seed=5)
    for q in (8, 7, 6, 5):
        data = nkcodec.compress(img, q, adaptive_filter=True)
        if "filter" in unpack_container(data)[0].params:
            return data
    raise AssertionError("no quality sent the filter for this image")


def test_forged_filter_streams_are_corrupt():
    data = _filtered_stream()
    header, sections = unpack_container(data)
    check_corruption(nkcodec.decompress, data, flips=40)
    check_deep_corruption(nkcodec.decompress, data, flips=40)
    for bad, match in (({**header.params["filter"], "taps": 3}, "filter.taps"), ({**header.params["filter"], "v": 2}, "filter.v")):
        h = Header(**{**header.__dict__, "params": {**header.params, "filter": bad}})
        with pytest.raises(CorruptStreamError, match=match):
            nkcodec.decompress(pack_container(h, sections))
    coefs = af.decode(header.params["filter"], [sections[2]])
    coefs[0, 0] = af.MAX_WEIGHT + 1
    forged = [*sections[:2], af.encode(coefs)[1][0], *sections[3:]]
    with pytest.raises(CorruptStreamError, match="out of range"):
        nkcodec.decompress(pack_container(header, forged))
    with pytest.raises(CorruptStreamError):
        nkcodec.decompress(pack_container(header, sections[:2]))


def test_filter_fixture_keeps_decoding():
    check_backwards_compatibility("context-filter_v1_model6", nkcodec.decompress, _filtered_stream, None)


def test_the_command_line_takes_the_option(tmp_path):
    from PIL import Image

    from nkcodec.tools.cli import main

    img = photo((96, 128, 3), seed=5)
    Image.fromarray(img).save(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "-o", str(tmp_path / "p.nkc"), "--quality", "8", "--adaptive-filter"]) == 0
    assert (tmp_path / "p.nkc").read_bytes() == nkcodec.compress(img, 8, adaptive_filter=True)
