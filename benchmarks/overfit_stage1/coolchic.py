"""Stage-1 prototype of an overfitted codec (issue 26): per image, a latent pyramid, a tiny
autoregressive probability model (ARM) and a tiny synthesis are fitted by the encoder
(JAX, optax) and sent. Our own code after Cool-chic's design (Ladune et al., Leguay et al.);
a float decoder only, to decide by measurement whether a product is worth building.

Bits are real: the latents are ANS-coded (constriction) with the quantised ARM's Laplace
parameters, and the ARM's and synthesis's quantised weights go as varints.  PSNR is
from the uint8 image that the quantised decoder produces."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

# causal context of the ARM, in the same level: two rows above (5 columns each), two to the left
CTX = [(-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1)]
HIDDEN_ARM = 16
HIDDEN_SYN = 24


def level_shapes(h, w, levels):
    return [(-(-h // 2**k), -(-w // 2**k)) for k in range(levels)]


def init_params(h, w, levels, key):
    ks = jax.random.split(key, 8)
    n = len(CTX)

    def dense(k, a, b, scale=1.0):
        return jax.random.normal(k, (a, b)) * scale / np.sqrt(a)

    arm = {
        "w1": dense(ks[0], n, HIDDEN_ARM),
        "b1": jnp.zeros(HIDDEN_ARM),
        "w2": dense(ks[1], HIDDEN_ARM, HIDDEN_ARM),
        "b2": jnp.zeros(HIDDEN_ARM),
        "w3": dense(ks[2], HIDDEN_ARM, 2, 0.1),
        "b3": jnp.array([0.0, 0.0]),
    }
    syn = {
        "w1": dense(ks[3], levels, HIDDEN_SYN),
        "b1": jnp.zeros(HIDDEN_SYN),
        "w2": dense(ks[4], HIDDEN_SYN, 3, 0.1),
        "b2": jnp.full(3, 0.5),
        "c1": jax.random.normal(ks[5], (3, 3, 3, 8)) * 0.05,
        "cb1": jnp.zeros(8),
        "c2": jnp.zeros((3, 3, 8, 3)),
        "cb2": jnp.zeros(3),
    }
    lat = [jnp.zeros(s) for s in level_shapes(h, w, levels)]
    return {"lat": lat, "arm": arm, "syn": syn}


def contexts(y):
    """(h, w) level -> (h*w, len(CTX)) causal neighbours, zero outside."""
    h, w = y.shape
    p = jnp.pad(y, ((2, 0), (2, 2)))
    return jnp.stack([p[2 + dr : 2 + dr + h, 2 + dc : 2 + dc + w].reshape(-1) for dr, dc in CTX], -1)


def arm_forward(arm, ctx):
    x = jax.nn.relu(ctx @ arm["w1"] + arm["b1"])
    x = jax.nn.relu(x @ arm["w2"] + arm["b2"]) + x
    o = x @ arm["w3"] + arm["b3"]
    return o[:, 0], jnp.exp(jnp.clip(o[:, 1], -4.6, 5.0)) + 0.01  # mean, Laplace scale


def laplace_bits(y, mu, b):
    def cdf(x):
        z = (x - mu) / b
        return jnp.where(z < 0, 0.5 * jnp.exp(jnp.minimum(z, 0)), 1 - 0.5 * jnp.exp(-jnp.maximum(z, 0)))

    return -jnp.log2(jnp.maximum(cdf(y + 0.5) - cdf(y - 0.5), 2.0**-30))


def synthesis(syn, lat, h, w):
    up = jnp.stack([jax.image.resize(y, (h, w), "bicubic") if y.shape != (h, w) else y for y in lat], -1)  # (h, w, L)
    x = jax.nn.relu(up @ syn["w1"] + syn["b1"]) @ syn["w2"] + syn["b2"]
    dn = ("NHWC", "HWIO", "NHWC")
    r = jax.nn.relu(jax.lax.conv_general_dilated(x[None], syn["c1"], (1, 1), "SAME", dimension_numbers=dn) + syn["cb1"])
    r = jax.lax.conv_general_dilated(r, syn["c2"], (1, 1), "SAME", dimension_numbers=dn)[0] + syn["cb2"]
    return x + r


def quantise(lat, mode, key):
    if mode == "noise":
        return [y + jax.random.uniform(k, y.shape, minval=-0.5, maxval=0.5) for y, k in zip(lat, jax.random.split(key, len(lat)))]
    return [y + jax.lax.stop_gradient(jnp.round(y) - y) for y in lat]  # straight-through


def rd_loss(params, target, lam, mode, key):
    h, w = target.shape[:2]
    q = quantise(params["lat"], mode, key)
    rate = sum(laplace_bits(y.reshape(-1), *arm_forward(params["arm"], contexts(y))).sum() for y in q) / (h * w)
    mse = jnp.mean((synthesis(params["syn"], q, h, w) - target) ** 2)
    return mse + lam * rate, (mse, rate)


def _downsample(image: np.ndarray, s: int) -> jnp.ndarray:
    x = jnp.asarray(image, jnp.float32) / 255.0
    if not s:
        return x
    h, w = image.shape[:2]
    return jax.image.resize(x, (-(-h // 2**s), -(-w // 2**s), 3), "linear", antialias=True)


def _finer(params, shape, seed):
    """The model one scale up: a new zero level of ``shape`` (full resolution) in front, its synthesis weights small."""
    syn = dict(params["syn"])
    syn["w1"] = jnp.concatenate([jax.random.normal(jax.random.PRNGKey(seed), (1, HIDDEN_SYN)) * 0.1, syn["w1"]], 0)
    return {"lat": [jnp.zeros(shape), *params["lat"]], "arm": params["arm"], "syn": syn}


def fit(image: np.ndarray, lam: float, schedule, levels: int = 7, lr: float = 1e-2, hard_iters: int = 0, seed: int = 0, log=None):
    """Fit the codec to ``image`` (uint8 RGB), coarse to fine: ``schedule`` is [(scale, iterations), ...]
    ending at scale 0; at scale s the image is downsampled 2**s times and the model has levels - s
    levels, which become levels s.. of the next scale's model.  Noise quantisation throughout, then
    ``hard_iters`` straight-through iterations at full resolution.  Returns (parameters, seconds)."""
    h, w = image.shape[:2]
    s0 = schedule[0][0]
    hs, ws = -(-h // 2**s0), -(-w // 2**s0)
    # its level shapes are the full model's levels s0..: ceil(ceil(h/2^s)/2^k) = ceil(h/2^(s+k))
    params = init_params(hs, ws, levels - s0, jax.random.PRNGKey(seed))
    t0 = time.perf_counter()
    stages = [(s, n, "noise", optax.cosine_decay_schedule(lr, n, 0.1)) for s, n in schedule]
    if hard_iters:
        stages.append((0, hard_iters, "hard", optax.cosine_decay_schedule(lr * 0.1, hard_iters, 0.01)))
    scale = s0
    for s, n, mode, sched in stages:
        while scale > s:
            scale -= 1
            params = _finer(params, level_shapes(h, w, levels)[scale], seed=scale + 1)
        target = _downsample(image, s)
        opt = optax.adam(sched)

        @jax.jit
        def step(params, st, key, target=target, mode=mode, opt=opt):
            (loss, aux), g = jax.value_and_grad(rd_loss, has_aux=True)(params, target, lam, mode, key)
            upd, st = opt.update(g, st, params)
            return optax.apply_updates(params, upd), st, loss, aux

        st = opt.init(params)
        key = jax.random.PRNGKey(seed + 1 + s)
        for it in range(n):
            key, sub = jax.random.split(key)
            params, st, loss, (mse, rate) = step(params, st, sub)
            if log and (it % 500 == 0 or it == n - 1):
                log(
                    f"scale {s} {mode} {it}/{n} loss {float(loss):.5f} psnr {-10 * np.log10(float(mse)):.2f} bpp {float(rate):.3f} {time.perf_counter() - t0:.0f}s"
                )
    return params, time.perf_counter() - t0


# ---- the stream: quantised decoder weights + ANS-coded latents (real bytes) ----


def _quantise_tree(tree, step):
    return jax.tree_util.tree_map(lambda a: np.round(np.asarray(a, np.float64) / step).astype(np.int64), tree)


def _dequantise_tree(tree, step):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a * step, jnp.float32), tree)


def encode(params, image, lam):
    """Real bytes of the fitted image: try a few weight steps for the ARM and the synthesis,
    keep the one with the lowest D + lam * R.  Returns (nbytes, decoded uint8 image, info)."""
    import constriction

    from nkcodec.coding.varint import pack

    h, w = image.shape[:2]
    lat = [np.round(np.asarray(y)).astype(np.int64) for y in params["lat"]]
    target = image.astype(np.float32) / 255.0
    lo, hi = int(min(y.min() for y in lat)), int(max(y.max() for y in lat))
    model = constriction.stream.model.QuantizedLaplace(lo, hi + 1)
    best = None
    for arm_step in (2.0**-6, 2.0**-8, 2.0**-10):
        arm_q = _quantise_tree(params["arm"], arm_step)
        arm_f = _dequantise_tree(arm_q, arm_step)
        coder = constriction.stream.stack.AnsCoder()
        for y in reversed(lat):
            mu, b = arm_forward(arm_f, contexts(jnp.asarray(y, jnp.float32)))
            coder.encode_reverse(y.reshape(-1).astype(np.int32), model, np.asarray(mu, np.float64), np.asarray(b, np.float64))
        lat_bytes = coder.get_compressed().nbytes
        arm_bytes = len(pack(np.concatenate([a.ravel() for a in jax.tree_util.tree_leaves(arm_q)])))
        for syn_step in (2.0**-6, 2.0**-8, 2.0**-10):
            syn_q = _quantise_tree(params["syn"], syn_step)
            syn_bytes = len(pack(np.concatenate([a.ravel() for a in jax.tree_util.tree_leaves(syn_q)])))
            x = synthesis(_dequantise_tree(syn_q, syn_step), [jnp.asarray(y, jnp.float32) for y in lat], h, w)
            out = np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)
            nbytes = lat_bytes + arm_bytes + syn_bytes + 16  # 16 bytes counted for a header (size, levels, steps, value range), not written
            mse = float(np.mean((out.astype(np.float32) / 255.0 - target) ** 2))
            cost = mse + lam * 8 * nbytes / (h * w)
            if best is None or cost < best[0]:
                best = (cost, nbytes, out, {"lat_bytes": lat_bytes, "arm_bytes": arm_bytes, "syn_bytes": syn_bytes, "arm_step": arm_step, "syn_step": syn_step})
    return best[1], best[2], best[3]
