"""Alpha through the learned presets (issue 24): coded losslessly by whichever of NK-RLE
(version 1) and the predictive lossless coder (version 2, ``image.alpha_v = 2``) is
smaller; exact either way; old streams decode; forged flags are named."""

import numpy as np
import pytest

import nkcodec
from nkcodec.errors import CorruptStreamError
from nkcodec.format.container import Header, pack_container, unpack_container
from nkcodec.presets.base import pack_plane

from .common import check_backwards_compatibility, check_corruption
from .test_learned import photo


def _alphas(h, w):
    y, x = np.mgrid[0:h, 0:w]
    disc = np.clip((min(h, w) / 3 - np.hypot(y - h / 2, x - w / 2)) * 85 + 128, 0, 255).astype(np.uint8)
    gradient = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    return {"opaque": np.full((h, w), 255, np.uint8), "disc": disc, "gradient": gradient, "noise": photo((h, w), seed=5)}


@pytest.mark.parametrize("kind", ["opaque", "disc", "gradient", "noise"])
@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_is_exact_and_no_larger_than_its_runs(kind, channels):
    h, w = 96, 136
    a = _alphas(h, w)[kind]
    base = photo((h, w, channels - 1))
    img = np.dstack([base, a])
    data = nkcodec.compress(img, quality=3)
    out = nkcodec.decompress(data)
    np.testing.assert_array_equal(out[..., -1], a)
    np.testing.assert_array_equal(next(nkcodec.decompress_many([data])), out)
    without = len(nkcodec.compress(base if channels == 4 else base[..., 0], quality=3))
    assert len(data) - without <= len(pack_plane(a)) + 16  # never more than the runs (and the flag)
    header, _ = unpack_container(data)
    assert header.params["image"].get("alpha_v") == (None if kind == "opaque" else 2)


def test_a_gradient_alpha_costs_next_to_nothing():
    h, w = 256, 384
    img = np.dstack([photo((h, w, 3)), _alphas(h, w)["gradient"]])
    extra = len(nkcodec.compress(img, quality=4)) - len(nkcodec.compress(img[..., :3], quality=4))
    assert extra < 0.01 * h * w  # NK-RLE took 83% of the plane's raw size


def test_forged_alpha_flags_are_corrupt():
    img = np.dstack([photo((40, 56, 3)), _alphas(40, 56)["disc"]])
    data = nkcodec.compress(img, quality=2)
    header, sections = unpack_container(data)
    params = {**header.params, "image": {**header.params["image"], "alpha_v": 3}}
    with pytest.raises(CorruptStreamError, match="alpha_v"):
        nkcodec.decompress(pack_container(Header(**{**header.__dict__, "params": params}), sections))
    rgb = nkcodec.compress(photo((40, 56, 3)), quality=2)
    h2, s2 = unpack_container(rgb)
    params = {**h2.params, "image": {**h2.params["image"], "alpha_v": 2}}
    with pytest.raises(CorruptStreamError, match="no alpha"):
        nkcodec.decompress(pack_container(Header(**{**h2.__dict__, "params": params}), s2))
    with pytest.raises(CorruptStreamError):
        nkcodec.decompress(pack_container(header, sections[:-1]))  # a tile of the alpha missing
    check_corruption(nkcodec.decompress, data, flips=50)


def test_alpha_fixtures_keep_decoding():
    img = np.dstack([photo((48, 64, 3), seed=3), _alphas(48, 64)["disc"]])
    check_backwards_compatibility("context-alpha-v2_v1_model6", nkcodec.decompress, lambda: nkcodec.compress(img, 3), None)
