"""Many images at once: the batched pipeline behind ``Codec.encode_many`` and
``Codec.decode_many`` (and :func:`nkcodec.compress_many`, :func:`nkcodec.decompress_many`).

Coding an image with a learned preset takes two stages: the nets (analysis or
synthesis, XLA on JAX's default device) and the entropy coding (Numba kernels
and the ANS coder, one CPU thread).  One image at a time, they take turns and
the device or the CPU waits.  Here:

* ``lanes`` threads run the nets on device batches: up to ``batch_size``
  images of the same padded size at once;
* meanwhile a pool of ``workers`` runs the entropy coding of the images before
  them: threads (every entropy decoder is compiled code that releases the
  GIL, so decoding threads scale, measured in ``docs/batch.md``), or
  processes on request;
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

This module is the engine (:func:`encode_pipeline`, :func:`decode_pipeline`)
and knows nothing of the codec: :mod:`nkcodec.codec` hands it the stages.

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

from .config import cpu_count
from .errors import check_int

__all__ = [
    "encode_pipeline",
    "decode_pipeline",
    "check_options",
    "done",
    "chunks",
    "OPTIONS_DOC",
    "default_batch_size",
    "default_lanes",
    "default_workers",
    "device_name",
    "cpu_count",
]  # cpu_count: re-exported from config

ERRORS = ("raise", "yield")
POOLS = ("auto", "thread", "process")


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
    synthesis 5x faster per pixel than one image on an H200: ``shared/models/README.md``,
    measured by ``benchmarks/gpu_batch_check.py``)."""
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


def check_options(batch_size, lanes, workers, depth, errors, pool=None):
    """The pipeline's options with their defaults filled in:
    (batch_size, lanes, workers, depth, pool); ValueError for a bad one."""

    def positive(name, v):
        return check_int(v, name, 1)

    batch_size = positive("batch_size", default_batch_size() if batch_size is None else batch_size)
    lanes = positive("lanes", default_lanes() if lanes is None else lanes)
    workers = positive("workers", default_workers() if workers is None else workers)
    depth = positive("depth", 2 * (lanes * batch_size + workers) if depth is None else depth)
    if depth < batch_size:
        raise ValueError(f"depth ({depth}) must be at least batch_size ({batch_size})")
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS}, got {errors!r}")
    if pool is not None:
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if pool == "auto":  # threads: the entropy decoders release the GIL (docs/batch.md)
            pool = "thread"
    return batch_size, lanes, workers, depth, pool


OPTIONS_DOC = """
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


def done(value=None, error=None) -> Future:
    """A finished future: ``value``, or ``error`` raised by its ``result()``."""
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


def chunks(items: list, batch_size: int):
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
            return [done(error=e)] * n

    return run


def encode_pipeline(items, nets, *, batch_size, lanes, workers, depth, errors):
    """Run ``nets(batch, pool)`` on ``lanes`` threads, one batch of up to
    ``batch_size`` items at a time; it returns a future per item (the entropy
    work it submitted to ``pool``, ``workers`` threads).  Yields the items'
    results in input order, at most ``depth`` items in flight."""
    nets_pool = ThreadPoolExecutor(lanes, thread_name_prefix="nkcodec-nets")
    pool = ThreadPoolExecutor(workers, thread_name_prefix="nkcodec-entropy")

    def start(batch):
        return nets_pool.submit(_guarded(nets, len(batch)), batch, pool)

    return _run(iter(items), batch_size, depth, start, errors, [nets_pool, pool])


def decode_pipeline(items, entropy, synthesize, *, batch_size, lanes, workers, depth, errors, pool, load=None):
    """Run ``entropy(item)`` for every item in a pool of ``workers`` threads or
    processes (``pool``: a process pool gets ``entropy(bytes(item), False)``,
    so ``entropy`` must be a module-level function), then
    ``synthesize([(item, future), ...])`` on ``lanes`` threads, a batch at a
    time; it returns a future per item.  Yields the results in input order.
    ``load(item)`` runs first (in the pool; on the calling thread for a
    process pool), and its errors are the item's."""
    nets_pool = ThreadPoolExecutor(lanes, thread_name_prefix="nkcodec-nets")
    if pool == "process":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: forking a process that runs XLA's threads is unsafe
        workers_pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    else:
        workers_pool = ThreadPoolExecutor(workers, thread_name_prefix="nkcodec-entropy")

    def loaded_entropy(item):
        data = load(item) if load is not None else item
        return data, entropy(data)

    def submit(item):
        try:
            if pool == "process":  # the item crosses to the process as bytes
                data = bytes(load(item) if load is not None else item)
                return data, workers_pool.submit(entropy, data, False)
            f = workers_pool.submit(loaded_entropy, item)
            return None, f
        except Exception as e:
            return None, done(error=e)

    def start(batch):
        staged = [submit(item) for item in batch]  # the entropy stages start now, the synthesis when they end
        return nets_pool.submit(_guarded(synthesize, len(batch)), staged)

    return _run(iter(items), batch_size, depth, start, errors, [nets_pool, workers_pool])


def _worker_init() -> None:
    """A decoding process: CPU-only JAX (the parent owns the accelerator), and
    Ctrl-C is the parent's to handle."""
    import signal

    os.environ["JAX_PLATFORMS"] = "cpu"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
