"""The batched pipeline (nkcodec.batch): order, identity with one-at-a-time
coding, errors in the middle, bounded memory, no threads left behind."""

import itertools
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nkcodec
from nkcodec import batch, zoo
from nkcodec.errors import CorruptStreamError

from .test_learned import photo

# sizes that share a padded size (batched together) and sizes that do not, every channel count
SHAPES = [(40, 56, 3), (33, 60, 3), (64, 64), (20, 30, 4), (40, 56, 1), (70, 90, 3), (48, 48, 3), (30, 20, 2)]


def _images(n=len(SHAPES), seed=0):
    return [photo(SHAPES[i % len(SHAPES)], seed=seed + i) for i in range(n)]


def _threads():
    return [t for t in threading.enumerate() if t.name.startswith("nkcodec-")]


@pytest.mark.parametrize(
    "preset, options",
    [("default", {}), ("scalar", {}), ("paper", {}), ("cluster", {}), ("rle", {}), ("near-lossless", {"max_error": 2})],
)
@pytest.mark.parametrize("batch_size, lanes", [(1, 2), (4, 1)])
def test_same_bytes_and_pixels_in_order(preset, options, batch_size, lanes):
    images = _images()
    codec = nkcodec.Codec(3, preset, **options)
    one = [codec.encode(im) for im in images]
    many = list(codec.encode_many(images, batch_size=batch_size, lanes=lanes, workers=2))
    assert many == one
    decoded = list(nkcodec.decompress_many(one, batch_size=batch_size, lanes=lanes, workers=2))
    assert len(decoded) == len(one)
    for d, s in zip(decoded, one):
        ref = nkcodec.decompress(s)
        assert d.shape == ref.shape and d.dtype == np.uint8
        np.testing.assert_array_equal(d, ref)


def test_mixed_presets_qualities_and_models_decode_in_one_stream():
    images = _images(6, seed=3)
    streams = [
        nkcodec.compress(images[0], 1),
        nkcodec.compress(images[1], 8),
        nkcodec.compress(images[2], 5, "scalar", model="nk64-3"),
        nkcodec.compress(images[3], 4, "rle"),
        nkcodec.compress(images[4], 2, model="nk64-5"),
        nkcodec.compress(images[5], 7),
    ]
    decoded = list(nkcodec.decompress_many(streams, batch_size=8))
    for d, s in zip(decoded, streams, strict=True):
        np.testing.assert_array_equal(d, nkcodec.decompress(s))


def test_batched_nets_equal_one_at_a_time():
    m = zoo.load_model()
    rgbs = [photo((40 + i, 50 - i, 3), seed=i) for i in range(3)]  # one padded size
    assert len({m.analysis_key(im.shape) for im in rgbs}) == 1
    for y, im in zip(m.encode_latents(rgbs, 4), rgbs):
        np.testing.assert_array_equal(y, m.encode_latent(im, 4))
    ys = [m.encode_latent(im, q) for im, q in zip(rgbs, (1, 4, 8))]
    shapes = [im.shape[:2] for im in rgbs]
    for x, y, q, hw in zip(m.decode_latents(ys, [1, 4, 8], shapes), ys, (1, 4, 8), shapes):
        np.testing.assert_array_equal(x, m.decode_latent(y, q, hw))
    assert m.analysis_key((2000, 10)) is None and m.synthesis_key((100, 2)) is None  # tiled: one at a time


def test_large_images_go_one_at_a_time_in_tiles():
    images = [photo((1100, 40, 3)), photo((30, 30, 3))]
    one = [nkcodec.compress(im, 2) for im in images]
    assert list(nkcodec.compress_many(images, 2, batch_size=2)) == one
    for d, s in zip(nkcodec.decompress_many(one, batch_size=2), one):
        np.testing.assert_array_equal(d, nkcodec.decompress(s))


def test_empty_input():
    assert list(nkcodec.compress_many([])) == []
    assert list(nkcodec.decompress_many(iter(()))) == []


def test_a_bad_image_raises_its_own_error_in_its_turn():
    images = _images(5)
    images[2] = images[2].astype(np.float32)
    with pytest.raises(ValueError) as one:
        nkcodec.compress(images[2])
    out = []
    with pytest.raises(ValueError) as many:
        for data in nkcodec.compress_many(images, batch_size=2):
            out.append(data)
    assert str(many.value) == str(one.value)
    assert out == [nkcodec.compress(im) for im in images[:2]]
    assert not _threads()


def test_errors_yield_goes_on():
    images = _images(5)
    images[1] = np.zeros((3, 3, 5), np.uint8)
    out = list(nkcodec.compress_many(images, errors="yield", batch_size=2))
    assert isinstance(out[1], ValueError) and "shape" in str(out[1])
    assert [o for i, o in enumerate(out) if i != 1] == [nkcodec.compress(im) for i, im in enumerate(images) if i != 1]


def test_a_corrupt_stream_raises_corrupt_stream_error_in_its_turn():
    streams = [nkcodec.compress(im) for im in _images(4)]
    streams.insert(2, streams[1][:-7])
    streams.insert(4, b"not a stream")
    out = list(nkcodec.decompress_many(streams, errors="yield", batch_size=4))
    assert [type(o) for o in out] == [np.ndarray, np.ndarray, CorruptStreamError, np.ndarray, CorruptStreamError, np.ndarray]
    got = []
    with pytest.raises(CorruptStreamError):
        for image in nkcodec.decompress_many(streams):
            got.append(image)
    assert len(got) == 2
    assert not _threads()


def test_retired_model_error_passes_through():
    from .common import FIXTURES

    data = (FIXTURES / "paper_v1_model1.nkc").read_bytes()
    (out,) = nkcodec.decompress_many([data], errors="yield")
    assert isinstance(out, nkcodec.RetiredModelError)


def test_load_errors_are_the_items_errors(tmp_path):
    paths = [tmp_path / f"{i}.nkc" for i in range(3)]
    for p, im in zip(paths, _images(3)):
        p.write_bytes(nkcodec.compress(im, preset="rle"))
    paths[1].unlink()
    out = list(nkcodec.decompress_many(paths, load=lambda p: p.read_bytes(), errors="yield"))
    assert isinstance(out[1], FileNotFoundError) and isinstance(out[2], np.ndarray)


def test_endless_input_runs_in_bounded_memory_and_closing_stops_it():
    taken = itertools.count()
    image = photo((24, 24, 3))

    def endless():
        while True:
            next(taken)
            yield image

    it = nkcodec.compress_many(endless(), preset="scalar", batch_size=2, lanes=1, workers=1, depth=6)
    first = list(itertools.islice(it, 20))
    assert len(set(first)) == 1
    pulled = next(taken)
    assert pulled <= 20 + 6 + 2  # what was yielded, the window and one batch
    it.close()
    assert not _threads()


def test_interrupt_from_the_input_leaves_no_threads():
    images = _images(3)

    def interrupted():
        yield from images
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(nkcodec.compress_many(interrupted(), batch_size=1))
    with pytest.raises(KeyboardInterrupt):
        list(nkcodec.decompress_many(itertools.chain([nkcodec.compress(images[0])], interrupted())))
    assert not _threads()


def test_concurrent_callers_share_one_codec():
    codec = nkcodec.Codec(5)
    lists = [_images(4, seed=10 * k) for k in range(3)]
    expected = [[codec.encode(im) for im in images] for images in lists]
    with ThreadPoolExecutor(3) as ex:
        got = list(ex.map(lambda images: list(codec.encode_many(images, batch_size=2)), lists))
        decoded = list(ex.map(lambda streams: list(codec.decode_many(streams, batch_size=2)), got))
    assert got == expected
    for streams, images in zip(got, decoded):
        for s, d in zip(streams, images):
            np.testing.assert_array_equal(d, nkcodec.decompress(s))


def test_process_pool_decodes_the_same_pixels():
    streams = [nkcodec.compress(im) for im in _images(3)] + [nkcodec.compress(_images(1)[0], preset="rle"), b"junk"]
    out = list(nkcodec.decompress_many(streams, pool="process", workers=2, errors="yield"))
    for d, s in zip(out[:4], streams):
        np.testing.assert_array_equal(d, nkcodec.decompress(s))
    assert isinstance(out[4], CorruptStreamError)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_auto_pool_is_threads_on_every_backend(monkeypatch, backend):
    """The entropy decoders release the GIL, so "auto" no longer picks processes on an
    accelerator (docs/batch.md); "process" still does."""
    from nkcodec import batch

    monkeypatch.setattr(batch, "_backend", lambda: backend)
    assert batch.check_options(None, None, 2, None, "raise", "auto")[4] == "thread"
    assert batch.check_options(None, None, 2, None, "raise", "process")[4] == "process"


@pytest.mark.parametrize(
    "options, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"workers": True}, "workers"),
        ({"lanes": 1.5}, "lanes"),
        ({"depth": 1, "batch_size": 4}, "depth"),
        ({"errors": "ignore"}, "errors"),
    ],
)
def test_bad_options_fail_at_the_call(options, match):
    with pytest.raises(ValueError, match=match):
        nkcodec.compress_many([], **options)
    with pytest.raises(ValueError, match=match):
        nkcodec.decompress_many([], **options)
    with pytest.raises(ValueError, match="pool"):
        nkcodec.decompress_many([], pool="fork")


def test_device_is_named():
    assert batch.device_name().startswith(("cpu", "gpu", "cuda", "tpu", "rocm", "METAL"))
    assert batch.default_batch_size() >= 1 and batch.default_workers() >= 1


def test_ctrl_c_while_waiting_leaves_no_threads():
    # A real SIGINT, with Python's own handler installed for the test: a background job
    # starts Python with SIGINT ignored, where _thread.interrupt_main() would do nothing.
    # The input is bounded: it stops a few batches after the signal was sent, so a lost
    # interrupt fails the test instead of hanging it.
    image = photo((64, 64, 3))
    sent = threading.Event()

    def ctrl_c():  # as the terminal sends it
        sent.set()
        os.kill(os.getpid(), signal.SIGINT)

    def images():
        after = 0
        while after < 200:
            after += sent.is_set()
            yield image

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.2, ctrl_c)  # sent once the first result is in, while the loop waits for more
    got = 0
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in nkcodec.compress_many(images(), batch_size=2):
                got += 1
                if got == 1:
                    timer.start()
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert got > 0
    assert not _threads()
