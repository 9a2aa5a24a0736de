"""nkcodec in Zarr: the numcodecs codec (nkcodec.zarr.NkCodec), found by id through
its entry point, in real Zarr arrays on disk of both formats, reopened in a fresh process."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nkcodec
from nkcodec.errors import CorruptStreamError

from .test_learned import photo

numcodecs = pytest.importorskip("numcodecs", reason="the zarr extra is not installed")
zarr = pytest.importorskip("zarr", reason="the zarr extra is not installed")

from nkcodec.zarr import NkCodec, NkCodecZarr3  # noqa: E402


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_found_by_id_without_an_import():
    out = _fresh("import sys, numcodecs\nc = numcodecs.get_codec({'id': 'nkcodec', 'quality': 2, 'preset': 'rle'})\nprint(type(c).__module__, c.get_config())")
    assert out.split(" ", 1)[0] == "nkcodec.zarr"
    assert "'quality': 2" in out and "'preset': 'rle'" in out


@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 1), (40, 56, 2), (40, 56, 3), (33, 20, 4), (3, 24, 40, 3)])
@pytest.mark.parametrize("preset", ["default", "rle"])
def test_chunks_round_trip_as_one_at_a_time(shape, preset):
    codec = NkCodec(quality=3, preset=preset)
    chunk = np.stack([photo(shape[1:], seed=i) for i in range(shape[0])]) if len(shape) == 4 else photo(shape)
    out = codec.decode(codec.encode(chunk))
    images = chunk if chunk.ndim == 4 else [chunk]
    expected = np.stack([nkcodec.decompress(nkcodec.compress(im, 3, preset)) for im in images])
    assert out.shape == chunk.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    into = np.empty_like(chunk)
    codec.decode(codec.encode(chunk), out=into)
    np.testing.assert_array_equal(into, out)


def test_config_is_json_and_round_trips():
    codec = NkCodec(quality=np.int64(5), preset="near-lossless", max_error=np.int64(2))
    cfg = codec.get_config()
    assert json.loads(json.dumps(cfg)) == {"id": "nkcodec", "quality": 5, "preset": "near-lossless", "max_error": 2}
    assert numcodecs.get_codec(cfg).get_config() == cfg
    with pytest.raises(ValueError, match="quality"):
        NkCodec(quality=9)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 6), np.uint8), np.zeros((4,), np.uint8), np.zeros((2, 2, 2, 2, 2), np.uint8)])
def test_bad_chunks_are_refused(bad):
    with pytest.raises(ValueError):
        NkCodec().encode(bad)


def test_corrupt_chunks_raise_corrupt_stream_error():
    codec = NkCodec(preset="rle")
    data = codec.encode(np.zeros((2, 8, 8, 3), np.uint8))
    for cut in (3, 9, len(data) - 1):
        with pytest.raises(CorruptStreamError):
            codec.decode(data[:cut])
    with pytest.raises(CorruptStreamError):
        codec.decode(data + b"x")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_arrays_on_disk_reopened_in_a_fresh_process(tmp_path, zarr_format):
    images = np.stack([photo((48, 64, 3), seed=i) for i in range(5)])
    path = str(tmp_path / f"images{zarr_format}.zarr")
    options = {"serializer": NkCodecZarr3(quality=4), "compressors": None} if zarr_format == 3 else {"compressors": NkCodec(quality=4), "filters": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr notes that numcodecs codecs are not in the v3 spec
        z = zarr.create_array(path, shape=images.shape, chunks=(2, 48, 64, 3), dtype="uint8", zarr_format=zarr_format, **options)
        z[:] = images
    expected = np.stack([nkcodec.decompress(nkcodec.compress(im, 4)) for im in images])
    out = _fresh(f"import zarr, numpy as np\nz = zarr.open_array({path!r})\nnp.save('{tmp_path}/out.npy', z[:])\nprint(z.metadata.zarr_format)")
    assert out.strip() == str(zarr_format)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)  # the last chunk holds one image and zarr's fill


def test_wrong_dtype_or_chunks_fail_when_the_array_is_created(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="uint8"):
            zarr.create_array(str(tmp_path / "f.zarr"), shape=(8, 8), dtype="float32", serializer=NkCodecZarr3(), compressors=None)
        with pytest.raises(ValueError, match="chunks shaped"):
            zarr.create_array(str(tmp_path / "c.zarr"), shape=(2, 2, 8, 8, 3), dtype="uint8", serializer=NkCodecZarr3(), compressors=None)
        z2 = zarr.create_array(str(tmp_path / "v2.zarr"), shape=(8, 8), dtype="float32", compressors=NkCodec(), filters=None, zarr_format=2)
        with pytest.raises(ValueError, match="uint8"):  # format 2 has no creation hook: the first write fails
            z2[:] = 1.0


@pytest.mark.parametrize("preset, options", [("rle", {}), ("near-lossless", {"max_error": 0})])
def test_numcodecs_conformance(preset, options):
    """numcodecs' own conformance helpers that apply to an image codec (exact presets,
    so that the arrays come back equal; 1-D byte buffers are not images)."""
    from numcodecs.tests.common import check_config, check_encode_decode_array, check_err_encode_object_buffer

    codec = NkCodec(quality=3, preset=preset, **options)
    for chunk in (photo((24, 40, 3)), photo((17, 9)), np.stack([photo((16, 16, 4), seed=s) for s in range(3)])):
        check_encode_decode_array(chunk, codec)
    check_config(codec)
    check_err_encode_object_buffer(codec)
    with pytest.raises(TypeError):
        codec.decode(codec.encode(photo((8, 8, 3))), out=np.empty((8, 8, 3), dtype=object))


@pytest.mark.parametrize(
    "settings, match", [({"quality": 12}, "quality"), ({"preset": "nope"}, "unknown preset"), ({"k": 0, "preset": "palette"}, "palette size k")]
)
def test_zarr3_codec_settings_are_checked_when_the_codec_is_made(settings, match):
    with pytest.raises(ValueError, match=match):
        NkCodecZarr3(**settings)
    with pytest.raises(ValueError, match=match):  # so no array is created with them
        zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 8, 3), chunks=(8, 8, 3), dtype="uint8", serializer=NkCodecZarr3(**settings), compressors=None)


def test_a_chunk_with_too_many_channels_says_so():
    with pytest.raises(ValueError, match="5 channels; nkcodec codes 1 to 4 .*near-lossless and rle code up to 16"):
        NkCodec().encode(np.zeros((4, 4, 5), np.uint8))


@pytest.mark.parametrize("shape", [(40, 56), (2, 30, 20, 3), (30, 20, 11)])
def test_near_lossless_codes_uint16_and_many_channel_chunks(shape):
    rng = np.random.default_rng(4)
    chunk = (np.cumsum(rng.integers(0, 64, shape), axis=-2) % 65536).astype(np.uint16)
    for max_error in (0, 5):
        codec = NkCodec(preset="near-lossless", max_error=max_error)
        out = codec.decode(codec.encode(chunk))
        assert out.dtype == np.uint16 and out.shape == chunk.shape
        assert int(np.abs(out.astype(np.int64) - chunk).max()) <= max_error
    with pytest.raises(ValueError, match="not uint16; presets near-lossless and rle code uint16"):
        NkCodec(preset="palette").encode(chunk)


def test_a_zarr3_array_of_16_bit_stacks(tmp_path):
    stack = (np.arange(2 * 32 * 24 * 9).reshape(2, 32, 24, 9) * 7 % 65536).astype(np.uint16)
    z = zarr.create_array(
        str(tmp_path / "s.zarr"),
        shape=stack.shape,
        chunks=(1, 32, 24, 9),
        dtype="uint16",
        serializer=NkCodecZarr3(preset="near-lossless", max_error=0),
        compressors=None,
    )
    z[:] = stack
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"))[:], stack)
    with pytest.raises(ValueError, match="codes uint8 chunks, not uint16"):
        zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 8), chunks=(8, 8), dtype="uint16", serializer=NkCodecZarr3(preset="palette"), compressors=None)
