import numpy as np
import pytest

import nkcodec

from .common import FIXTURES, as_version_1, check_backwards_compatibility, check_corruption

SHAPES = [(1, 1), (1, 1, 3), (7, 5), (7, 5, 1), (9, 6, 2), (13, 31, 3), (16, 16, 4), (3, 300, 3)]


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    img[: shape[0] // 2] = 17  # some runs
    return img


@pytest.mark.parametrize("shape", SHAPES)
def test_rle_preset_round_trip(shape):
    img = _image(shape)
    data = nkcodec.compress(img, preset="rle")
    out = nkcodec.decompress(data)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, img)
    assert nkcodec.compress(img, preset="rle") == data  # deterministic


def test_large_image_round_trip():
    img = np.zeros((2000, 1500, 3), np.uint8)
    img[500:900, 100:1400] = (10, 200, 30)
    np.testing.assert_array_equal(nkcodec.decompress(nkcodec.compress(img, preset="rle")), img)


def test_codec_object():
    codec = nkcodec.Codec(quality=2, preset="rle")
    img = _image((9, 9, 3))
    np.testing.assert_array_equal(codec.decode(codec.encode(img)), img)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 3), np.uint16), "uint8"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.zeros((4,), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        ([[1, 2]], "numpy"),
    ],
)
def test_bad_images(bad, match):
    with pytest.raises(ValueError, match=match):
        nkcodec.compress(bad, preset="palette")  # rle and near-lossless take uint16 and up to 16 channels (test_lossless_depth)


def test_giant_image_rejected_without_allocation():
    big = np.broadcast_to(np.zeros(1, np.uint8), (70000, 10, 3))
    with pytest.raises(ValueError, match="too large"):
        nkcodec.compress(big, preset="rle")


def test_bad_options():
    img = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match="preset"):
        nkcodec.compress(img, preset="jpeg")
    for q in (0, 9, 2.5, True):
        with pytest.raises(ValueError, match="quality"):
            nkcodec.compress(img, quality=q, preset="rle")


def test_corrupt_streams():
    data = nkcodec.compress(_image((6, 7, 3)), preset="rle")
    check_corruption(nkcodec.decompress, data, flips=300)


def test_fixture_rle():
    def make():
        return nkcodec.compress(_fixture_image(), preset="rle")

    check_backwards_compatibility("rle_v1", nkcodec.decompress, make, _fixture_image)
    # the encoder is exact integer work on every machine: its bytes are pinned too (in the container of then)
    assert as_version_1(make()) == (FIXTURES / "rle_v1.nkc").read_bytes()


def _fixture_image():
    y, x = np.mgrid[0:24, 0:40]
    img = np.stack([(x * 6) % 256, (y * 10) % 256, ((x // 8) * 50) % 256], -1).astype(np.uint8)
    img[8:16, 10:30] = (255, 0, 128)
    return img


@pytest.mark.parametrize("preset, opts", [("rle", {}), ("palette", {"k": 8})])
def test_deep_corruption(preset, opts):
    from .common import check_deep_corruption

    data = nkcodec.compress(_image((6, 7, 3)), preset=preset, **opts)
    check_deep_corruption(nkcodec.decompress, data, flips=300)


def test_config_round_trip():
    c = nkcodec.Codec(quality=3, preset="palette", k=12)
    cfg = c.get_config()
    assert cfg == {"id": "nkcodec.palette", "quality": 3, "k": 12}
    c2 = nkcodec.Codec.from_config(cfg)
    img = _image((9, 11, 3))
    assert c2.encode(img) == c.encode(img)
    with pytest.raises(ValueError):
        nkcodec.Codec.from_config({"id": "zlib"})


def test_numpy_options_give_a_json_config_and_preset_errors_stay_their_own():
    import json

    c = nkcodec.Codec(np.int64(3), "palette", k=np.int64(12))
    assert json.loads(json.dumps(c.get_config())) == {"id": "nkcodec.palette", "quality": 3, "k": 12}
    with pytest.raises(ValueError, match="bad option for preset 'rle'"):
        nkcodec.Codec(3, "rle", k=3)
    with pytest.raises(ValueError, match="palette size k"):  # the preset's own check, not "bad option"
        nkcodec.Codec(3, "palette", k="many")


@pytest.mark.parametrize(
    "preset, options",
    [("default", {}), ("scalar", {}), ("paper", {}), ("cluster", {}), ("scalar-rle", {}), ("rle", {}), ("palette", {}), ("near-lossless", {"base": 3})],
)
@pytest.mark.parametrize("shape", [(24, 40, 3), (24, 40), (24, 40, 4)])
def test_decoded_arrays_are_writable(preset, options, shape):
    from .test_learned import photo

    data = nkcodec.compress(photo(shape), quality=3, preset=preset, **options)
    for out in (nkcodec.decompress(data), *nkcodec.decompress_many([data, data])):
        assert out.flags.writeable
        out[0, 0] = 0  # the user's to change
