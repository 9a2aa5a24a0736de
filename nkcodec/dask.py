"""Coding a folder of images on a ``dask.distributed`` cluster.

:func:`code_files` splits the files into tasks of a few files each and runs
them on the cluster's workers.  Each worker process holds one
:class:`~nkcodec.Codec` per configuration (:func:`worker_codec`), so the
weights load and the nets compile once per worker, not once per task, and
within a task the files go through the batched pipeline.  Outputs are
written atomically by the workers (the folder must be one they can reach);
a file that fails is reported and the others go on.

The CLI runs it with ``--scheduler``::

    python -m nkcodec encode DIR/*.png -o OUT --scheduler tcp://host:8786
    python -m nkcodec encode DIR/*.png -o OUT --scheduler local:2     # a LocalCluster of 2 processes

For arrays, the numcodecs codec (:mod:`nkcodec.zarr`) is the way: a Zarr
array written with it is read by ``dask.array.from_zarr``, each chunk
decoded on a worker.  Needs the ``dask`` extra: ``pip install "nkcodec[dask]"``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

__all__ = ["code_files", "worker_codec", "client_for"]

_CODECS = {}
_LOCK = threading.Lock()


def _malloc_for_large_buffers() -> None:
    """Undo what distributed's nanny does to glibc's malloc in its workers.

    It sets ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches off glibc's
    dynamic mmap threshold: every large NumPy or XLA buffer then becomes a
    fresh ``mmap`` and pays its page faults again, and nkcodec ran 50% slower
    in a worker than outside one (8 Kodak images, one at a time: 1.16 s
    against 0.76 s; with this, 0.76 s).  Large buffers stay in the heap up
    to 64 MiB, and up to 256 MiB of free heap is kept.  glibc only; elsewhere
    nothing is changed."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def worker_codec(config: dict):
    """This process's :class:`~nkcodec.Codec` for ``config`` (``Codec.get_config()``), made once."""
    from .codec import Codec

    key = json.dumps(config, sort_keys=True)
    with _LOCK:
        if key not in _CODECS:
            if not _CODECS:
                _malloc_for_large_buffers()
            _CODECS[key] = Codec.from_config(config)
        return _CODECS[key]


def _task(mode: str, config: dict, pairs: list) -> list:
    """Code ``pairs`` of (input, output) paths on a worker: [(input, output line or None, error or None)]."""
    from .imageio import image_format, read_image, write_atomic, write_image

    codec = worker_codec(config)
    out = []
    if mode == "encode":
        results = codec.encode_many(pairs, load=lambda p: read_image(p[0]), errors="yield")
    else:
        results = codec.decode_many(pairs, load=lambda p: Path(p[0]).read_bytes(), errors="yield")
    for (src, dst), r in zip(pairs, results):
        if isinstance(r, Exception):
            out.append((src, None, f"{type(r).__name__}: {r}"))
            continue
        try:
            if mode == "encode":
                write_atomic(Path(dst), lambda tmp, r=r: tmp.write_bytes(r))
                out.append((src, f"{dst}: {len(r)} bytes", None))
            else:
                fmt, opts = image_format(dst, 1 if r.ndim == 2 else r.shape[2])
                write_atomic(Path(dst), lambda tmp, r=r, fmt=fmt, opts=opts: write_image(tmp, r, fmt, **opts))
                out.append((src, f"{dst}: {r.shape[1]}x{r.shape[0]}", None))
        except OSError as e:
            out.append((src, None, f"{type(e).__name__}: {e}"))
    return out


def client_for(address: str):
    """A ``distributed.Client``: ``local:N`` starts a LocalCluster of N worker
    processes (one thread each) on this machine; anything else is a scheduler address."""
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        return Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None))
    return Client(address)


def code_files(client, mode: str, pairs: list, config: dict, files_per_task: int = 16):
    """Encode (``mode="encode"``) or decode each (input, output) of ``pairs`` on
    ``client``'s cluster with the codec of ``config``; yields
    (input, output line or None, error or None) in input order."""
    if mode not in ("encode", "decode"):
        raise ValueError(f"mode must be 'encode' or 'decode', got {mode!r}")
    pairs = [(str(a), str(b)) for a, b in pairs]
    tasks = [pairs[i : i + files_per_task] for i in range(0, len(pairs), files_per_task)]
    futures = [client.submit(_task, mode, config, t, pure=False) for t in tasks]
    try:
        for f in futures:
            yield from f.result()
    finally:
        for f in futures:
            f.cancel()
