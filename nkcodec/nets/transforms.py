"""Flax NNX networks: analysis/synthesis transforms and the factorized entropy model.

Only modules live here (no training loop, no bytes).  The architecture follows
Ballé et al. 2017 / CompressAI ``bmshj2018-factorized`` with two changes made
for CPU speed and variable rate:

* the synthesis transform upsamples by sub-pixel convolution (a conv to 4*C
  channels, then depth-to-space 2): a transposed conv made XLA's CPU backward
  pass about 8x slower;
* one model serves qualities 1..8 through per-quality gain and inverse-gain
  vectors on the latent (Cui et al. 2021, "asymmetric gained" coding).

Examples
--------
>>> import jax.numpy as jnp
>>> m = CompressionModel(NetConfig(n=8, m=12), seed=0)
>>> out = m(jnp.zeros((1, 32, 48, 3)), jnp.array([3]), train=False)
>>> out["x_hat"].shape, out["y_hat"].shape
((1, 32, 48, 3), (1, 2, 3, 12))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..config import LAMBDAS, NUM_QUALITIES, NetConfig

__all__ = [
    "NetConfig",
    "GDN",
    "Analysis",
    "Synthesis",
    "FactorizedPrior",
    "CompressionModel",
    "depth_to_space",
    "LAMBDAS",
    "NUM_QUALITIES",
]


def depth_to_space(x, r: int = 2):
    """(B, H, W, r*r*C) -> (B, r*H, r*W, C)."""
    b, h, w, c = x.shape
    c_out = c // (r * r)
    x = x.reshape(b, h, w, r, r, c_out)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * r, w * r, c_out)


def _inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


class GDN(nnx.Module):
    """Simplified (inverse) GDN: ``x / (beta + gamma @ |x|)`` (or ``x * (...)``)."""

    def __init__(self, c: int, inverse: bool = False):
        self.inverse = inverse
        self.beta = nnx.Param(jnp.full((c,), _inv_softplus(1.0), jnp.float32))
        g = np.full((c, c), -10.0, np.float32)
        np.fill_diagonal(g, _inv_softplus(0.1))
        self.gamma = nnx.Param(jnp.asarray(g))

    def __call__(self, x):
        beta = jax.nn.softplus(self.beta[...]) + 1e-6
        gamma = jax.nn.softplus(self.gamma[...])
        norm = beta + jnp.abs(x) @ gamma
        return x * norm if self.inverse else x / norm


def _act(cfg: NetConfig, c: int, inverse: bool):
    if cfg.activation == "gdn":
        return GDN(c, inverse)
    if cfg.activation == "relu":
        return jax.nn.relu
    raise ValueError(f"unknown activation {cfg.activation!r}; choose 'gdn' or 'relu'")


class Analysis(nnx.Module):
    """g_a: four stride-2 convs (total stride 16)."""

    def __init__(self, cfg: NetConfig, rngs: nnx.Rngs):
        chans = (3, cfg.n, cfg.n, cfg.n, cfg.m)
        k = cfg.kernel_a
        self.convs = nnx.List([nnx.Conv(chans[i], chans[i + 1], (k, k), strides=2, rngs=rngs) for i in range(4)])
        self.acts = nnx.List([_act(cfg, cfg.n, False) for _ in range(3)])

    def __call__(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < 3:
                x = self.acts[i](x)
        return x


class Synthesis(nnx.Module):
    """g_s: four sub-pixel stages (conv to 4*C, depth-to-space 2)."""

    def __init__(self, cfg: NetConfig, rngs: nnx.Rngs):
        chans = (cfg.m, cfg.n, cfg.n, cfg.n, 3)
        k = cfg.kernel_s
        self.convs = nnx.List([nnx.Conv(chans[i], 4 * chans[i + 1], (k, k), rngs=rngs) for i in range(4)])
        self.acts = nnx.List([_act(cfg, cfg.n, True) for _ in range(3)])

    def __call__(self, y):
        for i, conv in enumerate(self.convs):
            y = depth_to_space(conv(y), 2)
            if i < 3:
                y = self.acts[i](y)
        return y


class FactorizedPrior(nnx.Module):
    """Per-channel non-parametric density (Ballé et al. 2018, appendix 6.1).

    ``logits_cdf(v)`` is a learned monotone function per channel; the
    likelihood of an integer bin is ``sigmoid(l(y+.5)) - sigmoid(l(y-.5))``.
    With ``groups > 1`` there are ``groups`` independent densities per channel
    (one per quality), stored as ``groups * c`` rows, group-major.
    """

    def __init__(self, c: int, filters=(3, 3, 3), init_scale: float = 10.0, *, groups: int = 1, rngs: nnx.Rngs):
        self.groups = groups
        self.channels = c
        c = c * groups
        dims = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        mats, biases, factors = [], [], []
        for i in range(len(filters) + 1):
            init = _inv_softplus(1.0 / scale / dims[i + 1])
            mats.append(nnx.Param(jnp.full((c, dims[i + 1], dims[i]), init, jnp.float32)))
            key = rngs.params()
            biases.append(nnx.Param(jax.random.uniform(key, (c, dims[i + 1], 1), jnp.float32, -0.5, 0.5)))
            if i < len(filters):
                factors.append(nnx.Param(jnp.zeros((c, dims[i + 1], 1), jnp.float32)))
        self.matrices = nnx.List(mats)
        self.biases = nnx.List(biases)
        self.factors = nnx.List(factors)

    def logits_cdf(self, v, q=None):
        """v: (groups*C, 1, n) -> (groups*C, 1, n), every row with its own density.

        With ``q`` (B,) quality indices: v (B, C, 1, n) -> (B, C, 1, n), image b
        evaluated with group ``q[b]`` (group 0 when there is one group).
        """
        params = [(self.matrices[i][...], self.biases[i][...]) for i in range(len(self.matrices))]
        factors = [f[...] for f in self.factors]
        if q is not None:
            sel = q if self.groups > 1 else jnp.zeros_like(q)

            def pick(a):
                return a.reshape((self.groups, self.channels) + a.shape[1:])[sel]

            params = [(pick(m), pick(b)) for m, b in params]
            factors = [pick(f) for f in factors]
        for i, (m, b) in enumerate(params):
            v = jax.nn.softplus(m) @ v + b
            if i < len(factors):
                v = v + jnp.tanh(factors[i]) * jnp.tanh(v)
        return v

    def likelihood(self, y, q=None):
        """Probability of each (noisy or integer) value of y: (B, H, W, C).

        ``q`` (B,) selects each image's density when there is one per quality.
        """
        b, h, w, c = y.shape
        if self.groups == 1:
            v = y.transpose(3, 0, 1, 2).reshape(c, 1, -1)
            lower = self.logits_cdf(v - 0.5)
            upper = self.logits_cdf(v + 0.5)
        else:
            if q is None:
                raise ValueError("a per-quality prior needs the quality indices q")
            v = y.transpose(0, 3, 1, 2).reshape(b, c, 1, -1)
            lower = self.logits_cdf(v - 0.5, q)
            upper = self.logits_cdf(v + 0.5, q)
        sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
        lik = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
        lik = jnp.maximum(lik, 1e-9)
        if self.groups == 1:
            return lik.reshape(c, b, h, w).transpose(1, 2, 3, 0)
        return lik.reshape(b, c, h, w).transpose(0, 2, 3, 1)


class CompressionModel(nnx.Module):
    """Autoencoder + factorized prior + per-quality gains.

    ``__call__(x, q, train)`` takes images in [0, 1] (B, H, W, 3), H and W
    multiples of 16, and quality indices ``q`` in 0..7 (one per image).
    """

    def __init__(self, cfg: NetConfig = NetConfig(), seed: int = 0):
        rngs = nnx.Rngs(seed)
        self.cfg = cfg
        self.g_a = Analysis(cfg, rngs)
        self.g_s = Synthesis(cfg, rngs)
        groups = NUM_QUALITIES if cfg.prior_per_quality else 1
        self.prior = FactorizedPrior(cfg.m, cfg.filters, groups=groups, rngs=rngs)
        # log-gains: quality 0 coarsest. Spread initial step sizes over ~8x.
        init = np.linspace(math.log(0.35), math.log(3.0), NUM_QUALITIES, dtype=np.float32)
        self.log_gain = nnx.Param(jnp.asarray(np.repeat(init[:, None], cfg.m, 1)))
        self.log_inv_gain = nnx.Param(jnp.asarray(-np.repeat(init[:, None], cfg.m, 1)))

    def gains(self, q):
        """Gain and inverse gain for quality indices q: (B,) -> (B, 1, 1, M) each."""
        g = jnp.exp(self.log_gain[...][q])[:, None, None, :]
        ig = jnp.exp(self.log_inv_gain[...][q])[:, None, None, :]
        return g, ig

    def encode_latent(self, x, q):
        """Scaled latent y = g_a(x) * gain[q] (not yet rounded)."""
        g, _ = self.gains(q)
        return self.g_a(x - 0.5) * g  # centred input trains faster

    def decode_latent(self, y_hat, q):
        """Reconstruction g_s(y_hat * inv_gain[q]) in [0, 1] (not clipped)."""
        _, ig = self.gains(q)
        return self.g_s(y_hat * ig) + 0.5

    def __call__(self, x, q, train: bool = True, key=None):
        y = self.encode_latent(x, q)
        if train:
            noise = jax.random.uniform(key, y.shape, y.dtype, -0.5, 0.5)
            y_rate = y + noise
            # straight-through rounding for the distortion path ("mixed" quantisation)
            y_dist = y + jax.lax.stop_gradient(jnp.round(y) - y)
        else:
            y_rate = y_dist = jnp.round(y)
        lik = self.prior.likelihood(y_rate, q)
        x_hat = self.decode_latent(y_dist, q)
        return {"x_hat": x_hat, "likelihoods": lik, "y_hat": y_dist}
