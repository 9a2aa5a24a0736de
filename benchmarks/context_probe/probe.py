import os

WORK = os.environ.get("NKCODEC_PROBE_DIR", "/tmp/nkcodec_probe")
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(__file__))
from features import image_feats

from nkcodec import zoo

m = zoo.load_model()
q = int(sys.argv[1])
scheme = int(sys.argv[2])
nf_keep = sys.argv[3] if len(sys.argv) > 3 else "all"
ct = m.context_tables(q)
L = np.load(f"{WORK}/lat_q{q}.npz")
rng = np.random.default_rng(0)


def gather(ids, per_img):
    Xs, Ys = [], []
    for i in ids:
        X, Y, P = image_feats(ct, L[f"i{i:03d}"], scheme)
        if per_img is not None:
            sel = rng.choice(X.shape[1], min(per_img, X.shape[1]), replace=False)
            X, Y = X[:, sel], Y[:, sel]
        Xs.append(X)
        Ys.append(Y)
    return np.concatenate(Xs, 1), np.concatenate(Ys, 1)


t = time.time()
Xtr, Ytr = gather(range(0, 350), 120)
Xva, Yva = gather(range(350, 400), None)
if nf_keep == "base":  # only v2 linear features + pass flags
    keep = [0, 1] + list(range(18, Xtr.shape[2]))
    Xtr, Xva = Xtr[..., keep], Xva[..., keep]
print("feats", Xtr.shape, Xva.shape, time.time() - t, flush=True)
M, _, F = Xtr.shape
sd = Xtr.reshape(-1, F).std(0) + 1e-3
H = 16
key = jax.random.PRNGKey(0)
k1, k2 = jax.random.split(key)
params = {
    "w1": jax.random.normal(k1, (M, F, H)) * 0.3,
    "b1": jnp.zeros((M, H)),
    "w2": jax.random.normal(k2, (M, H, 2)) * 0.1,
    "b2": jnp.zeros((M, 2)),
    "wl": jnp.zeros((M, F, 2)),
}
sdj = jnp.asarray(sd)


def forward(p, X):
    Xn = X / sdj
    hdn = jax.nn.relu(jnp.einsum("mnf,mfh->mnh", Xn, p["w1"]) + p["b1"][:, None])
    o = jnp.einsum("mnh,mho->mno", hdn, p["w2"]) + p["b2"][:, None] + jnp.einsum("mnf,mfo->mno", Xn, p["wl"])
    mu = X[..., 0] + o[..., 0]
    logb = o[..., 1]
    return mu, logb


def bits(p, X, Y):
    mu, logb = forward(p, X)
    b = jnp.exp(logb) + 0.05

    def cdf(x):
        z = (x - mu) / b
        return jnp.where(z < 0, 0.5 * jnp.exp(jnp.minimum(z, 0)), 1 - 0.5 * jnp.exp(-jnp.maximum(z, 0)))

    pr = jnp.maximum(cdf(Y + 0.5) - cdf(Y - 0.5), 1e-9)
    return -jnp.log2(pr)


def loss(p, X, Y):
    return bits(p, X, Y).mean()


opt = optax.adam(optax.cosine_decay_schedule(1e-2, 2000))
st = opt.init(params)


@jax.jit
def step(p, st, X, Y):
    l, g = jax.value_and_grad(loss)(p, X, Y)
    u, st = opt.update(g, st, p)
    return optax.apply_updates(p, u), st, l


Xtr_j, Ytr_j = jnp.asarray(Xtr), jnp.asarray(Ytr)
N = Xtr.shape[1]
for it in range(2000):
    idx = np.random.default_rng(it).choice(N, 4096, replace=False)
    params, st, l = step(params, st, Xtr_j[:, idx], Ytr_j[:, idx])
    if it % 500 == 0:
        print(it, float(l), time.time() - t, flush=True)
bv = np.asarray(jax.jit(bits)(params, jnp.asarray(Xva), jnp.asarray(Yva)))
npos = Xva.shape[1]
print(f"q{q} scheme{scheme} {nf_keep}: val {bv.sum() / npos:.3f} bits/pos", flush=True)
