import numpy as np

from nkcodec.coding.context import _predict, neighbours4

DIRS = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]


def pass_of(h, w, scheme):
    r, c = np.mgrid[0:h, 0:w]
    if scheme == 2:
        return (r + c) & 1
    return np.select([(r % 2 == 0) & (c % 2 == 0), (r % 2 == 1) & (c % 2 == 1), (r % 2 == 0) & (c % 2 == 1)], [0, 1, 2], 3)


def shift(x, dr, dc, fill=0):
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    xp = np.pad(x, pad, constant_values=fill)
    h, w = x.shape[-2:]
    return xp[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]


def image_feats(ct, y, scheme):
    h, w, M = y.shape
    v = y.reshape(-1, M)[:, ct.order].T.astype(np.int64)  # (M, n)
    mag = np.abs(v)
    nbv, nbm = neighbours4(v, h, w), neighbours4(mag, h, w)
    W = ct.wmag.copy()
    W[:, 2 * M] = 0
    Wm = ct.wmean.copy()
    Wm[:, 2 * M] = 0
    act = _predict(W, mag, nbm, 0, M) / 4096.0
    mu = _predict(Wm, v, nbv, 0, M) / 4096.0
    P = pass_of(h, w, scheme)
    vv = v.reshape(M, h, w)
    F = [mu.reshape(M, h, w), act.reshape(M, h, w)]
    for dr, dc in DIRS:
        avail = shift(P[None], dr, dc, fill=99)[0] < P
        s = shift(vv, dr, dc) * avail
        F += [s, np.abs(s)]
    npass = scheme
    for g in range(npass):
        F.append(np.broadcast_to((P == g)[None], (M, h, w)).astype(np.float64))
    X = np.stack(F, -1).reshape(M, h * w, -1).astype(np.float32)
    return X, v.astype(np.float32), P.reshape(-1)
