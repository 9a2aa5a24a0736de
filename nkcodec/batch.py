"""Many images at once: the batched pipeline behind ``Codec.encode_many`` and
``Codec.decode_many`` (and :func:`nkcodec.compress_many`, :func:`nkcodec.decompress_many`).

Coding an image with a learned preset takes two stages: the nets (analysis or
synthesis, XLA on JAX's default device) and the entropy coding (Numba kernels
and the ANS coder, one CPU thread).  One image at a time, they take turns and
the device or the CPU waits.  Here:

* the calling thread runs the nets on device batches: up to ``batch_size``
  images of the same padded size at once;
* meanwhile a pool of ``workers`` runs the entropy coding of the images before
  them: threads, or processes for decoding on an accelerator (the context
  decoder runs a Python loop per channel and holds the GIL, so decoding
  threads do not scale, measured in ``docs/batch.md``);
* results come out in input order, with the same bytes and pixels as
  :meth:`Codec.encode` / :func:`nkcodec.decompress` of each item (tested);
* at most ``depth`` items are in flight, so an endless iterator runs in
  bounded memory;
* an item that fails raises its own error, the one one-at-a-time coding gives
  (``errors="yield"``: the exception object is yielded in its place and the
  rest go on); closing the iterator or Ctrl-C cancels what is queued and
  leaves no threads or processes behind.

Presets whose coding is not one latent (``rle``, ``palette``,
``near-lossless``) are coded whole in the pool, in threads.

Examples
--------
>>> import numpy as np, nkcodec
>>> images = [np.full((8, 8), v, np.uint8) for v in range(3)]
>>> streams = list(nkcodec.compress_many(images, preset="rle"))
>>> [int(im[0, 0]) for im in nkcodec.decompress_many(streams)]
[0, 1, 2]
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import numpy as np

__all__ = ["encode_many", "decode_many", "default_batch_size", "default_lanes", "default_workers", "device_name", "cpu_count"]

ERRORS = ("raise", "yield")
POOLS = ("auto", "thread", "process")


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _backend() -> str:
    import jax

    return jax.default_backend()


def device_name() -> str:
    """The JAX device the nets run on, in words: ``"cpu (2 cores)"``, ``"gpu: NVIDIA H200"``."""
    import jax

    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({cpu_count()} cores)"
    n = len(jax.devices())
    return f"{d.platform}: {d.device_kind}" + (f" (x{n})" if n > 1 else "")


def default_batch_size() -> int:
    """Images per device batch: 1 on CPU (batches there measured no faster per
    pixel, docs/batch.md), 16 on an accelerator (where a batch of 16 ran the
    synthesis 5x faster per pixel than one image, ``models/README.md``)."""
    return 1 if _backend() == "cpu" else 16


def default_lanes() -> int:
    """Threads that run the nets: 2 on CPU (two nets at once keep the cores
    busier than one net's own threads do; 3 measured no faster on 2 cores,
    docs/batch.md), 2 on an accelerator (one batch is copied and set up while
    the other runs)."""
    return 2


def default_workers() -> int:
    """Entropy coders in the pool: one per core but the one that feeds the device
    (on 2 CPU cores: 1, measured as fast as 2 for encoding and faster for decoding)."""
    return max(1, cpu_count() - 1)


def _check_options(batch_size, lanes, workers, depth, errors):
    def positive(name, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
        return int(v)

    batch_size = positive("batch_size", default_batch_size() if batch_size is None else batch_size)
    lanes = positive("lanes", default_lanes() if lanes is None else lanes)
    workers = positive("workers", default_workers() if workers is None else workers)
    depth = positive("depth", 2 * (lanes * batch_size + workers) if depth is None else depth)
    if depth < batch_size:
        raise ValueError(f"depth ({depth}) must be at least batch_size ({batch_size})")
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS}, got {errors!r}")
    return batch_size, lanes, workers, depth


_OPTIONS_DOC = """
    batch_size : int
        Images per device batch (default :func:`default_batch_size`).
    lanes : int
        Threads that run the nets, each on one batch at a time (default
        :func:`default_lanes`).
    workers : int
        Entropy coders in the pool (default :func:`default_workers`).
    depth : int
        Items in flight at most (taken from the input, not yet yielded);
        default ``2 * (lanes * batch_size + workers)``.  Bounds the memory:
        about ``depth`` images and their streams are held at once.
    load : callable
        Applied to each item first, in the pool (a file reader, say); its
        errors are that item's errors.
    errors : {"raise", "yield"}
        A failing item raises its error when its turn comes (after the items
        before it), or, with ``"yield"``, its exception object is yielded in
        its place and coding goes on."""


def encode_many(codec, images, *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise"):
    batch_size, lanes, workers, depth = _check_options(batch_size, lanes, workers, depth, errors)
    return _encode(codec, iter(images), batch_size, lanes, workers, depth, load, errors)


encode_many.__doc__ = (
    """Compress ``images`` with ``codec`` (a :class:`~nkcodec.Codec`): an iterator
    of ``.nkc`` bytes in input order, each equal to ``codec.encode(image)``.

    Parameters
    ----------
    images : iterable
        uint8 images (any iterable, endless ones included), or what ``load``
        turns into one."""
    + _OPTIONS_DOC
)


def decode_many(streams, *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise", pool="auto"):
    batch_size, lanes, workers, depth = _check_options(batch_size, lanes, workers, depth, errors)
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if pool == "auto":
        pool = "process" if workers > 1 and _backend() != "cpu" else "thread"
    return _decode(iter(streams), batch_size, lanes, workers, depth, load, errors, pool)


decode_many.__doc__ = (
    """Decompress ``.nkc`` ``streams`` (bytes; presets, models and sizes may mix):
    an iterator of uint8 images in input order, each equal to
    ``nkcodec.decompress(stream)``.

    Parameters
    ----------
    streams : iterable
        ``.nkc`` bytes, or what ``load`` turns into them."""
    + _OPTIONS_DOC
    + """
    pool : {"auto", "thread", "process"}
        What the entropy decoders run in.  ``"auto"``: threads on the CPU
        backend, processes on an accelerator, where the entropy decoding is
        the limit and threads would share one GIL."""
)


def _done(value=None, error=None) -> Future:
    f = Future()
    if error is not None:
        f.set_exception(error)
    else:
        f.set_result(value)
    return f


def _outcome(batch: Future, k: int, errors: str):
    """Item ``k`` of a batch whose future gives the items' futures."""
    try:
        return batch.result()[k].result()
    except Exception as e:
        if errors == "yield":
            return e
        raise


def _chunks(items: list, batch_size: int):
    """``items`` in device batches of at most ``batch_size``, sizes powers of two
    (so a shape compiles for a few batch sizes only)."""
    i = 0
    while i < len(items):
        n = min(batch_size, len(items) - i)
        n = 1 << (n.bit_length() - 1)
        yield items[i : i + n]
        i += n


def _run(source, batch_size: int, depth: int, start, errors: str, pools: list):
    """Take batches from ``source`` while fewer than ``depth`` items are in
    flight, ``start(batch)`` each (a future of the items' futures), and yield
    the items in order; on exit, cancel what has not started and shut the
    pools down (no thread or process is left behind)."""
    pending = deque()  # (batch future, index in batch), in input order
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) + batch_size <= depth:
                batch = list(islice(source, batch_size))
                exhausted = len(batch) < batch_size
                if batch:
                    f = start(batch)
                    pending.extend((f, k) for k in range(len(batch)))
            if not pending:
                return
            f, k = pending.popleft()
            yield _outcome(f, k, errors)
    finally:
        for f, _ in pending:
            f.cancel()
        for p in pools:
            if p is not None:
                p.shutdown(wait=True, cancel_futures=True)


def _guarded(fn, n: int):
    """``fn`` for a batch of ``n`` items, with an error that escapes it given to every item."""

    def run(*args):
        try:
            return fn(*args)
        except Exception as e:
            return [_done(error=e)] * n

    return run


# --- encoding -----------------------------------------------------------------


def _encode(codec, source, batch_size, lanes, workers, depth, load, errors):
    nets = ThreadPoolExecutor(lanes, thread_name_prefix="nkcodec-nets")
    pool = ThreadPoolExecutor(workers, thread_name_prefix="nkcodec-entropy")

    def start(batch):
        return nets.submit(_guarded(_encode_batch, len(batch)), codec, batch, pool, load)

    return _run(source, batch_size, depth, start, errors, [nets, pool])


def _encode_batch(codec, batch: list, pool, load) -> list:
    """Futures of the bytes of ``batch``'s items: the nets run here, the entropy coding in ``pool``."""
    from .codec import LatentPreset, check_image

    impl = codec.impl
    out = [None] * len(batch)
    groups = {}  # analysis key -> [(index, image, net input)]
    for i, item in enumerate(batch):
        try:
            image = check_image(load(item) if load is not None else item)
            if not isinstance(impl, LatentPreset):
                out[i] = pool.submit(codec.encode, image)
                continue
            rgb = impl.analysis_input(image)
            key = impl.model.analysis_key(rgb.shape) if impl.batched_analysis else None
            groups.setdefault(key, []).append((i, image, rgb))
        except Exception as e:
            out[i] = _done(error=e)
    for key, members in groups.items():
        for chunk in _chunks(members, 1 if key is None else len(members)):
            try:
                if key is None:
                    ys = [impl.analyse(chunk[0][1])]
                else:
                    ys = impl.model.encode_latents([rgb for _, _, rgb in chunk], impl.quality)
            except Exception as e:
                for i, _, _ in chunk:
                    out[i] = _done(error=e)
                continue
            for (i, image, _), y in zip(chunk, ys):
                out[i] = pool.submit(_encode_entropy, codec, image, y)
    return out


def _encode_entropy(codec, image, y) -> bytes:
    return codec.pack(image, *codec.impl.encode_entropy(image, y))


# --- decoding -----------------------------------------------------------------


class _Latent:
    """What the entropy stage hands to the synthesis: a stream's header, latent and image parts."""

    __slots__ = ("header", "y", "alpha", "gray")

    def __init__(self, header, y, alpha, gray):
        self.header, self.y, self.alpha, self.gray = header, y, alpha, gray


_WHOLE = "whole"  # a process worker's answer for a preset it leaves to the calling process


def _entropy_stage(data, whole: bool = True):
    """Parse a stream and decode all but its synthesis (a :class:`_Latent`), or,
    for a preset that is not one latent, the whole image (``whole=False``: the
    marker :data:`_WHOLE` instead, so a process worker never runs the nets)."""
    from .codec import LatentPreset, check_decoded, decoder_for
    from .container import unpack_container

    header, sections = unpack_container(data)
    impl = decoder_for(header)
    if isinstance(impl, LatentPreset):
        return _Latent(header, *impl.decode_entropy(header, sections))
    if not whole:
        return _WHOLE
    return check_decoded(header, impl.decode(header, sections))


def _worker_init() -> None:
    """A decoding process: CPU-only JAX (the parent owns the accelerator), and
    Ctrl-C is the parent's to handle."""
    import signal

    os.environ["JAX_PLATFORMS"] = "cpu"
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decode(source, batch_size, lanes, workers, depth, load, errors, pool_kind):
    nets = ThreadPoolExecutor(lanes, thread_name_prefix="nkcodec-nets")
    if pool_kind == "process":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: forking a process that runs XLA's threads is unsafe
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="nkcodec-entropy")
    process = pool_kind == "process"

    def submit(item):
        try:
            if process:  # the item crosses to the process as bytes
                data = bytes(load(item) if load is not None else item)
                return data, pool.submit(_entropy_stage, data, False)
            return None, pool.submit(_load_entropy_stage, item, load)
        except Exception as e:
            return None, _done(error=e)

    def start(batch):
        staged = [submit(item) for item in batch]  # the entropy stages start now, the synthesis when they end
        return nets.submit(_guarded(_synthesize, len(batch)), staged)

    return _run(source, batch_size, depth, start, errors, [nets, pool])


def _load_entropy_stage(item, load):
    return _entropy_stage(load(item) if load is not None else item)


def _synthesize(staged: list) -> list:
    """Futures of the images of ``staged`` ((stream bytes or None, future of its
    entropy stage) each), synthesized here in device batches of one model and
    padded latent size."""
    from .codec import LatentPreset, check_decoded, decompress
    from .zoo import model_for_id

    out = [None] * len(staged)
    groups = {}  # (model id, synthesis key) -> [(index, _Latent)]
    for i, (data, f) in enumerate(staged):
        try:
            r = f.result()
            if isinstance(r, str) and r == _WHOLE:  # (a copy: it crossed from a process)
                out[i] = _done(decompress(data))
            elif isinstance(r, np.ndarray):
                out[i] = f
            else:
                m = model_for_id(r.header.model_id)
                groups.setdefault((r.header.model_id, m.synthesis_key(r.y.shape)), []).append((i, r))
        except Exception as e:
            out[i] = _done(error=e)
    for (model_id, key), members in groups.items():
        m = model_for_id(model_id)
        for chunk in _chunks(members, 1 if key is None else len(members)):
            try:
                hs = [r.header for _, r in chunk]
                if key is None:
                    rgbs = [m.decode_latent(chunk[0][1].y, hs[0].quality, (hs[0].height, hs[0].width))]
                else:
                    rgbs = m.decode_latents([r.y for _, r in chunk], [h.quality for h in hs], [(h.height, h.width) for h in hs])
            except Exception as e:
                for i, _ in chunk:
                    out[i] = _done(error=e)
                continue
            for (i, r), rgb in zip(chunk, rgbs):
                try:
                    out[i] = _done(check_decoded(r.header, LatentPreset.decode_finish(rgb, r.alpha, r.gray)))
                except Exception as e:
                    out[i] = _done(error=e)
    return out
