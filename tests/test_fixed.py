"""Bit-exact fixed-point synthesis (nkcodec.nets.exact_v1): exact integers, order-independent,
XLA == NumPy, and faithful to the float network."""

import dataclasses

import numpy as np
import pytest

from nkcodec import zoo
from nkcodec.fit import train as T
from nkcodec.nets import exact_v1, runtime
from nkcodec.nets import transforms as M

TINY = M.NetConfig(n=8, m=12, filters=(2, 2))


def _trained(tmp_path, activation="gdn"):
    cfg = dataclasses.replace(TINY, activation=activation)
    tr = T.Trainer(cfg, T.TrainConfig(batch=2, crop=32, lr=1e-2, warmup=1, steps=100))
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    tr.train_steps(imgs, 3)
    return zoo.ModelRuntime(zoo.export(tr, tmp_path / f"{activation}.npz", model_id=90))


def _latent(shape, seed=0, scale=3.0):
    return np.round(np.random.default_rng(seed).normal(0, scale, shape)).astype(np.int32)


def _shift(v: np.ndarray, s) -> np.ndarray:
    """Integer round-half-up division by 2**s (s may be <= 0): the exact meaning of the rescaling in exact_v1.forward."""
    s = np.asarray(s, np.int64)
    pos, neg = np.maximum(s, 0), np.maximum(-s, 0)
    return np.where(s > 0, (v + (np.int64(1) << np.maximum(pos - 1, 0))) >> pos, v << neg)


def _int64_reference(y, q, fx):
    """The same network in Python integers (int64 NumPy): the ground truth."""
    f = {k: np.asarray(v).astype(np.int64) for k, v in fx.items()}
    lim, nlim = int(exact_v1.ACT_LIMIT), int(exact_v1.NORM_LIMIT)
    a = np.clip(np.clip(y.astype(np.int64), -exact_v1.LATENT_LIMIT, exact_v1.LATENT_LIMIT) * f["inv_gain"][q - 1], -lim, lim)
    for i in range(4):
        k = f[f"conv{i}/kernel"]
        h, w, cin = a.shape
        p = np.zeros((h + 2, w + 2, cin), np.int64)
        p[1:-1, 1:-1] = a
        acc = sum(np.einsum("hwc,cd->hwd", p[dy : dy + h, dx : dx + w], k[dy, dx]) for dy in range(3) for dx in range(3))
        acc = _shift(acc + f[f"conv{i}/bias"], f[f"conv{i}/shift"])
        c = acc.shape[-1] // 4
        a = np.clip(acc.reshape(h, w, 2, 2, c).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, c), -lim, lim)
        if i < 3:
            if f["gdn"]:
                norm = np.einsum("hwc,cd->hwd", np.abs(a), f[f"gdn{i}/gamma"]) + f[f"gdn{i}/beta"]
                norm = np.minimum(_shift(norm, f[f"gdn{i}/shift"] + exact_v1.FRAC_BITS - exact_v1.NORM_BITS), nlim)
                a = np.clip(_shift(a * norm, exact_v1.NORM_BITS), -lim, lim)
            else:
                a = np.maximum(a, 0)
    pix = _shift((a + (1 << (exact_v1.FRAC_BITS - 1))) * 255, exact_v1.FRAC_BITS)
    return np.clip(pix, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("activation", ["gdn", "relu"])
def test_numpy_and_xla_match_the_integer_reference(tmp_path, activation):
    m = _trained(tmp_path, activation)
    xla = exact_v1.XlaSynthesis(m.fixed)
    for seed, q in ((0, 1), (1, 5), (2, 8)):
        y = _latent((3, 5, 12), seed)
        ref = _int64_reference(y, q, m.fixed)
        np.testing.assert_array_equal(exact_v1.synthesize(y, q, m.fixed), ref)
        np.testing.assert_array_equal(xla(y, q), ref)


def test_result_does_not_depend_on_summation_order(tmp_path):
    m = _trained(tmp_path)
    fx = dict(m.fixed)
    y = _latent((4, 4, 12), 3, scale=6.0)
    base = exact_v1.synthesize(y, 4, fx)
    # permute the latent channels and the first layer's input channels together: a
    # different accumulation order of the same integers must give identical pixels
    perm = np.random.default_rng(0).permutation(12)
    fx["conv0/kernel"] = fx["conv0/kernel"][:, :, perm]
    fx["inv_gain"] = fx["inv_gain"][:, perm]
    np.testing.assert_array_equal(exact_v1.synthesize(y[..., perm], 4, fx), base)


def test_fixed_point_is_faithful_to_the_float_network(tmp_path):
    m = _trained(tmp_path)
    y = _latent((4, 6, 12), 4)
    import jax.numpy as jnp

    nets = m.float_nets()
    flt = np.asarray(nets.dec(nets.state, jnp.asarray(y[None]), jnp.asarray([3], jnp.int32))[0]).astype(int)
    fx = exact_v1.synthesize(y, 4, m.fixed).astype(int)
    assert np.abs(flt - fx).max() <= 1
    assert (flt != fx).mean() < 0.05


def test_loaded_model_decodes_with_fixed_point(tmp_path):
    m = _trained(tmp_path)
    y = _latent((3, 3, 12), 5)
    out = m.decode_latent(y, 2, (40, 37))
    assert out.shape == (40, 37, 3)
    np.testing.assert_array_equal(out, exact_v1.synthesize(np.pad(y, ((0, 1), (0, 1), (0, 0))), 2, m.fixed)[:40, :37])


def test_hostile_latents_stay_exact(tmp_path):
    """Huge latents are clamped, activations too: XLA, NumPy and the integer
    reference still agree, so even a hostile stream decodes identically everywhere."""
    m = _trained(tmp_path)
    y = np.where(_latent((3, 3, 12), 6) > 0, 1 << 20, -(1 << 20)).astype(np.int32)
    ref = _int64_reference(y, 8, m.fixed)
    np.testing.assert_array_equal(exact_v1.synthesize(y, 8, m.fixed), ref)
    np.testing.assert_array_equal(exact_v1.XlaSynthesis(m.fixed)(y, 8), ref)
    assert exact_v1.bound_check(m.fixed) < 53


def test_unknown_version_is_refused(tmp_path):
    m = _trained(tmp_path)
    fx = dict(m.fixed, version=np.array(99))
    with pytest.raises(ValueError, match="version 99"):
        exact_v1.synthesize(_latent((1, 1, 12)), 1, fx)


@pytest.mark.parametrize("tile", [1, 2, 3])
def test_tiled_decoding_is_bit_identical(tmp_path, monkeypatch, tile):
    """Large images decode in tiles (bounded memory); with exact arithmetic and
    DEC_HALO of context the pixels equal a single pass exactly."""
    m = _trained(tmp_path)
    y = _latent((9, 7, 12), 7, scale=4.0)
    whole = exact_v1.synthesize(np.pad(y, ((0, 3), (0, 1), (0, 0))), 3, m.fixed)[:139, :101]
    monkeypatch.setattr(runtime, "NET_TILE", tile)
    np.testing.assert_array_equal(m.decode_latent(y, 3, (139, 101)), whole)


def test_tiled_analysis_matches_one_pass(tmp_path, monkeypatch):
    m = _trained(tmp_path)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:150, 0:200]
    img = np.clip(np.stack([xx, yy, xx + yy], -1) + rng.integers(0, 40, (150, 200, 3)), 0, 255).astype(np.uint8)
    whole = m.encode_latent(img, 6)
    monkeypatch.setattr(runtime, "NET_TILE", 4)
    tiled = m.encode_latent(img, 6)
    assert tiled.shape == whole.shape == (10, 13, 12)
    # float32 on different shapes: a rounding may flip, nothing more
    assert np.abs(tiled - whole).max() <= 1 and (tiled != whole).mean() < 0.01


@pytest.mark.parametrize("name", sorted(set(zoo.MODEL_IDS.values()) - set(zoo.EXACT32_VARIANTS)))
def test_shipped_fixed_point_arrays_pass_their_bound_checks(name):
    """The shipped arrays themselves, both versions: exact by their bounds, and a
    tampered copy (a kernel scaled past the bound) is refused when loaded."""
    from nkcodec.nets import exact_v2

    m = zoo.open_model(name)
    assert m.fixed is not None and exact_v1.bound_check(m.fixed) < 53
    if m.fixed32 is not None:
        assert exact_v2.bound_check(m.fixed32) == ""
    key = next(k for k in m.fixed if k.endswith("/kernel"))
    bad = {**m.fixed, key: m.fixed[key] * 2.0**40}
    with pytest.raises(ValueError, match="2\\*\\*53"):
        exact_v1.XlaSynthesis(bad)
