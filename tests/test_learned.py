"""The learned presets (scalar = default, paper) with the shipped weights."""

import numpy as np
import pytest

import nkcodec
from nkcodec import zoo
from nkcodec.errors import CorruptStreamError

from .common import check_backwards_compatibility, check_corruption, with_fixed_crc

PRESETS = ["scalar", "paper", "scalar-rle", "cluster"]


def _photo(shape, seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 + 20, y * 2 + 40, (x + y) + 60], -1) + rng.integers(0, 20, (h, w, 3))
    img = np.clip(base, 0, 255).astype(np.uint8)
    if len(shape) == 2:
        return img[..., 0]
    if shape[2] == 1:
        return img[..., :1]
    if shape[2] == 4:
        return np.concatenate([img, rng.integers(0, 256, (h, w, 1)).astype(np.uint8)], -1)
    return img


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (17, 33, 3), (40, 24), (23, 19, 1), (30, 70, 4)])
def test_round_trip_shapes(preset, shape):
    img = _photo(shape)
    data = nkcodec.compress(img, quality=4, preset=preset)
    out = nkcodec.decompress(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    if img.ndim == 3 and img.shape[2] == 4:
        np.testing.assert_array_equal(out[..., 3], img[..., 3])  # alpha is lossless
    assert nkcodec.compress(img, quality=4, preset=preset) == data  # identical bytes


def test_default_is_scalar_and_quality_changes_rate():
    img = _photo((64, 96, 3))
    a = nkcodec.compress(img, quality=1)
    b = nkcodec.compress(img, quality=8)
    assert nkcodec.container.unpack_container(a)[0].preset == "scalar"
    assert nkcodec.decompress(a).shape == img.shape
    assert len(a) != len(b)


def test_large_image():
    img = _photo((700, 1100, 3))
    out = nkcodec.decompress(nkcodec.compress(img, quality=2))
    assert out.shape == img.shape


@pytest.mark.parametrize("preset", PRESETS)
def test_corrupt_learned_streams(preset):
    data = nkcodec.compress(_photo((20, 20, 3)), quality=3, preset=preset)
    check_corruption(nkcodec.decompress, data, flips=100)


def test_unknown_model_id_is_reported():
    import struct

    data = bytearray(nkcodec.compress(_photo((8, 8, 3)), quality=3)[:-4])
    struct.pack_into("<H", data, 16, 999)
    data = with_fixed_crc(bytes(data))
    with pytest.raises(CorruptStreamError, match="model id 999"):
        nkcodec.decompress(data)


@pytest.mark.parametrize("model_id", sorted(zoo.MODEL_IDS))
@pytest.mark.parametrize("preset", PRESETS)
def test_fixture_learned(preset, model_id):
    """Every shipped model keeps decoding its committed streams (one per preset)."""
    img = _photo((48, 64, 3), seed=7)
    name = zoo.MODEL_IDS[model_id]
    check_backwards_compatibility(
        f"{preset}_v1_model{model_id}",
        nkcodec.decompress,
        lambda: nkcodec.compress(img, quality=4, preset=preset, model=name),
        None,
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_deep_corruption_learned(preset):
    from .common import check_deep_corruption

    data = nkcodec.compress(_photo((20, 36, 3)), quality=3, preset=preset)
    check_deep_corruption(nkcodec.decompress, data, flips=60)
