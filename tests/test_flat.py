"""Flat images stay flat (issue 24): a constant image comes back exactly, at every quality
and preset, in under 100 bytes; constant 8x8 blocks inside an image come back exactly;
streams without constant blocks are the bytes they were; the flat stage's fields and
sections are checked; committed fixtures keep decoding."""

import numpy as np
import pytest

import nkcodec
from nkcodec.coding import flat_blocks
from nkcodec.errors import CorruptStreamError

from .common import check_backwards_compatibility, check_corruption, check_deep_corruption
from .test_learned import photo

LEARNED = ["default", "scalar", "scalar-rle", "cluster"]


@pytest.mark.parametrize("preset", LEARNED)
@pytest.mark.parametrize("quality", [1, 4, 8])
@pytest.mark.parametrize("value", [0, 128, 255, (12, 200, 31)])
def test_a_constant_image_comes_back_exactly_in_under_100_bytes(preset, quality, value):
    img = np.empty((512, 768, 3), np.uint8)
    img[...] = value
    data = nkcodec.compress(img, quality=quality, preset=preset)
    assert len(data) < 100
    np.testing.assert_array_equal(nkcodec.decompress(data), img)


@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 1), (40, 56, 2), (33, 20, 4), (1, 1, 3)])
def test_constant_images_of_every_shape(shape):
    img = np.full(shape, 77, np.uint8)
    if len(shape) == 3 and shape[2] in (2, 4):
        img[..., -1] = photo(shape[:2])  # alpha is its own plane: it need not be flat
    data = nkcodec.compress(img, quality=2)
    np.testing.assert_array_equal(nkcodec.decompress(data), img)
    np.testing.assert_array_equal(next(nkcodec.decompress_many([data])), img)


@pytest.mark.parametrize("quality", [1, 2, 5, 8])
def test_constant_blocks_inside_an_image_come_back_within_one(quality):
    """Every constant 8x8 block comes back within FLAT_TOLERANCE (1): signalled and put
    back exactly where the synthesis would miss by more."""
    from nkcodec.presets.base import FLAT_TOLERANCE

    img = photo((100, 130, 3))
    img[:48, :64] = 0  # block-aligned
    img[60:, 85:] = (10, 200, 30)  # not aligned: the whole blocks inside it count
    data = nkcodec.compress(img, quality=quality)
    out = nkcodec.decompress(data).astype(int)
    assert np.abs(out[:48, :64]).max() <= FLAT_TOLERANCE
    assert np.abs(out[64:, 88:] - [10, 200, 30]).max() <= FLAT_TOLERANCE
    labels, _ = flat_blocks.find(img)
    assert flat_blocks.block_errors(out, img)[labels > 0].max() <= FLAT_TOLERANCE
    assert list(nkcodec.compress_many([img], quality=quality)) == [data]  # the batched pipeline: the same bytes


def test_images_without_constant_blocks_write_no_flat_stage():
    img = photo((64, 96, 3))
    labels, palette = flat_blocks.find(img)
    assert not labels.any()
    header_params = nkcodec.format.container.unpack_container(nkcodec.compress(img, 3))[0].params
    assert "flat" not in header_params


def test_the_paper_preset_stays_the_paper():
    img = np.zeros((32, 48, 3), np.uint8)
    header, _ = nkcodec.format.container.unpack_container(nkcodec.compress(img, 3, "paper"))
    assert "flat" not in header.params and "paper" in header.params


def test_find_and_apply_agree_with_a_direct_check():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 3, (37, 45, 3), dtype=np.uint8) * 100  # a few colours: some blocks flat by chance
    img[8:24, 16:40] = 5
    labels, palette = flat_blocks.find(img)
    for by in range(labels.shape[0]):
        for bx in range(labels.shape[1]):
            block = img[8 * by : 8 * by + 8, 8 * bx : 8 * bx + 8].reshape(-1, 3)
            flat = bool((block == block[0]).all())
            assert (labels[by, bx] > 0) == flat
            if flat:
                assert palette[labels[by, bx] - 1].tolist() == block[0].tolist()
    params, sections = flat_blocks.encode(labels, palette)
    back = flat_blocks.apply(np.zeros_like(img), *flat_blocks.decode(params, sections, img.shape[:2]))
    mask = np.repeat(np.repeat(labels > 0, 8, 0), 8, 1)[:37, :45]
    np.testing.assert_array_equal(back[mask], img[mask])


def test_hostile_flat_streams_raise_corrupt_stream_error():
    img = photo((40, 56, 3))
    img[:16, :16] = 9
    data = nkcodec.compress(img, quality=2)
    check_corruption(nkcodec.decompress, data, flips=50)
    check_deep_corruption(nkcodec.decompress, data, flips=60)
    const = nkcodec.compress(np.zeros((20, 20, 3), np.uint8), quality=2)
    check_corruption(nkcodec.decompress, const, flips=50)
    check_deep_corruption(nkcodec.decompress, const, flips=60)


@pytest.mark.parametrize(
    "params, sections, match",
    [
        ({"flat": {"rgb": [1, 2, 3]}, "latent": {"escapes": 0}}, [], "more than its colour"),
        ({"flat": {"rgb": [1, 2, 3], "blocks": 1}}, [], "more than its colour"),
        ({"flat": {"rgb": [1, 2, 3]}}, [b"x"], "more than its colour"),
        ({"flat": {"rgb": [1, 2, 300]}}, [], "flat.rgb"),
        ({"flat": {"rgb": [1, 2]}}, [], "flat.rgb"),
        ({"flat": {"blocks": 1}}, [], "missing parameter latent"),
        ({}, [], "missing parameter latent"),
    ],
)
def test_forged_flat_params_are_named(params, sections, match):
    from nkcodec.format.container import Header, pack_container

    header = Header(20, 20, 3, "context", 2, 6, params={**params, "image": {"gray": False, "alpha": False}})
    with pytest.raises(CorruptStreamError, match=match):
        nkcodec.decompress(pack_container(header, sections))


def _fixture_image():
    img = photo((48, 72, 3), seed=11)
    img[:24, :32] = (250, 250, 250)
    img[32:, 40:] = 0
    return img


@pytest.mark.parametrize(
    "name, make",
    [
        ("context-flat-constant_v1_model6", lambda: nkcodec.compress(np.full((40, 60, 3), (30, 60, 90), np.uint8), 3)),
        ("context-flat-blocks_v1_model6", lambda: nkcodec.compress(_fixture_image(), 3)),
    ],
)
def test_flat_fixtures_keep_decoding(name, make):
    check_backwards_compatibility(name, nkcodec.decompress, make, None)


def test_the_unwritten_part_of_a_zarr_chunk_comes_back_as_its_fill_value():
    """A chunk written in part holds the fill value elsewhere: those blocks come back exact."""
    pytest.importorskip("numcodecs", reason="the zarr extra is not installed")
    from nkcodec.zarr import NkCodec

    chunk = np.zeros((128, 192, 3), np.uint8)
    chunk[:50, :70] = photo((50, 70, 3))
    for quality in (1, 4, 8):
        out = NkCodec(quality=quality).decode(NkCodec(quality=quality).encode(chunk))
        assert out[56:].max() <= 1 and out[:, 72:].max() <= 1  # every block past the written part's blocks
