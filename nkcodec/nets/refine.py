"""Encoder-side rate-distortion refinement of the latent (``effort=1`` of the
``context`` preset).

The analysis net gives a latent in one pass; its rounding is not the best the
decoder could be sent.  With ``effort > 0`` the encoder improves the rounded
latent by gradient steps (Adam, straight-through rounding) on the same objective
the model was trained for, ``bits / pixels + lambda * 255**2 * MSE``, where

* the **bits** are the version-2 context coder's own code length, made
  differentiable: the coder's integer mean (rounded, gradient passed through) and
  table lookups at the residual, with the table's local slope as gradient, so the
  forward value is what the coder would write for this tile;
* the **MSE** is measured through the float synthesis net on the tile and a halo
  of decoded neighbours, on the image's own pixels.

The latent is refined tile by tile (the context coder's 64 x 64 tiles, coded
independently), so memory stays bounded on any image, and the iterate with the
lowest objective is kept, so a tile never gets worse than the analysis gave.
Nothing changes for the decoder: a refined stream is an ordinary ``context``
stream.  The float32 arithmetic only steers the encoder; the bytes it writes
still decode bit-exactly everywhere.

Tuned on 3 training photos (never Kodak; the tuning script was not kept): 12 steps at learning
rate 3e-3 gave +0.05 to +0.08 dB at the same rate (q1, q4, q8); 40 steps at 1e-3,
+0.07 to +0.10 dB for three times the time.
"""

from __future__ import annotations

import functools

import numpy as np

from ..config import LATENT_STRIDE as S

__all__ = ["EFFORTS", "refine"]

EFFORTS = {1: (12, 3e-3)}  # effort -> (Adam steps per tile, learning rate); 40 steps at 1e-3 gained ~0.02 dB more


def _proxy_arrays(ct):
    """The context model's numbers as float32 arrays for the differentiable code length."""
    if ct.wmean is None:
        raise ValueError("effort=1 needs a model with version-2 context tables")
    m = ct.order.size
    width = ct.tables.freq.shape[1]
    code = -np.log2(np.maximum(ct.tables.freq, 1) / 65536.0)
    size = np.repeat(ct.size, ct.passes * ct.k)
    code[np.arange(width)[None, :] >= size[:, None]] = 32.0  # outside a row's alphabet
    lo = np.repeat(ct.lo, ct.passes * ct.k).astype(np.float32)
    w = ct.wmean.astype(np.float32) / 4096.0
    return {
        "order": ct.order,
        "w_centre": w[:, :m].T.copy(),
        "w_nb": w[:, m : 2 * m].T.copy(),
        "w_own": w[:, 2 * m].copy(),
        "code": code.astype(np.float32),
        "lo": lo,
    }


def _keys(ct, v_int: np.ndarray) -> np.ndarray:
    """Stream key (table row) of every value of one tile, (th, tw, M) in coding order."""
    from ..coding.context import pass_map, table_keys

    th, tw, m = v_int.shape
    v = np.ascontiguousarray(v_int.reshape(th * tw, m).T, dtype=np.int64)
    activity, _ = ct.predict(v, th, tw)
    return table_keys(activity, ct.thresholds, pass_map(th, tw, ct.passes), ct.k).T.reshape(th, tw, m)


def _stepper(m, ct, quality: int, effort: int):
    """The jitted Adam step and its optimiser's init for one model, quality and
    effort, built once (even when threads race to it): a new function per
    encode would recompile for every image."""
    from .runtime import BUILD_LOCK

    with BUILD_LOCK:
        return _cached_stepper(m, ct, quality, effort)


@functools.lru_cache(maxsize=16)
def _cached_stepper(m, ct, quality: int, effort: int):
    return _make_step(m.float_nets(), _proxy_arrays(ct), quality, EFFORTS[effort][1])


def _make_step(nets, arrays, quality: int, lr: float):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from ..config import LAMBDAS

    lam = float(LAMBDAS[quality - 1]) * 255.0**2
    q = jnp.asarray([quality - 1], jnp.int32)
    a = {k: jnp.asarray(v) for k, v in arrays.items()}
    width = arrays["code"].shape[1]
    opt = optax.adam(lr)

    def n4(v):
        p = jnp.pad(v, ((1, 1), (1, 1), (0, 0)))
        return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]

    def objective(y, state, window, x, valid, keys, second, npix, i0, j0):
        model = nnx.merge(nets.graphdef, state)
        yr = y + jax.lax.stop_gradient(jnp.round(y) - y)  # straight-through rounding
        th, tw = y.shape[:2]
        full = jax.lax.dynamic_update_slice(window, yr, (i0, j0, 0))
        x_hat = model.decode_latent(full[None], q)[0]
        x_hat = jax.lax.dynamic_slice(x_hat, (S * i0, S * j0, 0), (S * th, S * tw, 3))
        mse = jnp.sum(valid * (x_hat - x) ** 2) / (3.0 * npix)
        v = yr[:, :, a["order"]]
        nb = n4(v)
        mu = v @ a["w_centre"] + nb @ a["w_nb"] + a["w_own"] * nb * second
        mu = mu + jax.lax.stop_gradient(jnp.floor(mu + 0.5) - mu)  # the coder's integer mean
        s = jnp.clip(v - mu - a["lo"][keys] + 1.0, 1.0, width - 2.0)  # table symbol
        f = jax.lax.stop_gradient(s).astype(jnp.int32)
        slope = 0.5 * (a["code"][keys, f + 1] - a["code"][keys, f - 1])
        bits = jnp.sum(a["code"][keys, f] + (s - jax.lax.stop_gradient(s)) * slope)
        return bits / npix + lam * mse

    @jax.jit
    def step(y, opt_state, state, window, x, valid, keys, second, npix, i0, j0):
        loss, g = jax.value_and_grad(objective)(y, state, window, x, valid, keys, second, npix, i0, j0)
        updates, opt_state = opt.update(g, opt_state, y)
        return optax.apply_updates(y, updates), opt_state, loss

    return step, opt.init


PROGRESS_TILES = 4  # from this many latent tiles on, refine shows a progress bar when stderr is a terminal


def tile_progress(items: list, wanted: bool):
    import sys

    from tqdm import tqdm

    show = wanted and sys.stderr is not None and sys.stderr.isatty()
    return tqdm(items, desc="nkcodec effort-1 refinement", unit="tile", leave=False, disable=not show)


def refine(m, ct, image: np.ndarray, quality: int, effort: int) -> np.ndarray:
    """The refined int32 latent (h, w, M) of a uint8 RGB image for context tables ``ct``."""
    import jax.numpy as jnp

    from ..coding.context import coding_tiles, pass_map
    from .runtime import DEC_HALO

    iters = EFFORTS[effort][0]
    y = m.encode_latent(image, quality, rounded=False)
    h, w, _ = y.shape
    out = np.round(y).astype(np.int32)
    H, W = image.shape[:2]
    x = np.zeros((S * h, S * w, 3), np.float32)
    x[:H, :W] = image / np.float32(255.0)
    valid = np.zeros((S * h, S * w, 1), np.float32)
    valid[:H, :W] = 1.0
    nets = m.float_nets()
    step, init = _stepper(m, ct, quality, effort)
    tiles = coding_tiles(h, w, ct.version)
    # a large image takes minutes (about 9 s per 1024x1024 tile): show progress on a terminal
    for rs, cs in tile_progress(tiles, len(tiles) >= PROGRESS_TILES):
        r0, r1, c0, c1 = rs.start, rs.stop, cs.start, cs.stop
        a0, a1, b0, b1 = max(r0 - DEC_HALO, 0), min(r1 + DEC_HALO, h), max(c0 - DEC_HALO, 0), min(c1 + DEC_HALO, w)
        px = (slice(S * r0, S * r1), slice(S * c0, S * c1))
        npix = float(valid[px].sum())
        window = jnp.asarray(out[a0:a1, b0:b1].astype(np.float32))
        second = jnp.asarray(pass_map(r1 - r0, c1 - c0, ct.passes).reshape(r1 - r0, c1 - c0, 1).astype(np.float32))
        args = (nets.state, window, jnp.asarray(x[px]), jnp.asarray(valid[px]))
        yt = jnp.asarray(y[rs, cs])
        opt_state = init(yt)
        best, best_y = np.inf, yt
        for _ in range(iters):
            keys = jnp.asarray(_keys(ct, np.asarray(jnp.round(yt)).astype(np.int64)))
            new, opt_state, loss = step(yt, opt_state, *args, keys, second, npix, r0 - a0, c0 - b0)
            if float(loss) < best:  # the objective of the iterate going in
                best, best_y = float(loss), yt
            yt = new
        out[rs, cs] = np.round(np.asarray(best_y)).astype(np.int32)
    return out
