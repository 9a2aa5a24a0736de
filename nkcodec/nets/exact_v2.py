"""Bit-exact synthesis at float32 speed (fixed-point synthesis, version 2).

:mod:`nkcodec.nets.exact_v1` (version 1) makes the synthesis exact by running 16-bit
weights and 12-bit activations in float64, which halves the CPU's throughput
and costs ~25x on a GPU.  This version keeps every heavy operation (the 3x3
convolutions and the GDN's channel mixing, >99% of the multiply-adds) in
**float32** and proves each of them exact; the cheap element-wise steps run
in **int32**.  The pixels of a stream are the same on every machine and device.

The arithmetic
--------------
Every tensor is an integer.  ``x >> k`` is an arithmetic shift (floor division
by ``2**k``); ``rs(v, k) = (v + 2**(k-1)) >> k`` rounds half up.

* input: ``y`` is clamped to ``|y| <= LATENT_LIMIT``; ``a0 = rs(y * G[q], GAIN_SHIFT)``
  (``G`` the integer inverse gains, ``FRAC`` fractional bits), clamped per channel.
* convolution ``i`` (0..3): its input channels are split into ``g_i`` equal groups
  (``GROUPS``: 4 for the first, whose fan-in is 1728, else 1);
  ``acc_j = conv3x3(a_j, K_ij)`` in float32 per group; ``r = sum_j int32(acc_j) + b_i``;
  hidden layers ``a = rs(r * m_i, k_i)`` (per output channel, ``m_i < 2**MULT_BITS``),
  depth-to-space, clamp ``|a| <= ACT_LIMIT``; the last layer gives the pixel
  ``clip((((r * m) >> (k - 1)) + 256) >> 1, 0, 255)``, i.e. ``floor(255 v + 128)``.
* inverse GDN ``i`` (0..2): ``acc = |a| @ Gamma_i`` in float32;
  ``n = min(rs(int32(acc) + beta_i, t_i), NORM_LIMIT)`` (``NORM_FRAC`` fractional bits);
  ``a = rs(a * n, NORM_FRAC)``, clamped per channel to ``|a| <= clamp_{i+1}``.

The weights are scaled per output channel by a factor ``sigma = S_out * 2**k / (m * 2**f_in)``
that is *not* restricted to a power of two (the multiplier ``m`` carries the
rest), chosen at export as large as the bound below allows.  The per-channel
clamps are integers 1.25x above the largest value the training photos
reach; real images stay inside them, hostile streams are clipped (decoded
exactly, just clipped).

Proof of exactness
------------------
float32 holds every integer of magnitude ``<= 2**24`` exactly.  For each
float32 GEMM (a convolution or the GDN mixing) and each output channel ``o``,
:func:`bound_check` verifies, in exact int64 arithmetic on the stored
integers, that

    sum_{i in group} |W[i, o]| * X_i <= 2**24 - 1,

where ``X_i`` is the clamp of input ``i`` (enforced by ``clip`` right before
the GEMM).  Every partial sum of the products, *in any order and any
grouping*, is an integer bounded by the left side, so each product, each
addition and each fused multiply-add yields a representable integer: no
rounding ever happens.  The result is the same whatever the summation order,
blocking, vector width or FMA use of the backend.  (This needs a direct or
GEMM-based algorithm: transforms such as Winograd or FFT leave the integers;
the synthesis therefore writes each convolution as ``dot_general`` products
of shifted views, which XLA runs as GEMMs, and asks for ``HIGHEST`` precision
so that no accelerator substitutes TF32 or bf16 inputs.)

The int32 steps are exact too: the groups' sums plus the bias stay within
``|r| <= r_limit(g)`` (``2**24 - 1`` for one group), and the multiplier within
``m <= mult_range(g)[1]`` (127 for one group, 31 for four), so
``|r * m| + 2**23 < 2**31`` (also checked by :func:`bound_check`); the GDN product is below
``ACT_LIMIT * NORM_LIMIT = 2**(4 + FRAC) * 2**(2 + NORM_FRAC) = 2**25``; the
input product ``LATENT_LIMIT * max(G)`` is checked below ``2**31``.  So the
result equals the same network evaluated in unbounded integers (tests check it
against an int64 NumPy reference, on real latents and on hostile ones that
reach every clamp).

Examples
--------
>>> rshift_round(np.array([5, 6, -5, -6, 7]), 2)
array([ 1,  2, -1, -1,  2])
"""

from __future__ import annotations

import math

import numpy as np

from .exact_v1 import depth_to_space, softplus

__all__ = [
    "VERSION",
    "FRAC",
    "NORM_FRAC",
    "LATENT_LIMIT",
    "ACT_LIMIT",
    "NORM_LIMIT",
    "quantize",
    "bound_check",
    "synthesize",
    "Synthesis",
    "rshift_round",
    "mult_range",
    "r_limit",
    "float_synthesis",
]

VERSION = 2  # the arithmetic of this module; version 1 is nkcodec.nets.exact_v1
BUDGET = (1 << 24) - 1  # largest partial sum any float32 GEMM may reach
FRAC = 7  # fractional bits of every activation
NORM_FRAC = 12  # fractional bits of the GDN normaliser
MULT_BITS = 7  # rescaling multipliers m: 64 <= m <= 127 (fewer bits for split convolutions)
GROUPS = (4, 1, 1, 1)  # input-channel groups per convolution: the first (fan-in 1728) gets 2 more bits
MAX_GROUPS = 8
GAIN_SHIFT = 10  # inverse gains G = ig * 2**(GAIN_SHIFT + FRAC)
LATENT_LIMIT = 1 << 12  # |y|: real latents stay below 200
ACT_LIMIT = 16 << FRAC  # |convolution output| (the GDN's input), 16 units
NORM_LIMIT = 4 << NORM_FRAC  # GDN normaliser, 4 units (real images stay below 1.5)
CLAMP_MARGIN = 1.25  # per-channel clamps: 1.25x the training maximum


def rshift_round(v, k):
    """``floor(v / 2**k + 1/2)`` for integer NumPy or JAX arrays ``v`` and shifts
    ``k >= 1`` (an int or an array broadcasting against ``v``), in ``v``'s integer type."""
    return (v + (1 << (k - 1))) >> k


def _clamp(max_abs: np.ndarray, frac: int) -> np.ndarray:
    """Per-channel clamp in integer units: CLAMP_MARGIN x the maximum, at least 1/4 unit."""
    units = np.maximum(np.asarray(max_abs, np.float64) * CLAMP_MARGIN, 0.25)
    return np.ceil(units * 2.0**frac).astype(np.int64)


def _group_sums(K: np.ndarray, x_lim: np.ndarray, groups: int) -> np.ndarray:
    """(groups, cout): sum over each input group of |K| times the input clamps, in int64
    (the largest magnitude any partial sum of that group's float32 GEMM can reach)."""
    absk = np.abs(np.asarray(K, np.int64)).reshape(-1, K.shape[2], K.shape[3]).sum(0)  # (cin, cout)
    per = absk * np.asarray(x_lim, np.int64)[:, None]
    return per.reshape(groups, -1, per.shape[1]).sum(1)


def mult_range(groups: int) -> tuple:
    """(lo, hi) of the rescaling multiplier of a convolution split into ``groups``
    input groups: ``|r| * hi + 2**23 < 2**31`` for ``|r| <= r_limit(groups)``."""
    bits = MULT_BITS - (groups - 1).bit_length()
    return 1 << (bits - 1), (1 << bits) - 1


def r_limit(groups: int) -> int:
    """Largest ``|int32(acc) + b|`` a convolution of ``groups`` input groups may reach."""
    return min(groups * BUDGET, ((1 << 31) - (1 << 23) - 1) // mult_range(groups)[1])


def _scale_layer(w: np.ndarray, b: np.ndarray, x_lim: np.ndarray, f_in: int, s_out: float, groups: int = 1):
    """Integer kernel, bias, multiplier and shift per output channel for one convolution.

    ``w`` (kh, kw, cin, cout) real weights, ``x_lim`` (cin,) integer input clamps,
    ``f_in`` fractional bits of the input, ``s_out`` integer units per real unit of
    the output; the input channels are split into ``groups`` equal GEMMs.  The
    weight scale ``sigma = s_out * 2**k / (m * 2**f_in)`` is the largest the
    bounds allow (each group's sum at most BUDGET, the total at most
    :func:`r_limit`), with ``m`` in :func:`mult_range`.
    """
    cout = w.shape[-1]
    lo, hi = mult_range(groups)
    limit = r_limit(groups)
    absw = np.abs(w).reshape(-1, w.shape[2], cout).sum(0) * np.asarray(x_lim, np.float64)[:, None]  # (cin, cout)
    per_group = absw.reshape(groups, -1, cout).sum(1)  # (groups, cout), per unit of sigma
    K = np.zeros(w.shape, np.int64)
    B = np.zeros(cout, np.int64)
    M = np.zeros(cout, np.int64)
    S = np.zeros(cout, np.int64)
    for o in range(cout):
        total = per_group[:, o].sum() + abs(b[o]) * 2.0**f_in
        sigma_max = min(BUDGET / max(per_group[:, o].max(), 1e-30), limit / max(total, 1e-30)) * (1 - 1e-6)
        # k such that m = s_out * 2**k / (sigma_max * 2**f_in) lands in [lo, hi]
        k = int(math.ceil(math.log2(lo * sigma_max * 2.0**f_in / s_out)))
        m = int(math.ceil(s_out * 2.0**k / (sigma_max * 2.0**f_in)))
        if k > 24:  # tiny weights (or none): the finest scale the int32 rescaling allows
            k, m = 24, lo
        while True:
            if m > hi:
                k, m = k - 1, int(math.ceil(m / 2))
            sigma = s_out * 2.0**k / (m * 2.0**f_in)
            Ko = np.floor(w[..., o : o + 1] * sigma + 0.5).astype(np.int64)
            Bo = int(np.floor(b[o] * sigma * 2.0**f_in + 0.5))
            sums = _group_sums(Ko, x_lim, groups)[:, 0]
            if sums.max() <= BUDGET and sums.sum() + abs(Bo) <= limit:
                break
            m += 1  # rounding pushed a sum over: a slightly smaller scale
        if not 1 <= k <= 24:
            raise ValueError(f"output channel {o}: rescaling shift {k} outside 1..24")
        K[..., o], B[o], M[o], S[o] = Ko[..., 0], Bo, m, k
    return K, B, M, S


def quantize(params: dict, stats: dict, prefix: str = "g_s", layers: int = 4, groups=GROUPS) -> dict:
    """Version-2 integer synthesis parameters from float ones and activation statistics.

    ``stats`` holds the largest magnitude per channel that the float synthesis
    reaches on training photos, over all qualities: ``"a0"`` (the latent times
    the inverse gain, (M,)) and ``"gdn{i}"`` (the output of inverse GDN ``i``, (N,)).
    Returns integer arrays (stored under ``fixed32/`` in a weights file).
    """
    out = {"version": np.array(VERSION, np.int64), "frac": np.array(FRAC, np.int64)}
    ig = np.exp(np.asarray(params["log_inv_gain/.value"], np.float64))  # (Q, M)
    out["gain"] = np.floor(ig * 2.0 ** (GAIN_SHIFT + FRAC) + 0.5).astype(np.int64)
    clamps = [_clamp(stats["a0"], FRAC)] + [_clamp(stats[f"gdn{i}"], FRAC) for i in range(layers - 1)]
    for i in range(layers):
        w = np.asarray(params[f"{prefix}/convs/{i}/kernel/.value"], np.float64)
        b = np.asarray(params[f"{prefix}/convs/{i}/bias/.value"], np.float64)
        last = i == layers - 1
        g = groups[i] if w.shape[2] % groups[i] == 0 else 1
        K, B, M, S = _scale_layer(w, b, clamps[i], FRAC, 255.0 if last else float(1 << FRAC), g)
        out.update({f"conv{i}/kernel": K, f"conv{i}/bias": B, f"conv{i}/mult": M, f"conv{i}/shift": S})
        out[f"conv{i}/clamp"] = clamps[i]
        out[f"conv{i}/groups"] = np.array(g, np.int64)
        if not last:
            beta = softplus(params[f"{prefix}/acts/{i}/beta/.value"]) + 1e-6
            gamma = softplus(params[f"{prefix}/acts/{i}/gamma/.value"])  # (c_in, c_out)
            # gamma * 2**u: the largest u with ACT_LIMIT * sum|gamma| * 2**u <= BUDGET
            u = np.floor(np.log2(BUDGET / (ACT_LIMIT * gamma.sum(0) + beta * 2.0**FRAC))).astype(np.int64)
            G = np.floor(gamma * 2.0**u + 0.5).astype(np.int64)
            Bt = np.floor(beta * 2.0 ** (u + FRAC) + 0.5).astype(np.int64)
            over = ACT_LIMIT * G.sum(0) + Bt > BUDGET
            u = u - over  # rounding up may cross the budget by one unit
            G = np.floor(gamma * 2.0**u + 0.5).astype(np.int64)
            Bt = np.floor(beta * 2.0 ** (u + FRAC) + 0.5).astype(np.int64)
            out.update({f"gdn{i}/gamma": G, f"gdn{i}/beta": Bt, f"gdn{i}/shift": u + FRAC - NORM_FRAC})
    for key, v in list(out.items()):
        if key.endswith(("/kernel", "/gamma")) and np.abs(v).max() < (1 << 15):
            out[key] = v.astype(np.int16)
        elif key not in ("version", "frac") and not key.endswith("/groups"):
            out[key] = v.astype(np.int32) if np.abs(v).max() < (1 << 31) else v
    problem = bound_check(out)
    if problem:
        raise ValueError(f"version-2 synthesis parameters are not exact: {problem}")
    return out


def bound_check(fx: dict) -> str:
    """Every bound of the proof above, checked in int64 on the stored integers.

    Returns ``""`` when all hold, else a description of the first that fails.
    """
    if int(fx["version"]) != VERSION or int(fx["frac"]) != FRAC:
        return f"version {int(fx['version'])} / {int(fx['frac'])} fractional bits not supported by this build"
    if LATENT_LIMIT * int(np.abs(fx["gain"]).max()) + (1 << (GAIN_SHIFT - 1)) >= 1 << 31:
        return "latent times gain reaches 2**31"
    i = 0
    while f"conv{i}/kernel" in fx:
        K = np.asarray(fx[f"conv{i}/kernel"], np.int64)
        X = np.asarray(fx[f"conv{i}/clamp"], np.int64)
        g = int(fx.get(f"conv{i}/groups", 1))
        if g < 1 or g > MAX_GROUPS or K.shape[2] % g or X.shape != (K.shape[2],):
            return f"convolution {i}: {g} input groups for {K.shape[2]} channels"
        if X.min() < 1 or X.max() > BUDGET:
            return f"convolution {i}: clamp out of range"
        sums = _group_sums(K, X, g)
        if sums.max() > BUDGET:
            return f"convolution {i} reaches {int(sums.max())} > 2**24 - 1 in one GEMM"
        total = sums.sum(0) + np.abs(np.asarray(fx[f"conv{i}/bias"], np.int64))
        if total.max() > r_limit(g):
            return f"convolution {i}: its sum reaches {int(total.max())} > {r_limit(g)}"
        m, k = np.asarray(fx[f"conv{i}/mult"], np.int64), np.asarray(fx[f"conv{i}/shift"], np.int64)
        if m.min() < 1 or m.max() > mult_range(g)[1] or k.min() < 1 or k.max() > 24:
            return f"convolution {i}: multiplier or shift out of range"
        if f"gdn{i}/gamma" in fx:
            G = np.asarray(fx[f"gdn{i}/gamma"], np.int64)
            Bt = np.asarray(fx[f"gdn{i}/beta"], np.int64)
            t = np.asarray(fx[f"gdn{i}/shift"], np.int64)
            if G.min() < 0 or Bt.min() < 0 or (ACT_LIMIT * G.sum(0) + Bt).max() > BUDGET or t.min() < 1 or t.max() > 30:
                return f"GDN {i} out of bounds"
        i += 1
    if ACT_LIMIT * NORM_LIMIT + (1 << (NORM_FRAC - 1)) >= 1 << 31:  # pragma: no cover - constants
        return "GDN product reaches 2**31"
    return ""


def float_synthesis(params: dict, y: np.ndarray, quality: int, stats: dict | None = None, prefix: str = "g_s") -> np.ndarray:
    """The float synthesis in float64 NumPy: (h, w, M) latent -> float image in
    [0, 1] (not clipped).  With ``stats`` (a dict) it records the largest
    magnitude per channel of the input ``a0`` and of each inverse GDN's output
    (:func:`quantize` takes these maxima)."""

    def rec(key, a):
        if stats is not None:
            m = np.abs(a).reshape(-1, a.shape[-1]).max(0)
            stats[key] = np.maximum(stats.get(key, m), m)

    conv = im2col_conv(np.matmul, np)
    ig = np.exp(np.asarray(params["log_inv_gain/.value"], np.float64))[quality - 1]
    a = np.asarray(y, np.float64) * ig
    rec("a0", a)
    i = 0
    while f"{prefix}/convs/{i}/kernel/.value" in params:
        k = np.asarray(params[f"{prefix}/convs/{i}/kernel/.value"], np.float64)
        a = conv(a, k.reshape(-1, k.shape[-1])) + np.asarray(params[f"{prefix}/convs/{i}/bias/.value"], np.float64)
        a = depth_to_space(a)
        if f"{prefix}/acts/{i}/beta/.value" in params:
            beta = softplus(params[f"{prefix}/acts/{i}/beta/.value"]) + 1e-6
            gamma = softplus(params[f"{prefix}/acts/{i}/gamma/.value"])
            a = a * (beta + np.abs(a) @ gamma)
            rec(f"gdn{i}", a)
        i += 1
    return a + 0.5


def _check(fx: dict) -> None:
    problem = bound_check(fx)
    if problem:
        raise ValueError(f"fixed-point synthesis parameters refused: {problem}")


def im2col_conv(gemm, xp):
    """A 'SAME' 3x3 convolution of (H, W, Cin) with a (9 * Cin, Cout) kernel as
    one GEMM of the nine shifted views (im2col)."""

    def conv(a, k):
        h, w, cin = a.shape
        p = xp.pad(a, ((1, 1), (1, 1), (0, 0)))
        cols = xp.concatenate([p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=-1)
        return gemm(cols.reshape(h * w, 9 * cin), k).reshape(h, w, -1)

    return conv


def forward(c: dict, y, q, gemm, conv, xp):
    """The network of the module docstring, once for NumPy and jax.numpy (``xp``).

    ``gemm(a, w)`` multiplies integer-valued float32 (n, k) by (k, m) and
    ``conv(a, k)`` is a 'SAME' 3x3 convolution of float32 (H, W, Cin) with a
    (9 * Cin, Cout) kernel, both exact under the bounds; ``c`` holds the
    parameters (float32 kernels, int32 everything else)."""
    i32 = xp.int32
    rs = rshift_round
    yc = xp.clip(y.astype(i32), -LATENT_LIMIT, LATENT_LIMIT)
    a = rs(yc * c["gain"][q], GAIN_SHIFT)
    layers = c["layers"]
    for i in range(layers):
        lim = c[f"clamp{i}"]
        a = xp.clip(a, -lim, lim)
        af = a.astype(xp.float32)
        cg = af.shape[-1] // len(c[f"k{i}"])
        r = c[f"b{i}"]
        for j, k in enumerate(c[f"k{i}"]):  # input groups: each GEMM exact, summed in int32
            r = r + conv(af[..., j * cg : (j + 1) * cg], k).astype(i32)
        if i == layers - 1:
            pix = ((((r * c[f"m{i}"]) >> (c[f"s{i}"] - 1)) + 256) >> 1).astype(i32)
            return xp.clip(depth_to_space(pix), 0, 255).astype(xp.uint8)
        a = xp.clip(depth_to_space(rs(r * c[f"m{i}"], c[f"s{i}"])), -ACT_LIMIT, ACT_LIMIT)
        h, w, n = a.shape
        acc = gemm(xp.abs(a).astype(xp.float32).reshape(h * w, n), c[f"g{i}"]).reshape(h, w, n)
        norm = xp.minimum(rs(acc.astype(i32) + c[f"beta{i}"], c[f"t{i}"]), NORM_LIMIT)
        a = rs(a * norm, NORM_FRAC)


def _constants(fx: dict) -> dict:
    """Parameters of a weights file's ``fixed32/`` group, checked, as the arrays
    :func:`forward` uses (kernels flattened to (9 * cin, cout) float32)."""
    _check(fx)
    c = {"gain": np.asarray(fx["gain"], np.int32)}
    i = 0
    while f"conv{i}/kernel" in fx:
        K = np.asarray(fx[f"conv{i}/kernel"])
        g = int(fx.get(f"conv{i}/groups", 1))
        cg = K.shape[2] // g
        c[f"k{i}"] = tuple(K[:, :, j * cg : (j + 1) * cg].reshape(-1, K.shape[-1]).astype(np.float32) for j in range(g))
        for key, name in (("bias", "b"), ("mult", "m"), ("shift", "s"), ("clamp", "clamp")):
            c[f"{name}{i}"] = np.asarray(fx[f"conv{i}/{key}"], np.int32)
        if f"gdn{i}/gamma" in fx:
            c[f"g{i}"] = np.asarray(fx[f"gdn{i}/gamma"]).astype(np.float32)
            c[f"beta{i}"] = np.asarray(fx[f"gdn{i}/beta"], np.int32)
            c[f"t{i}"] = np.asarray(fx[f"gdn{i}/shift"], np.int32)
        i += 1
    c["layers"] = i
    return c


def synthesize(y: np.ndarray, quality: int, fx: dict) -> np.ndarray:
    """Integer latent (h, w, M) -> uint8 RGB (16h, 16w, 3) with NumPy (the slow,
    readable path; :class:`Synthesis` runs the same arithmetic with XLA)."""
    c = _constants(fx)
    gemm = np.matmul
    return forward(c, np.asarray(y), quality - 1, gemm, im2col_conv(gemm, np), np)


class Synthesis:
    """The version-2 synthesis compiled by XLA: float32 GEMMs at ``HIGHEST``
    precision and int32 element-wise steps, on ``device`` (default: JAX's
    default device; the pixels are the same on every device).

    ``conv``: ``"xla"`` runs each convolution as XLA's convolution (a GEMM on
    the CPU backend, the fast choice there), ``"im2col"`` as one explicit GEMM of
    the nine shifted views (no accelerator library may pick a Winograd or FFT
    algorithm for it), ``"auto"`` the first on CPU and the second elsewhere.
    Both give the same pixels (tested)."""

    def __init__(self, fx: dict, device=None, conv: str = "auto"):
        import jax
        import jax.numpy as jnp

        self._jax = jax
        self.device = device or jax.devices()[0]
        c = _constants(fx)
        layers = c.pop("layers")
        self._consts = {k: jax.device_put(v, self.device) for k, v in c.items()}

        hi = jax.lax.Precision.HIGHEST
        if conv == "auto":  # XLA's CPU convolution is a GEMM; on accelerators rule out Winograd/FFT
            conv = "xla" if self.device.platform == "cpu" else "im2col"
        if conv not in ("xla", "im2col"):
            raise ValueError(f"conv must be 'auto', 'xla' or 'im2col', got {conv!r}")

        def gemm(a, w):
            return jnp.dot(a, w, precision=hi, preferred_element_type=jnp.float32)

        if conv == "im2col":
            conv_fn = im2col_conv(gemm, jnp)
        else:

            def conv_fn(a, k):
                k = k.reshape(3, 3, -1, k.shape[-1])
                nhwc = ("NHWC", "HWIO", "NHWC")
                return jax.lax.conv_general_dilated(a[None], k, (1, 1), "SAME", dimension_numbers=nhwc, precision=hi)[0]

        def run(c, y, q):
            return forward({**c, "layers": layers}, y, q, gemm, conv_fn, jnp)

        self._run = jax.jit(run)
        self._run_many = jax.jit(jax.vmap(run, in_axes=(None, 0, 0)))

    def __call__(self, y: np.ndarray, quality: int) -> np.ndarray:
        jax = self._jax
        y = jax.device_put(np.asarray(y, np.int32), self.device)
        q = jax.device_put(np.int32(quality - 1), self.device)
        return np.asarray(self._run(self._consts, y, q))

    def many(self, y: np.ndarray, qualities) -> np.ndarray:
        """A batch: int latents (B, h, w, M), one quality each -> (B, 16h, 16w, 3)
        uint8, the pixels of :meth:`__call__` on each (integer arithmetic does
        not depend on the batch)."""
        jax = self._jax
        y = jax.device_put(np.asarray(y, np.int32), self.device)
        q = jax.device_put(np.asarray(qualities, np.int32) - 1, self.device)
        return np.asarray(self._run_many(self._consts, y, q))
