"""The float32-exact synthesis (nkcodec.nets.exact_v2, fixed-point version 2): XLA and
NumPy equal an int64 reference on real and hostile latents, whatever the
backend's summation order; the bound proof is checked; decoding is faithful."""

import dataclasses

import numpy as np
import pytest

from nkcodec import zoo
from nkcodec.fit import train as T
from nkcodec.nets import exact_v2, runtime
from nkcodec.nets import transforms as M

TINY = M.NetConfig(n=8, m=12, filters=(2, 2))


def _latent(shape, seed=0, scale=3.0):
    return np.round(np.random.default_rng(seed).normal(0, scale, shape)).astype(np.int32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A briefly trained tiny model and its version-2 parameters, with clamps
    from the float synthesis of random latents at every quality."""
    tr = T.Trainer(dataclasses.replace(TINY), T.TrainConfig(batch=2, crop=32, lr=1e-2, warmup=1, steps=100))
    rng = np.random.default_rng(0)
    tr.train_steps([rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(2)], 3)
    m = zoo.ModelRuntime(zoo.export(tr, tmp_path_factory.mktemp("w") / "tiny.npz", model_id=90))
    stats = {}
    for q in range(1, 9):
        for seed in range(3):
            exact_v2.float_synthesis(m.params, _latent((4, 5, 12), seed), q, stats)
    return m, exact_v2.quantize(m.params, stats)


def _d2s(a):
    h, w, c = a.shape
    return a.reshape(h, w, 2, 2, c // 4).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, c // 4)


def _int64_reference(y, q, fx, clipped=None):
    """The module docstring's network in int64 with the plain definitions
    (floor division, explicit rounding), counting how often each clamp acts."""
    f = {k: np.asarray(v).astype(np.int64) for k, v in fx.items()}
    clipped = {} if clipped is None else clipped

    def clip(name, v, lim):
        clipped[name] = clipped.get(name, 0) + int((np.abs(v) > lim).sum())
        return np.clip(v, -lim, lim)

    def rnd(v, k):  # floor(v / 2**k + 1/2)
        return np.floor_divide(2 * v + (np.int64(1) << k), np.int64(2) << k)

    a = clip("latent", y.astype(np.int64), exact_v2.LATENT_LIMIT)
    a = rnd(a * f["gain"][q - 1], exact_v2.GAIN_SHIFT)
    layers = sum(1 for k in f if k.endswith("/kernel"))
    for i in range(layers):
        a = clip(f"input{i}", a, f[f"conv{i}/clamp"])
        K = f[f"conv{i}/kernel"]
        h, w, _ = a.shape
        p = np.pad(a, ((1, 1), (1, 1), (0, 0)))
        r = sum(np.einsum("hwc,cd->hwd", p[dy : dy + h, dx : dx + w], K[dy, dx]) for dy in range(3) for dx in range(3))
        r = r + f[f"conv{i}/bias"]
        m, k = f[f"conv{i}/mult"], f[f"conv{i}/shift"]
        if i == layers - 1:
            pix = np.floor_divide(r * m + (np.int64(128) << k), np.int64(1) << k)  # floor(255 v + 128)
            clipped["pixels"] = int(((pix < 0) | (pix > 255)).sum())
            return _d2s(np.clip(pix, 0, 255)).astype(np.uint8)
        a = clip(f"act{i}", _d2s(rnd(r * m, k)), exact_v2.ACT_LIMIT)
        norm = rnd(np.abs(a) @ f[f"gdn{i}/gamma"] + f[f"gdn{i}/beta"], f[f"gdn{i}/shift"])
        norm = clip(f"norm{i}", norm, exact_v2.NORM_LIMIT)
        a = rnd(a * norm, exact_v2.NORM_FRAC)


def test_quantized_parameters_pass_the_bound_proof(tiny):
    _, fx = tiny
    assert exact_v2.bound_check(fx) == ""
    bad = dict(fx, **{"conv1/kernel": fx["conv1/kernel"].astype(np.int64) * 2})
    assert "convolution 1" in exact_v2.bound_check(bad)
    bad = dict(fx, **{"conv0/clamp": fx["conv0/clamp"] * 4})
    assert "convolution 0" in exact_v2.bound_check(bad)
    with pytest.raises(ValueError, match="refused"):
        exact_v2.synthesize(_latent((1, 1, 12)), 1, bad)
    assert "version" in exact_v2.bound_check(dict(fx, version=np.array(1)))


@pytest.mark.parametrize("conv", ["xla", "im2col"])
def test_xla_and_numpy_equal_the_int64_reference(tiny, conv):
    _, fx = tiny
    syn = exact_v2.Synthesis(fx, conv=conv)
    for seed, q in ((0, 1), (1, 4), (2, 8)):
        y = _latent((3, 5, 12), seed)
        ref = _int64_reference(y, q, fx)
        np.testing.assert_array_equal(exact_v2.synthesize(y, q, fx), ref)
        np.testing.assert_array_equal(syn(y, q), ref)


def _hostile(shape, seed=9):
    rng = np.random.default_rng(seed)
    sign = np.where(rng.random(shape) < 0.5, -1, 1)
    return {
        "huge": (sign << 20).astype(np.int32),
        "at the latent limit": (sign * exact_v2.LATENT_LIMIT).astype(np.int32),
        "all positive": np.full(shape, 1 << 30, np.int32),
        "all negative": np.full(shape, -(1 << 30), np.int32),
        "mixed scales": (rng.integers(-50, 50, shape) * 10 ** rng.integers(0, 4, shape)).astype(np.int32),
    }


@pytest.mark.parametrize("conv", ["xla", "im2col"])
@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_hostile_latents_reach_every_clamp_and_stay_exact(tiny, conv, which):
    """Latents at and beyond every limit: each clamp of the network acts, and the
    float32 GEMMs still equal exact integer arithmetic (partial sums at the
    2**24 bound are where an inexact float32 would show).  The tiny model
    runs twice, the second time with its clamps lowered to half a unit so that
    its activations reach them too (smaller clamps only lower the bound)."""
    if which == "tiny":
        tight = dict(tiny[1])
        for i in range(4):
            tight[f"conv{i}/clamp"] = np.minimum(tight[f"conv{i}/clamp"], 1 << (exact_v2.FRAC - 1))
        variants, shape = [tiny[1], tight], (4, 4, 12)
    else:
        variants, shape = [zoo.load_model(zoo.DEFAULT_MODEL).fixed32], (2, 3, 192)
    clipped = {}
    for fx in variants:
        syn = exact_v2.Synthesis(fx, conv=conv)
        for q in (1, 8):
            for y in _hostile(shape).values():
                ref = _int64_reference(y, q, fx, clipped)
                np.testing.assert_array_equal(syn(y, q), ref)
                if which == "tiny":
                    np.testing.assert_array_equal(exact_v2.synthesize(y, q, fx), ref)
    for name in ["latent"] + [f"input{i}" for i in range(4)] + [f"act{i}" for i in range(3)]:
        assert clipped[name] > 0, f"clamp {name} never reached"


def test_result_does_not_depend_on_summation_order(tiny):
    _, fx = tiny
    y = _latent((4, 4, 12), 3, scale=40.0)
    base = exact_v2.synthesize(y, 4, fx)
    # within each input group of the first convolution (a group's bound is what makes it exact)
    g = int(fx["conv0/groups"])
    rng = np.random.default_rng(0)
    perm = np.concatenate([j * (12 // g) + rng.permutation(12 // g) for j in range(g)])
    assert (perm != np.arange(12)).any()
    fp = dict(fx)
    fp["conv0/kernel"] = fx["conv0/kernel"][:, :, perm]
    fp["conv0/clamp"] = fx["conv0/clamp"][perm]
    fp["gain"] = fx["gain"][:, perm]
    np.testing.assert_array_equal(exact_v2.synthesize(y[..., perm], 4, fp), base)
    np.testing.assert_array_equal(exact_v2.Synthesis(fp)(y[..., perm], 4), base)


def test_faithful_to_the_float_network():
    """On a photo-like image the exact decoder of the shipped model stays within
    a couple of levels of its float32 synthesis, far above the codec's error."""
    m = zoo.load_model(zoo.DEFAULT_MODEL)
    yy, xx = np.mgrid[0:96, 0:128]
    img = 128 + 60 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None] + np.random.default_rng(2).normal(0, 8, (96, 128, 3))
    img = np.clip(img * [1.0, 0.8, 0.6], 0, 255).astype(np.uint8)
    for q in (1, 8):
        y = m.encode_latent(img, q)
        flt = m.decode_latent_float32(y, q, (96, 128)).astype(int)
        ex = m.decode_latent(y, q, (96, 128)).astype(int)
        assert np.abs(flt - ex).max() <= 3
        assert np.mean((flt - ex) ** 2) < 0.5  # PSNR between them > 51 dB


def test_rshift_round_is_floor_of_half_up():
    v = np.arange(-70, 70)
    for k in (1, 3, 6):
        np.testing.assert_array_equal(exact_v2.rshift_round(v, k), np.floor(v / 2**k + 0.5).astype(np.int64))


def test_shipped_variant_decodes_a_real_latent_exactly():
    """The default model's float32-exact synthesis passes the bound proof and
    equals the int64 reference on the latent of a real photo crop."""
    m = zoo.load_model(zoo.DEFAULT_MODEL)
    assert m.fixed32 is not None and m.model_id == 6 and exact_v2.bound_check(m.fixed32) == ""
    yy, xx = np.mgrid[0:64, 0:80]
    img = np.clip(np.stack([xx * 3, yy * 2 + 40, (xx + yy) + 60], -1) + np.random.default_rng(1).integers(0, 30, (64, 80, 3)), 0, 255)
    y = m.encode_latent(img.astype(np.uint8), 8)
    yp = np.pad(y, ((0, -y.shape[0] % 4), (0, -y.shape[1] % 4), (0, 0)))  # as decode_latent pads
    np.testing.assert_array_equal(m.decode_latent(y, 8, (64, 80)), _int64_reference(yp, 8, m.fixed32)[:64, :80])


@pytest.mark.parametrize("tile", [1, 3])
def test_tiled_decoding_is_bit_identical(tiny, monkeypatch, tile, tmp_path):
    """A weights file with a ``fixed32/`` group loads as an exact32 model; large
    latents decode in tiles with the same pixels as one pass."""
    import shutil

    m, fx = tiny
    path = shutil.copy(m.path, tmp_path / "t.npz")
    zoo.add_to_weights(path, "fixed32", fx)
    model = zoo.ModelRuntime(path, exact32=True, model_id=91)
    assert model.model_id == 91 and "float32" in model.synthesis
    y = _latent((9, 7, 12), 7, scale=4.0)
    whole = exact_v2.synthesize(np.pad(y, ((0, 3), (0, 1), (0, 0))), 3, fx)[:139, :101]
    monkeypatch.setattr(runtime, "NET_TILE", tile)
    np.testing.assert_array_equal(model.decode_latent(y, 3, (139, 101)), whole)
    with pytest.raises(ValueError, match="fit-exact"):
        zoo.ModelRuntime(m.path, exact32=True)
