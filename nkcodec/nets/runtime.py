"""Running a model for coding: :class:`ModelRuntime` reads a weights file
(:mod:`.weights_file`) and gives the jitted analysis and synthesis, tiled and
batched, the exact synthesis (:mod:`.exact_v1`, :mod:`.exact_v2`) where the file
carries it, and the integer and context tables built once, safely across
threads.  Which file a model id names is the registry's (:mod:`nkcodec.zoo`).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..config import LATENT_STRIDE as S
from .weights_file import load_params_into, read_groups

__all__ = ["ModelRuntime", "BUILD_LOCK", "NET_TILE", "ENC_HALO", "DEC_HALO", "SYNTHESIS_EXACT32", "SYNTHESIS_EXACT64", "SYNTHESIS_FLOAT"]

# How each kind of model decodes (LoadedModel.synthesis, `info`)
SYNTHESIS_EXACT32 = "exact, float32 GEMMs (fixed-point v2)"
SYNTHESIS_EXACT64 = "exact, float64 (fixed-point v1)"
SYNTHESIS_FLOAT = "float32 (not exact)"
# Codecs may be shared between threads: everything built lazily (models, float
# nets, tables) is built under this lock, once, instead of once per racing thread.
BUILD_LOCK = threading.RLock()


def _once(cache: dict, key, build):
    """``cache[key]``, made by ``build()`` the first time only, even when threads
    race to it (checked without the lock, then again under it)."""
    value = cache.get(key)
    if value is None:
        with BUILD_LOCK:
            value = cache.get(key)
            if value is None:
                value = cache[key] = build()
    return value


def _bucket(n: int, unit: int = 64) -> int:
    return -(-n // unit) * unit


class ModelRuntime:
    """A model loaded from its weights file and run for coding: the jitted analysis and
    synthesis (tiled and batched), the exact synthesis where the file has it, the
    integer and context tables, and the file's metadata."""

    def __init__(self, path, exact32: bool = False, model_id: int | None = None, name: str | None = None):
        from ..config import NetConfig

        self.meta, self._params, self.tables, fixed, self.ctx, fixed32 = read_groups(path, "param", "table", "fixed", "ctx", "fixed32")
        self.path = Path(path)
        self.name = name or self.path.stem
        self.config = NetConfig.from_dict(self.meta["model_config"])
        self.model_id = int(self.meta.get("model_id", 0)) if model_id is None else model_id
        self._nets = None  # the float nets (float_nets()), built on first use: decoding may never need them
        self._int_tables = {}  # prior group -> IntTables
        self._ctx_tables = {}  # (quality, version) -> ContextTables, built on first use
        # bit-exact integer synthesis: float32-exact (version 2, nkcodec.nets.exact_v2) for the
        # variants that use it, else float64 (version 1, nkcodec.nets.exact_v1) when the weights
        # carry it (nk64-2 on); nk64-1 kept float32
        self.fixed = fixed or None
        self.fixed32 = fixed32 or None
        self._fixed_dec = None
        self.synthesis = SYNTHESIS_FLOAT
        if exact32:
            from .exact_v2 import Synthesis

            if self.fixed32 is None:
                raise ValueError(f"{self.path} has no float32-exact synthesis; add it with python -m nkcodec fit-exact")
            self._fixed_dec = Synthesis(self.fixed32)
            self.synthesis = SYNTHESIS_EXACT32
        elif self.fixed is not None:
            from .exact_v1 import XlaSynthesis

            self._fixed_dec = XlaSynthesis(self.fixed)
            self.synthesis = SYNTHESIS_EXACT64

    @property
    def params(self) -> dict:
        """The float parameters, keyed by their path in the module tree (as in the weights file)."""
        return self._params

    def float_nets(self):
        """The Flax model with the file's parameters (``graphdef``, ``state``) and its
        jitted functions, built once: ``enc`` (rounded analysis), ``ana`` (the
        analysis before rounding), ``dec`` (float synthesis) and ``bits`` (rate estimate)."""
        return _once(self.__dict__, "_nets", self._build_float_nets)

    def analysis_nets(self):
        """The jitted analysis without Flax (:mod:`.analysis`), built once: ``params``
        (its arrays), ``enc`` (rounded) and ``ana`` (before rounding), each called as
        ``fn(params, x, q)``; the same latents as the Flax module's (tested)."""
        return _once(self.__dict__, "_analysis", self._build_analysis)

    def _build_analysis(self):
        import jax.numpy as jnp

        from .analysis import analysis_params, make_analysis

        enc, ana = make_analysis(self.config.activation)
        params = {k: jnp.asarray(v) for k, v in analysis_params(self._params).items()}
        return SimpleNamespace(params=params, enc=enc, ana=ana)

    def _build_float_nets(self):
        import jax
        import jax.numpy as jnp
        from flax import nnx

        from .transforms import CompressionModel

        # shapes only: a random initialisation would compile ~46 XLA kernels (about 4 s) for nothing
        model = nnx.eval_shape(lambda: CompressionModel(self.config, seed=0))
        load_params_into(model, self._params, self.path)
        graphdef, state = nnx.split(model)

        @jax.jit
        def enc(state, x, q):
            m = nnx.merge(graphdef, state)
            return jnp.round(m.encode_latent(x, q)).astype(jnp.int32)

        @jax.jit
        def ana(state, x, q):
            return nnx.merge(graphdef, state).encode_latent(x, q)

        @jax.jit
        def dec(state, y, q):
            m = nnx.merge(graphdef, state)
            x = m.decode_latent(y.astype(jnp.float32), q)
            return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)

        @jax.jit
        def bits(state, y, q):
            m = nnx.merge(graphdef, state)
            return -jnp.sum(jnp.log2(m.prior.likelihood(y.astype(jnp.float32), q)))

        return SimpleNamespace(graphdef=graphdef, state=state, enc=enc, ana=ana, dec=dec, bits=bits)

    @property
    def latent_channels(self) -> int:
        return self.config.m

    def _prior_group(self, quality: int) -> int:
        return quality - 1 if self.config.prior_per_quality else 0

    def tables_for(self, quality: int) -> dict:
        """The integer tables (``lo``, ``size``, ``freq``; one row per latent channel)
        used at ``quality``: the quality's own rows for a per-quality prior."""
        m, g = self.config.m, self._prior_group(quality)
        return {k: v[g * m : (g + 1) * m] for k, v in self.tables.items()}

    def int_tables(self, quality: int):
        """:class:`~nkcodec.coding.entropy.IntTables` for ``quality``, built once."""
        from ..coding.entropy import IntTables

        def build():
            t = self.tables_for(quality)
            return IntTables(t["freq"], t["size"])

        return _once(self._int_tables, self._prior_group(quality), build)

    def context_tables(self, quality: int, version: int | None = None):
        """:class:`~nkcodec.coding.context.ContextTables` for ``quality`` (the ``context``
        preset), of the given context model ``version`` or the newest this
        model's file has; ValueError if it has none."""
        from ..coding.context import ContextTables

        versions = ContextTables.versions(self.ctx) if self.ctx else []
        if not versions:
            raise ValueError(f"model {self.name} has no context tables; use preset='scalar' with it")
        version = max(versions) if version is None else version
        if version not in versions:
            raise ValueError(f"model {self.name} has no version-{version} context tables")
        from ..config import QUALITIES

        def build():
            model_tables = [self.tables_for(q) for q in QUALITIES]
            return ContextTables.from_arrays(self.ctx, model_tables, quality, version)

        return _once(self._ctx_tables, (quality, version), build)

    def encode_latent(self, image: np.ndarray, quality: int, rounded: bool = True) -> np.ndarray:
        """uint8 RGB (H, W, 3) -> int32 latent (ceil(H/16), ceil(W/16), M)
        (``rounded=False``: the float32 latent before rounding).

        The image is edge-padded to a 64-pixel bucket so that most sizes share
        one compiled function.  Images over ``NET_TILE * S`` pixels a side are
        analysed in tiles of ``NET_TILE`` latent pixels, each with ``ENC_HALO``
        latent pixels of real context around it, so memory stays bounded.
        """
        h, w = image.shape[:2]
        x = _pad_edge(image, _bucket(h), _bucket(w))
        fn = self.analysis_nets().enc if rounded else self.analysis_nets().ana

        def run(window):
            return self._analyse(fn, window[None], [quality])[0]

        shape, dtype = (x.shape[0] // S, x.shape[1] // S, self.config.m), np.int32 if rounded else np.float32
        y = _tiled(run, x, shape, scale_in=S, scale_out=1, halo=ENC_HALO, dtype=dtype)
        return y[: -(-h // S), : -(-w // S)]

    @staticmethod
    def analysis_key(shape) -> tuple | None:
        """Images whose (H, W) give the same key are analysed together by
        :meth:`encode_latents` (the padded size); ``None`` for an image large
        enough to be analysed in tiles, one at a time."""
        hb, wb = _bucket(shape[0]), _bucket(shape[1])
        return None if max(hb, wb) > S * NET_TILE else (hb, wb)

    def encode_latents(self, images: list, quality: int) -> list:
        """:meth:`encode_latent` of several RGB images of one :meth:`analysis_key`
        in one batch of the network: the same latents (tested)."""
        hb, wb = self.analysis_key(images[0].shape)
        x = np.stack([_pad_edge(im, hb, wb) for im in images])
        y = self._analyse(self.analysis_nets().enc, x, [quality] * len(images))
        return [y[i, : -(-im.shape[0] // S), : -(-im.shape[1] // S)] for i, im in enumerate(images)]

    def _analyse(self, fn, x: np.ndarray, qualities: list) -> np.ndarray:
        import jax.numpy as jnp

        q = jnp.asarray(np.asarray(qualities, np.int32) - 1)
        return np.asarray(fn(self.analysis_nets().params, jnp.asarray(x.astype(np.float32) / 255.0), q))

    def estimate_bits(self, y: np.ndarray, quality: int) -> float:
        """Bits the float prior assigns to an integer latent (the training-time rate estimate)."""
        import jax.numpy as jnp

        nets = self.float_nets()
        return float(nets.bits(nets.state, jnp.asarray(y[None]), jnp.asarray([quality - 1], jnp.int32)))

    def decode_latent(self, y: np.ndarray, quality: int, shape=None) -> np.ndarray:
        """int latent (h, w, M) -> uint8 RGB image, cropped to ``shape`` (H, W) if given."""
        h, w = y.shape[:2]
        yp = _pad_zero(y, _bucket(h, 4), _bucket(w, 4))
        hb, wb = yp.shape[:2]
        if self._fixed_dec is not None:
            # exact integer arithmetic: tiles with DEC_HALO of context give the same pixels as one pass
            run = functools.partial(self._fixed_dec, quality=quality)
            x = _tiled(run, yp, (S * hb, S * wb, 3), scale_in=1, scale_out=S, halo=DEC_HALO, dtype=np.uint8)
        else:
            x = self._float_dec(yp, quality)
        H, W = shape if shape is not None else (S * h, S * w)
        return x[:H, :W]

    @staticmethod
    def synthesis_key(latent_shape) -> tuple | None:
        """Latents whose (h, w) give the same key are decoded together by
        :meth:`decode_latents` (the padded size); ``None`` for one large enough
        to be decoded in tiles, one at a time."""
        hb, wb = _bucket(latent_shape[0], 4), _bucket(latent_shape[1], 4)
        return None if max(hb, wb) > NET_TILE else (hb, wb)

    def decode_latents(self, ys: list, qualities: list, shapes: list) -> list:
        """:meth:`decode_latent` of several latents of one :meth:`synthesis_key`
        (each with its own quality and (H, W) crop) in one batch of the network.
        The exact synthesis gives the same pixels as one at a time (tested)."""
        hb, wb = self.synthesis_key(ys[0].shape)
        yp = np.stack([_pad_zero(y, hb, wb) for y in ys])
        many = getattr(self._fixed_dec, "many", None)
        if many is not None:
            x = many(yp, qualities)
        elif self._fixed_dec is not None:  # the float64 synthesis runs one latent at a time
            x = [self._fixed_dec(yp[i], q) for i, q in enumerate(qualities)]
        else:
            import jax.numpy as jnp

            nets = self.float_nets()
            x = np.asarray(nets.dec(nets.state, jnp.asarray(yp), jnp.asarray(np.asarray(qualities, np.int32) - 1)))
        return [x[i][:H, :W] for i, (H, W) in enumerate(shapes)]

    def decode_latent_float32(self, y: np.ndarray, quality: int, shape=None) -> np.ndarray:
        """As :meth:`decode_latent` (same padding and crop), but with the float32
        synthesis net: the reference an exact decoder is measured against, not
        itself exact across machines."""
        h, w = y.shape[:2]
        yp = _pad_zero(y, _bucket(h, 4), _bucket(w, 4))
        H, W = shape if shape is not None else (S * h, S * w)
        return self._float_dec(yp, quality)[:H, :W]

    def _float_dec(self, y: np.ndarray, quality: int) -> np.ndarray:
        import jax.numpy as jnp

        nets = self.float_nets()
        return np.asarray(nets.dec(nets.state, jnp.asarray(y[None]), jnp.asarray([quality - 1], jnp.int32))[0])


NET_TILE = 64  # latent pixels per tile side (1024 image pixels)
ENC_HALO = 4  # latent pixels of context around an analysis tile (its receptive field is < 3)
DEC_HALO = 2  # latent pixels of context around a synthesis tile (receptive field < 2; exactness tested)


def _pad_edge(image: np.ndarray, hb: int, wb: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((0, hb - h), (0, wb - w), (0, 0)), mode="edge")


def _pad_zero(y: np.ndarray, hb: int, wb: int) -> np.ndarray:
    yp = np.zeros((hb, wb, y.shape[2]), np.int32)
    yp[: y.shape[0], : y.shape[1]] = y
    return yp


def _tiled(run, x: np.ndarray, out_shape: tuple, scale_in: int, scale_out: int, halo: int, dtype) -> np.ndarray:
    """Apply ``run`` to ``x`` in tiles of ``NET_TILE`` latent pixels (``scale_in`` input
    pixels per latent pixel, ``scale_out`` output pixels per latent pixel).  Each
    tile gets ``halo`` latent pixels of context where the array has them; at the
    array's own borders the network's zero padding applies, as in one pass."""
    lh, lw = x.shape[0] // scale_in, x.shape[1] // scale_in
    if lh <= NET_TILE and lw <= NET_TILE:
        return run(x)
    out = np.empty(out_shape, dtype)
    for i0 in range(0, lh, NET_TILE):
        for j0 in range(0, lw, NET_TILE):
            i1, j1 = min(i0 + NET_TILE, lh), min(j0 + NET_TILE, lw)
            a0, b0 = max(i0 - halo, 0), max(j0 - halo, 0)
            a1, b1 = min(i1 + halo, lh), min(j1 + halo, lw)
            t = run(x[scale_in * a0 : scale_in * a1, scale_in * b0 : scale_in * b1])
            s = scale_out
            out[s * i0 : s * i1, s * j0 : s * j1] = t[s * (i0 - a0) : s * (i1 - a0), s * (j0 - b0) : s * (j1 - b0)]
    return out
