import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nkcodec import zoo
from nkcodec.coding import entropy
from nkcodec.fit import context_tables
from nkcodec.fit import train as T
from nkcodec.nets import transforms as M
from nkcodec.nets import weights_file

TINY = M.NetConfig(n=8, m=12, filters=(2, 2))


def _trainer(**kw):
    cfg = T.TrainConfig(batch=4, crop=32, lr=1e-3, warmup=1, steps=1000, **kw)
    return T.Trainer(TINY, cfg)


def _images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y, x = np.mgrid[0:40, 0:48]
        base = np.stack([x * 5, y * 6, (x + y) * 3], -1) + rng.integers(0, 30, (40, 48, 3))
        out.append(np.clip(base, 0, 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("activation", ["gdn", "relu"])
def test_shapes(activation):
    m = M.CompressionModel(M.NetConfig(n=8, m=12, activation=activation))
    x = jnp.zeros((2, 48, 80, 3))
    out = m(x, jnp.array([0, 7]), train=True, key=jax.random.PRNGKey(0))
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"].shape == (2, 3, 5, 12)
    assert bool(jnp.all(out["likelihoods"] > 0)) and bool(jnp.all(out["likelihoods"] <= 1))


def test_depth_to_space():
    x = jnp.arange(2 * 3 * 4 * 8).reshape(2, 3, 4, 8).astype(jnp.float32)
    y = M.depth_to_space(x, 2)
    assert y.shape == (2, 6, 8, 2)
    # every input value appears exactly once
    assert sorted(np.asarray(y).ravel().tolist()) == sorted(np.asarray(x).ravel().tolist())


def test_training_lowers_loss():
    tr = _trainer()
    imgs = _images()
    rng = np.random.default_rng(1)
    x = jnp.asarray(T.random_crops(imgs, 4, 32, rng))
    q = jnp.array([0, 3, 5, 7])
    before = float(T.loss_fn(tr.model, x, q, jax.random.PRNGKey(0))[0])
    tr.train_steps(imgs, 60)
    after = float(T.loss_fn(tr.model, x, q, jax.random.PRNGKey(0))[0])
    assert after < before


def _leaves(tree):
    return [np.asarray(v) for v in jax.tree.leaves(tree)]


def test_checkpoint_resume_is_exact(tmp_path):
    imgs = _images()
    a = _trainer()
    a.train_steps(imgs, 3)
    T.save_checkpoint(tmp_path / "c.npz", a)
    b = T.load_checkpoint(tmp_path / "c.npz")
    assert b.step == 3
    for u, v in zip(_leaves(T.nnx.state(a.model)), _leaves(T.nnx.state(b.model))):
        np.testing.assert_array_equal(u, v)
    # both continue identically: same data RNG, same optimizer state
    a.train_steps(imgs, 2)
    b.train_steps(imgs, 2)
    for u, v in zip(_leaves(T.nnx.state(a.model)), _leaves(T.nnx.state(b.model))):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(_leaves(a.ema), _leaves(b.ema)):
        np.testing.assert_array_equal(u, v)


def test_export_load_round_trip(tmp_path):
    tr = _trainer()
    tr.train_steps(_images(), 2)
    path = zoo.export(tr, tmp_path / "w.npz", model_id=99)
    loaded = zoo.ModelRuntime(path)
    assert loaded.model_id == 99 and loaded.latent_channels == 12
    ema = tr.ema_model()
    img = _images(1)[0]
    y = loaded.encode_latent(img, 5)
    assert y.shape == (3, 3, 12) and y.dtype == np.int32
    x = jnp.asarray(np.pad(img, ((0, 24), (0, 16), (0, 0)), mode="edge")[None] / 255.0, jnp.float32)
    ref = np.asarray(jnp.round(ema.encode_latent(x, jnp.array([4]))))[0, :3, :3]
    np.testing.assert_array_equal(y, ref.astype(np.int32))
    out = loaded.decode_latent(y, 5, img.shape[:2])
    assert out.shape == img.shape and out.dtype == np.uint8
    t = loaded.tables
    assert t["freq"].shape[0] == 12
    for c in range(12):
        assert int(t["freq"][c, : t["size"][c]].sum()) == 1 << zoo.TABLE_PRECISION
        assert t["freq"][c, : t["size"][c]].min() >= 1


def test_quantize_pmf():
    f = entropy.quantize_pmf(np.array([0.5, 0.5, 0.0, 1e-12]), 1 << 16)
    assert f.sum() == 1 << 16 and f.min() >= 1


def test_resume_with_lower_lr(tmp_path):
    a = _trainer()
    a.train_steps(_images(), 2)
    T.save_checkpoint(tmp_path / "c.npz", a)
    b = T.load_checkpoint(tmp_path / "c.npz", {"lr": 1e-5})
    assert b.cfg.lr == 1e-5 and b.step == 2
    for u, v in zip(_leaves(T.nnx.state(a.optimizer)), _leaves(T.nnx.state(b.optimizer))):
        np.testing.assert_array_equal(u, v)


def test_fit_to_time_plans_schedule_and_keeps_adam_state():
    """fit_to_time measures the step rate, then swaps in a schedule that ends at the
    planned step, keeping the Adam moments and update count; training carries on."""
    tr = _trainer()
    imgs = _images()
    tr.train_steps(imgs, 2)
    n = tr.fit_to_time(imgs, seconds=4.0, calib=3)
    assert n >= 1 and tr.cfg.steps == tr.step + n
    count = int(tr.optimizer.step[...])
    assert count == tr.step  # 2 + 1 compiling + 3 measured steps
    before = _leaves(T.nnx.state(tr.optimizer))
    tr.set_schedule(T._lr_curve(1e-3, 1, count + 1, count + 2))
    for u, v in zip(before, _leaves(T.nnx.state(tr.optimizer))):
        np.testing.assert_array_equal(u, v)
    loss, _, _ = tr.train_steps(imgs, 2)
    assert np.isfinite(loss) and int(tr.optimizer.step[...]) == count + 2


def test_lr_curve_shape():
    f = T._lr_curve(1e-3, 10, 100, 200)
    assert float(f(0)) == pytest.approx(1e-5, rel=1e-3)
    assert float(f(50)) == pytest.approx(1e-3, rel=1e-3)
    assert float(f(150)) < 1e-3 and float(f(200)) == pytest.approx(5e-5, rel=1e-3)


def test_train_cli_resume(tmp_path):
    from PIL import Image

    from nkcodec.tools.cli import main

    data = tmp_path / "data"
    data.mkdir()
    for i, im in enumerate(_images(2)):
        Image.fromarray(im).save(data / f"{i}.png")
    work = tmp_path / "w"
    args = ["train", "--data", str(data), "--workdir", str(work), "--n", "8", "--m", "12", "--crop", "32", "--batch", "2"]
    assert main(args + ["--steps", "3"]) == 0
    assert main(args + ["--steps", "5", "--resume", str(work / "ckpt.npz")]) == 0
    assert T.load_checkpoint(work / "ckpt.npz").step == 5
    assert (work / "train.log").read_text().count('"event": "train"') >= 2


def test_init_from_shipped_weights(tmp_path):
    a = _trainer()
    a.train_steps(_images(), 3)
    path = zoo.export(a, tmp_path / "w.npz", model_id=5)
    b = _trainer()
    T.init_from_weights(b, path)
    assert b.step == 3
    for u, v in zip(_leaves(T.nnx.state(a.ema_model(), T.nnx.Param)), _leaves(T.nnx.state(b.model, T.nnx.Param))):
        np.testing.assert_array_equal(u, v)
    c = T.Trainer(M.NetConfig(n=8, m=16), a.cfg)
    with pytest.raises(ValueError, match="trained with"):
        T.init_from_weights(c, path)


def test_per_quality_prior_from_shared_weights(tmp_path):
    """Shared-prior weights seed a per-quality model: same likelihoods at first,
    then each quality's density trains on its own; tables have one block per quality."""
    import dataclasses

    shared = _trainer()
    shared.train_steps(_images(), 2)
    src = zoo.export(shared, tmp_path / "shared.npz", model_id=98)
    cfg = dataclasses.replace(TINY, prior_per_quality=True)
    tr = T.Trainer(cfg, T.TrainConfig(batch=4, crop=32, lr=1e-2, warmup=1, steps=1000))
    T.init_from_weights(tr, src)
    y = jnp.asarray(np.random.default_rng(0).normal(0, 2, (3, 2, 3, 12)), jnp.float32)
    q = jnp.array([0, 4, 7])
    ref = shared.ema_model().prior.likelihood(y)
    np.testing.assert_allclose(np.asarray(tr.model.prior.likelihood(y, q)), np.asarray(ref), rtol=1e-5)
    with pytest.raises(ValueError, match="quality"):
        tr.model.prior.likelihood(y)
    tr.train_steps(_images(), 5)
    path = zoo.export(tr, tmp_path / "pq.npz", model_id=97)
    loaded = zoo.ModelRuntime(path)
    assert loaded.tables["freq"].shape[0] == 8 * 12
    assert loaded.tables_for(3)["freq"].shape[0] == 12
    assert not np.array_equal(loaded.tables_for(1)["freq"], loaded.tables_for(8)["freq"])
    # estimate_bits uses the quality's own density
    yl = np.round(np.asarray(y[:1])).astype(np.int32)[0]
    assert loaded.estimate_bits(yl, 1) != loaded.estimate_bits(yl, 8)
    # a mismatched architecture is still refused
    other = T.Trainer(dataclasses.replace(cfg, m=10), T.TrainConfig(batch=4, crop=32))
    with pytest.raises(ValueError, match="trained with"):
        T.init_from_weights(other, src)


def test_checkpoint_widened_to_per_quality_prior(tmp_path):
    a = _trainer()
    imgs = _images()
    a.train_steps(imgs, 3)
    b = T.with_per_quality_prior(a)
    assert b.model_cfg.prior_per_quality and b.step == 3
    y = jnp.asarray(np.random.default_rng(1).normal(0, 2, (2, 2, 2, 12)), jnp.float32)
    np.testing.assert_allclose(np.asarray(b.model.prior.likelihood(y, jnp.array([1, 6]))), np.asarray(a.model.prior.likelihood(y)), rtol=1e-5)
    b.train_steps(imgs, 2)  # optimizer state (Adam moments, count) carried over and usable
    T.save_checkpoint(tmp_path / "c.npz", b)
    c = T.load_checkpoint(tmp_path / "c.npz")
    assert c.model_cfg.prior_per_quality and c.step == 5


def test_fit_context_tables_into_weights(tmp_path):
    """fit-context counts tables on images, stores them beside the other groups
    (which stay as they were) and the context preset codes with them."""
    from nkcodec.coding import context

    tr = _trainer()
    tr.train_steps(_images(), 2)
    path = zoo.export(tr, tmp_path / "w.npz", model_id=9)
    before = dict(np.load(path))
    m = zoo.ModelRuntime(path)
    arrays = context_tables.fit(m, _images(4, seed=3), k=3, progress=False)
    weights_file.add_to_weights(path, "ctx", arrays)
    after = dict(np.load(path))
    for key, v in before.items():
        np.testing.assert_array_equal(after[key], v)
    m2 = zoo.ModelRuntime(path)
    ct = m2.context_tables(5)
    assert ct.k == 3 and ct.passes == 2 and ct.version == context.LATEST and sorted(ct.order.tolist()) == list(range(TINY.m))
    y = m2.encode_latent(_images(1, seed=8)[0], 5)
    params, sections = context.code_latent(ct, y)
    np.testing.assert_array_equal(context.decode_latent(ct, params, sections, y.shape[:2]), y.reshape(-1, TINY.m))
    weights_file.add_to_weights(path, "ctx", {"v9/x": np.zeros(3)})  # another version's arrays leave v2's alone
    again = dict(np.load(path))
    assert all(np.array_equal(again[key], after[key]) for key in after) and "ctx/v9/x" in again
