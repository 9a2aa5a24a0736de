"""Fitting the context models of :mod:`nkcodec.coding.context` on training photos
(offline: ``python -m nkcodec fit-context``) and writing them into a weights
file.  The runtime coder never imports this module."""

from __future__ import annotations

import numpy as np

from ..coding.context import MAX_WEIGHT, NUM_CONTEXTS, WEIGHT_BITS, contexts, neighbours4, pass_map, round_shift

__all__ = ["fit", "PSEUDO_COUNTS"]

PSEUDO_COUNTS = 16.0  # spread like the model's own table: keeps rare contexts sane


def fit(m, images: list, k: int = NUM_CONTEXTS, progress: bool = True) -> dict:
    """Fit version-2 context models of a :class:`~nkcodec.nets.runtime.ModelRuntime` on
    training images (uint8 RGB arrays) at every quality; returns the ``ctx/``
    arrays (keys under ``v2/``).

    Per quality: the mean weights are least squares of ``y_j`` on its features,
    the activity weights least squares of ``|y_j - mu_j|`` on the magnitude
    features; thresholds are quantiles of the activity per (channel, pass), and
    the tables are counts of ``y_j - mu_j`` per context."""
    from tqdm import tqdm

    from ..coding.entropy import TABLE_TOTAL, quantize_pmf, to_symbols
    from ..config import NUM_QUALITIES, QUALITIES

    M = m.latent_channels
    out = {key: [] for key in ("order", "wmag", "wmean", "thresholds")}
    rows = []
    bar = tqdm(total=NUM_QUALITIES * len(images), desc="context tables", disable=not progress)
    for q in QUALITIES:
        lat = []
        for im in images:
            lat.append(m.encode_latent(im, q).astype(np.int64))
            bar.update(1)
        order = np.argsort(-np.abs(np.concatenate([y.reshape(-1, M) for y in lat])).mean(0), kind="stable")
        feats = {key: [] for key in ("v", "nv", "a", "na", "second")}
        for y in lat:  # (n, M) rows per image, neighbours within the image
            h, w = y.shape[:2]
            v = y.reshape(-1, M)[:, order].T
            a = np.abs(v)
            for key, x in (("v", v), ("nv", neighbours4(v, h, w)), ("a", a), ("na", neighbours4(a, h, w))):
                feats[key].append(x.T.astype(np.float64))
            feats["second"].append(pass_map(h, w, 2).astype(bool))
        V, NV, A, NA = (np.concatenate(feats[key]) for key in ("v", "nv", "a", "na"))
        second = np.concatenate(feats["second"])

        def solve(C, N, target):
            """Integer weights (M, 2M+1) of target[:, j] ~ C[:, :j], N[:, :j], N[:, j] (second pass only)."""
            own = N * second[:, None]
            X = np.concatenate([C, N, own], 1)
            gram = X.T @ X
            rhs = X.T @ target  # (3M, M)
            wt = np.zeros((M, 2 * M + 1))
            for j in range(M):
                idx = np.r_[np.arange(j), M + np.arange(j), 2 * M + j]
                sol = np.linalg.solve(gram[np.ix_(idx, idx)] + 1e-3 * np.eye(idx.size), rhs[idx, j])
                wt[j, :j], wt[j, M : M + j], wt[j, 2 * M] = sol[:j], sol[j : 2 * j], sol[-1]
            wt = np.clip(np.round(wt * (1 << WEIGHT_BITS)), -MAX_WEIGHT, MAX_WEIGHT)
            pred = C @ wt[:, :M].T + N @ wt[:, M : 2 * M].T + own * wt[:, 2 * M]  # exact: integers below 2**53
            return wt.astype(np.int64), pred.astype(np.int64)

        wmean, acc = solve(V, NV, V)
        resid = V.astype(np.int64) - round_shift(acc)
        wmag, act = solve(A, NA, np.abs(resid).astype(np.float64))
        t = m.tables_for(q)
        thr_q = np.zeros((M, 2, k - 1), np.int64)
        for j, c in enumerate(order):
            lo, size = int(t["lo"][c]), int(t["size"][c])
            idx, _ = to_symbols(resid[:, j], lo, size)
            base = t["freq"][c, :size].astype(np.float64) / TABLE_TOTAL
            for g in range(2):
                sel = second == bool(g)
                thr_q[j, g] = np.quantile(act[sel, j], np.linspace(0, 1, k + 1)[1:-1], method="lower")
                ctx = contexts(act[sel, j], thr_q[j, g])
                counts = np.zeros((k, size))
                np.add.at(counts, (ctx, idx[sel]), 1.0)
                rows += [quantize_pmf(counts[i] + PSEUDO_COUNTS * base, TABLE_TOTAL) for i in range(k)]
        out["order"].append(order)
        out["wmag"].append(wmag)
        out["wmean"].append(wmean)
        out["thresholds"].append(thr_q)
    bar.close()
    return {
        "v2/order": np.asarray(out["order"], np.int16),
        "v2/wmag": np.asarray(out["wmag"], np.int32),
        "v2/wmean": np.asarray(out["wmean"], np.int32),
        "v2/thresholds": np.asarray(out["thresholds"], np.int64),
        "v2/freq": np.concatenate(rows).astype(np.uint16),
        "v2/images": np.asarray(len(images), np.int64),
    }
