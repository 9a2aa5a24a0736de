"""The Pillow plugin (import nkcodec.pillow): Image.open and Image.save of .nkc."""

import io

import numpy as np
import pytest
from PIL import Image

import nkcodec
import nkcodec.pillow  # noqa: F401  (registers the format)
from nkcodec.errors import CorruptStreamError

from .test_learned import photo


@pytest.mark.parametrize("shape, mode", [((30, 44), "L"), ((30, 44, 2), "LA"), ((30, 44, 3), "RGB"), ((30, 44, 4), "RGBA")])
def test_save_and_open_give_nkcodecs_bytes_and_pixels(tmp_path, shape, mode):
    img = photo(shape)
    path = tmp_path / "x.nkc"
    Image.fromarray(img).save(path, quality=6)  # the extension picks the format
    data = path.read_bytes()
    assert data == nkcodec.compress(img, 6)
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("NKC", mode, (shape[1], shape[0]))
        assert im.info["nkcodec"]["quality"] == 6
        np.testing.assert_array_equal(np.asarray(im), nkcodec.decompress(data))


@pytest.mark.parametrize("fixture", ["palette_v1", "container-v2-context_v1_model6"])
def test_both_container_versions_open(fixture):
    """Version-1 files (every stream before issue 27) and version-2 files are recognised."""
    from .common import FIXTURES

    data = (FIXTURES / f"{fixture}.nkc").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "NKC"
        np.testing.assert_array_equal(np.asarray(im), nkcodec.decompress(data))


def test_preset_and_options_pass_through():
    img = photo((24, 32, 3))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="NKC", preset="near-lossless", max_error=2)
    assert buf.getvalue() == nkcodec.compress(img, preset="near-lossless", max_error=2)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    assert np.abs(out.astype(int) - img).max() <= 2


def test_registered_extension_and_mime():
    assert Image.registered_extensions()[".nkc"] == "NKC"
    assert Image.MIME["NKC"] == "image/x-nkc"


def test_other_modes_are_converted_before_saving(tmp_path):
    bw = Image.fromarray(photo((16, 16)) > 100)
    bw.save(tmp_path / "b.nkc", preset="rle")
    assert Image.open(tmp_path / "b.nkc").mode == "L"
    Image.fromarray(photo((16, 16, 3))).quantize(8).save(tmp_path / "p.nkc", preset="rle")
    assert Image.open(tmp_path / "p.nkc").mode == "RGB"


def test_a_corrupt_file_raises_corrupt_stream_error():
    data = nkcodec.compress(photo((8, 8, 3)), preset="rle")
    with pytest.raises(CorruptStreamError):
        Image.open(io.BytesIO(data[:-1] + bytes([data[-1] ^ 1])))
    with pytest.raises(Exception):  # not .nkc at all: Pillow's own "cannot identify"
        Image.open(io.BytesIO(b"NKZ" + data[3:]))


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_16_bit_and_float_images_are_refused_not_clipped(tmp_path, mode):
    """Converting these to 8 bits would clip them silently (a 16-bit gray once came back as
    203..255): the plugin refuses them, as the command line does."""
    a = (np.arange(16 * 16).reshape(16, 16) * 250).astype(np.uint16)
    im = Image.fromarray(a) if mode == "I;16" else Image.fromarray(a.astype(np.int32)).convert(mode)
    assert im.mode == mode
    with pytest.raises(ValueError, match="near-lossless" if mode == "I;16" else "8- and 16-bit"):
        im.save(tmp_path / "x.nkc")
    assert not (tmp_path / "x.nkc").exists() or (tmp_path / "x.nkc").stat().st_size == 0


def test_16_bit_gray_is_coded_exactly_by_near_lossless(tmp_path):
    a = (np.arange(30 * 20).reshape(30, 20) * 97 % 65536).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "x.nkc", preset="near-lossless", max_error=0)
    with Image.open(tmp_path / "x.nkc") as im:
        assert im.mode == "I;16" and im.size == (20, 30)
        np.testing.assert_array_equal(np.asarray(im), a)
    for image in (np.zeros((4, 5, 3), np.uint16), np.zeros((4, 5, 6), np.uint8)):  # no Pillow mode: a clear error
        data = nkcodec.compress(image, preset="near-lossless", max_error=0)
        with pytest.raises(ValueError, match="no mode.*nkcodec.decompress"):
            Image.open(io.BytesIO(data))
