"""Latent codecs: how a learned preset turns its quantised latent into sections and back
(CompressAI's "latent codec").  The learned presets ``scalar``, ``context``,
``scalar-rle``, ``cluster`` and ``paper`` share the nets and differ only here.

A latent codec declares the parameter stages it writes (``stream_params``, checked by
:func:`nkcodec.format.schema.validate` before :meth:`LatentCodec.decode` reads them) and
codes with the loaded model's integer tables (``m``, a
:class:`~nkcodec.nets.runtime.ModelRuntime`, used for its tables only: no JAX here).

Examples
--------
>>> import numpy as np
>>> codec = PaperLatent(k=256)
>>> y = np.zeros((2, 3, 4), np.int32); y[0, 1, 2] = 5
>>> params, sections = codec.encode(None, y, quality=4)
>>> params
{'paper': {'k': 256}}
>>> class M: latent_channels = 4
>>> bool((codec.decode(M(), params, sections, (2, 3), quality=4) == y).all())
True
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptStreamError
from ..format.limits import MAX_PIXELS
from ..format.schema import COUNT, Int
from . import rle
from .entropy import MAX_LATENT, check_length, decode_adaptive, decode_symbols, encode_adaptive, encode_symbols, escape_count, from_symbols, to_symbols
from .kmeans import MAX_K
from .varint import pack as pack_varints
from .varint import unpack as unpack_varints

__all__ = ["LatentCodec", "ScalarLatent", "ContextLatent", "RleLatent", "ClusterLatent", "PaperLatent"]


class LatentCodec:
    """The interface: :meth:`encode` an int latent (h, w, M) to ``(params, sections)``,
    :meth:`decode` them back.  ``stream_params`` is the ``{stage: {key: type}}`` it writes."""

    stream_params: dict = {}

    def encode(self, m, y: np.ndarray, quality: int):
        """``(params, sections)`` of the int latent ``y`` (h, w, M) coded at ``quality``."""
        raise NotImplementedError

    def decode(self, m, params: dict, sections: list, hw: tuple, quality: int) -> np.ndarray:
        """The int32 latent (h, w, M) from a stream's (checked) ``params`` and ``sections``."""
        raise NotImplementedError


def _expect(sections: list, n: int, what: str) -> None:
    if len(sections) != n:
        raise CorruptStreamError(f"{what} stream has {len(sections)} sections, expected {n}")


def _code_with_model_tables(m, y: np.ndarray, quality: int):
    """ANS-code an int latent (..., M) channel by channel with the model's integer
    tables for ``quality``; out-of-table values escape.  Returns (params, [ans bytes, escape bytes])."""
    tables = m.tables_for(quality)
    lo = tables["lo"].astype(np.int64)[:, None]
    size = tables["size"].astype(np.int64)[:, None]
    vals = np.moveaxis(y.reshape(-1, y.shape[-1]), 1, 0).astype(np.int64)  # (M, n)
    idx, esc = to_symbols(vals, lo, size)
    data = encode_symbols(list(idx), m.int_tables(quality))
    return {"escapes": int(esc.sum())}, [data, pack_varints(vals[esc])]


def _decode_with_model_tables(m, params: dict, sections: list, n: int, quality: int) -> np.ndarray:
    """Inverse of :func:`_code_with_model_tables`: (n, M) int32."""
    n_esc = escape_count(params, n * m.latent_channels)
    check_length(len(sections[0]), n * float(m.int_tables(quality).min_bits().sum()), "latent section")
    idx = np.stack(decode_symbols(sections[0], m.int_tables(quality), [n] * m.latent_channels)).astype(np.int64)
    tables = m.tables_for(quality)
    y, esc = from_symbols(idx, tables["lo"].astype(np.int64)[:, None], tables["size"].astype(np.int64)[:, None])
    if int(esc.sum()) != n_esc:
        raise CorruptStreamError("escape count disagrees with the decoded symbols")
    if n_esc:
        y[esc] = unpack_varints(sections[1], n_esc)
    elif sections[1]:
        raise CorruptStreamError("unexpected escape data")
    if np.abs(y).max(initial=0) > MAX_LATENT:
        raise CorruptStreamError("latent value out of range")
    return np.ascontiguousarray(y.T).astype(np.int32)


class ScalarLatent(LatentCodec):
    """Per-channel ANS coding with the model's integer frequency tables (escapes for
    out-of-table values): the ``scalar`` preset."""

    stream_params = {"latent": {"escapes": COUNT}}

    def encode(self, m, y, quality):
        params, sections = _code_with_model_tables(m, y, quality)
        return {"latent": params}, sections

    def decode(self, m, params, sections, hw, quality):
        _expect(sections, 2, "scalar")
        return _decode_with_model_tables(m, params["latent"], sections, hw[0] * hw[1], quality).reshape(*hw, -1)


class ContextLatent(LatentCodec):
    """Each latent channel coded with tables chosen by, and around a mean predicted from,
    the channels coded before it and (version 2) its decoded spatial neighbours
    (:mod:`nkcodec.coding.context`): the ``context`` preset, and the base of near-lossless
    version 1.  Streams name their context model version, so older ones keep decoding."""

    stream_params = {"latent": {"escapes": COUNT, "v?": Int(1, 2)}}

    def encode(self, m, y, quality):
        from .context import code_latent

        params, sections = code_latent(m.context_tables(quality), y)
        return {"latent": params}, sections

    def decode(self, m, params, sections, hw, quality):
        from .context import decode_latent, stream_version

        _expect(sections, 2, "context")
        latent = params["latent"]
        try:
            ct = m.context_tables(quality, stream_version(latent))
        except ValueError as e:
            raise CorruptStreamError(str(e)) from None
        return decode_latent(ct, latent, sections, hw).reshape(*hw, -1)


_RUN_CAP = 64  # run lengths 1..63 get a symbol each; 64 means "64 or more" (+ varint)


class RleLatent(LatentCodec):
    """Ablation (``scalar-rle``): NK-RLE (key = run**2) over the channel-major latent,
    then ANS coding of the run values and run lengths with tables carried in the stream."""

    stream_params = {"rle": {"pairs": Int(1, 4 * MAX_PIXELS), "vmin": Int(-MAX_LATENT, MAX_LATENT)}}

    def encode(self, m, y, quality):
        sym = np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(-1)
        values, keys = rle.encode(sym)
        lengths = np.sqrt(keys.astype(np.float64)).astype(np.int64)  # exact: keys are squares < 2**52
        vmin, vmax = int(values.min()), int(values.max())
        if vmax - vmin >= 1 << 16:
            raise ValueError("latent range too wide for the scalar-rle preset")
        lsym = np.minimum(lengths, _RUN_CAP) - 1
        data = encode_adaptive([values.astype(np.int64) - vmin, lsym], [vmax - vmin + 1, _RUN_CAP])
        params = {"rle": {"pairs": int(values.size), "vmin": vmin}}
        return params, [data, pack_varints(lengths[lengths >= _RUN_CAP] - _RUN_CAP)]

    def decode(self, m, params, sections, hw, quality):
        _expect(sections, 2, "scalar-rle")
        h, w = hw
        n = h * w * m.latent_channels
        pairs, vmin = params["rle"]["pairs"], params["rle"]["vmin"]
        if pairs > n:
            raise CorruptStreamError(f"{pairs} NK-RLE pairs for a latent of {n} values")
        vsym, lsym = decode_adaptive(sections[0], [pairs, pairs])
        lengths = lsym.astype(np.int64) + 1
        long_runs = lengths == _RUN_CAP
        lengths[long_runs] += unpack_varints(sections[1], int(long_runs.sum()))
        if np.any(lengths < 1):
            raise CorruptStreamError("negative run length")
        values = (vsym.astype(np.int64) + vmin).astype(np.int32)
        keys = (lengths.astype(np.uint64)) ** np.uint64(2)
        sym = rle.decode(values, keys, cap=n)
        if sym.size != n:
            raise CorruptStreamError(f"latent has {sym.size} symbols, expected {n}")
        return np.moveaxis(sym.reshape(m.latent_channels, h, w), 0, 2)


class ClusterLatent(LatentCodec):
    """Ablation (``cluster``), "cluster-based reconstruction": the latent vectors (one
    per 16x16 block) are clustered with FAISS k-means (k = 2**(quality+3)); the integer
    centroids are ANS-coded with the model's tables and the labels with an in-stream
    table; the decoder looks the centroids up."""

    stream_params = {"cluster": {"k": Int(1, MAX_PIXELS), "escapes": COUNT}}

    def encode(self, m, y, quality):
        from . import kmeans

        vecs = y.reshape(-1, y.shape[2]).astype(np.float32)
        k = min(vecs.shape[0], 2 ** (quality + 3))
        cent = np.round(kmeans.fit(vecs, k, seed=0)).astype(np.int32)
        cent = np.unique(cent, axis=0)
        labels = kmeans.assign(vecs, cent.astype(np.float32))
        cparams, csections = _code_with_model_tables(m, cent, quality)
        lab = encode_adaptive([labels], [cent.shape[0]])
        return {"cluster": {"k": int(cent.shape[0]), **cparams}}, [*csections, lab]

    def decode(self, m, params, sections, hw, quality):
        _expect(sections, 3, "cluster")
        h, w = hw
        k = params["cluster"]["k"]
        if k > h * w:
            raise CorruptStreamError(f"{k} clusters for a latent of {h * w} positions")
        cent = _decode_with_model_tables(m, params["cluster"], sections[:2], k, quality)
        (labels,) = decode_adaptive(sections[2], [h * w])
        if labels.size and int(labels.max()) >= k:
            raise CorruptStreamError("cluster label out of range")
        return cent[labels].reshape(h, w, -1)


class PaperLatent(LatentCodec):
    """The paper as written (``paper``): NK-RLE (key = run**2) over the channel-major
    latent, the pairs written as varints, no entropy coder.  ``k`` is the palette size
    the preset used before the analysis (recorded, not needed to decode)."""

    stream_params = {"paper": {"k": Int(1, MAX_K)}}

    def __init__(self, k: int = 256):
        self.k = k

    def encode(self, m, y, quality):
        sym = np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(-1)
        return {"paper": {"k": self.k}}, [rle.pack(*rle.encode(sym))]

    def decode(self, m, params, sections, hw, quality):
        _expect(sections, 1, "paper")
        h, w = hw
        n = h * w * m.latent_channels
        values, keys = rle.unpack(sections[0], np.int32, max_pairs=n)
        sym = rle.decode(values, keys, cap=n)
        if sym.size != n:
            raise CorruptStreamError(f"latent has {sym.size} symbols, expected {n}")
        if np.abs(sym).max(initial=0) > MAX_LATENT:
            raise CorruptStreamError("latent value out of range")
        return np.moveaxis(sym.reshape(m.latent_channels, h, w), 0, 2)
