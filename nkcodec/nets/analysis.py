"""The analysis net (g_a and the quality gains) as a pure JAX function of the weights
file's parameters, so that an encoder imports neither Flax nor optax (Flax's NNX
imports optax).  It traces to the same operations as the Flax module
(:class:`~nkcodec.nets.transforms.Analysis`, :meth:`CompressionModel.encode_latent`),
so it gives the same latents, bit for bit (tested against the module).
"""

from __future__ import annotations

__all__ = ["analysis_params", "make_analysis"]

_DIMS = ("NHWC", "HWIO", "NHWC")


def analysis_params(params: dict, layers: int = 4) -> dict:
    """The analysis' arrays of a weights file's parameters (``{path: array}``)."""
    keys = ["log_gain/.value"]
    for i in range(layers):
        keys += [f"g_a/convs/{i}/kernel/.value", f"g_a/convs/{i}/bias/.value"]
    for i in range(layers - 1):
        keys += [f"g_a/acts/{i}/beta/.value", f"g_a/acts/{i}/gamma/.value"]
    return {k: params[k] for k in keys if k in params}


def make_analysis(activation: str = "gdn", layers: int = 4):
    """``(enc, ana)``, jitted: ``ana(p, x, q)`` is the scaled latent of images ``x``
    (B, H, W, 3) in [0, 1] at quality indices ``q`` (B,), and ``enc`` the same
    rounded to int32; ``p`` is :func:`analysis_params` as JAX arrays."""
    import jax
    import jax.numpy as jnp

    if activation not in ("gdn", "relu"):
        raise ValueError(f"unknown activation {activation!r}; choose 'gdn' or 'relu'")

    def gdn(p, i, x):
        beta = jax.nn.softplus(p[f"g_a/acts/{i}/beta/.value"]) + 1e-6
        gamma = jax.nn.softplus(p[f"g_a/acts/{i}/gamma/.value"])
        return x / (beta + jnp.abs(x) @ gamma)

    def ana(p, x, q):
        a = x - 0.5  # centred input, as in training
        for i in range(layers):
            a = jax.lax.conv_general_dilated(
                a, p[f"g_a/convs/{i}/kernel/.value"], (2, 2), "SAME", lhs_dilation=(1, 1), rhs_dilation=(1, 1),
                dimension_numbers=_DIMS, feature_group_count=1, precision=None,
            )  # fmt: skip
            bias = p[f"g_a/convs/{i}/bias/.value"]
            a = a + bias.reshape((1,) * (a.ndim - bias.ndim) + bias.shape)
            if i < layers - 1:
                a = gdn(p, i, a) if activation == "gdn" else jax.nn.relu(a)
        return a * jnp.exp(p["log_gain/.value"][q])[:, None, None, :]

    def enc(p, x, q):
        return jnp.round(ana(p, x, q)).astype(jnp.int32)

    return jax.jit(enc), jax.jit(ana)
