"""The weights file: what ``export`` writes after training and what a model
loads.  A file (``nkcodec/weights/<name>.npz``) holds the EMA parameters as
float32 arrays keyed by their path in the module tree, the architecture and
training metadata as JSON, the factorized prior's integer frequency tables
(computed once at export: decoding never recomputes probabilities from
floats), and groups added later (``ctx/`` context tables, ``fixed/`` and
``fixed32/`` the exact synthesis).  No orbax: plain ``numpy.load``.
:mod:`nkcodec.zoo` names the shipped files and runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..coding.entropy import PRECISION, quantize_pmf

__all__ = ["export", "add_to_weights", "compute_tables", "read_groups", "read_params", "load_params_into", "param_dict", "TABLE_PRECISION", "TAIL_MASS"]

TABLE_PRECISION = PRECISION  # frequencies sum to 2**16 per channel (entropy.PRECISION)
TAIL_MASS = 1e-7  # probability left to the two escape bins


def compute_tables(prior, max_range: int = 1024) -> dict:
    """Integer frequency tables of a trained :class:`~nkcodec.nets.transforms.FactorizedPrior`.

    Per channel c: symbols ``lo[c] .. lo[c] + size[c] - 3`` get one bin each;
    bin 0 and bin ``size-1`` are escapes for values below / above that range.
    """
    import jax.numpy as jnp

    c = prior.matrices[0][...].shape[0]
    v = np.arange(-max_range, max_range + 1, dtype=np.float32)
    edges = np.concatenate([v - 0.5, [v[-1] + 0.5]]).astype(np.float32)
    logits = np.asarray(prior.logits_cdf(jnp.broadcast_to(jnp.asarray(edges), (c, 1, edges.size))))[:, 0]
    with np.errstate(over="ignore"):  # exp overflow -> cdf 0, as intended
        cdf = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    cdf = np.maximum.accumulate(cdf, axis=1)
    pmf = np.diff(cdf, axis=1)  # (C, 2R+1)
    total = 1 << TABLE_PRECISION
    los, sizes, tables = [], [], []
    for ch in range(c):
        cum = np.cumsum(pmf[ch])
        mass = cum[-1]
        lo_i = int(np.searchsorted(cum, TAIL_MASS / 2 * mass))
        hi_i = int(np.searchsorted(cum, mass * (1 - TAIL_MASS / 2)))
        hi_i = max(min(hi_i, pmf.shape[1] - 1), lo_i)
        below = cdf[ch, lo_i]
        above = 1.0 - cdf[ch, hi_i + 1]
        p = np.concatenate([[below], pmf[ch, lo_i : hi_i + 1], [above]])
        tables.append(quantize_pmf(p, total))
        los.append(int(v[lo_i]))
        sizes.append(p.size)
    width = max(sizes)
    freq = np.zeros((c, width), np.uint32)
    for ch, t in enumerate(tables):
        freq[ch, : t.size] = t
    return {"lo": np.asarray(los, np.int32), "size": np.asarray(sizes, np.int32), "freq": freq}


def param_dict(model) -> dict:
    import jax
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    return {_param_key(path): np.asarray(leaf, np.float32) for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]}


def _param_key(path) -> str:
    """A parameter's name in weights files: its module-tree path joined by '/'."""
    return "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def export(trainer, path, model_id: int | None = None, extra_meta: dict | None = None, fixed_point: bool = True) -> Path:
    """Write the trainer's EMA model, config and integer tables to ``path`` (.npz).

    With ``fixed_point`` (the default since nk64-2) the file also holds the
    integer synthesis parameters of :mod:`nkcodec.nets.exact_v1`, and decoding with it
    is bit-exact on every machine.
    """
    model = trainer.ema_model()
    tables = compute_tables(model.prior)
    meta = {
        "model_config": trainer.model_cfg.to_dict(),
        "steps": trainer.step,
        "train_wall_seconds": round(trainer.wall_seconds, 1),
        "model_id": model_id if model_id is not None else 0,
        "table_precision": TABLE_PRECISION,
    }
    meta.update(extra_meta or {})
    params = param_dict(model)
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"table/{k}": v for k, v in tables.items()})
    if fixed_point:
        from .exact_v1 import quantize

        arrays.update({f"fixed/{k}": v for k, v in quantize(params, trainer.model_cfg.activation).items()})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def add_to_weights(path, group: str, arrays: dict) -> Path:
    """Write (or replace) ``arrays`` under ``group/`` in a weights file, atomically.

    Only keys at the same depth under the same sub-folder are replaced (writing
    ``ctx/v2/...`` leaves ``ctx/v1/...`` alone); every other array is kept
    bit-identical, so the file's older streams keep decoding."""
    path = Path(path)
    new = {f"{group}/{key}" for key in arrays}
    prefixes = {key.rsplit("/", 1)[0] + "/" for key in new}
    with np.load(path) as z:
        data = {key: z[key] for key in z.files if not any(key.startswith(p) and key.count("/") == p.count("/") for p in prefixes)}
    data.update({f"{group}/{key}": v for key, v in arrays.items()})
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, path)
    return path


def read_groups(path, *groups: str) -> tuple:
    """(metadata, {key: array} per group) of a weights file; groups are the key
    prefixes ``param``, ``table`` and ``fixed``."""
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        return meta, *({k[len(g) + 1 :]: z[k] for k in z.files if k.startswith(g + "/")} for g in groups)


def read_params(path) -> tuple:
    """(parameter dict, metadata) of a weights file."""
    meta, params = read_groups(path, "param")
    return params, meta


def load_params_into(model, params: dict, source="weights") -> None:
    """Copy named float arrays (see :func:`param_dict`) into a model's parameters."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    new = []
    for p, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        key = _param_key(p)
        if key not in params or params[key].shape != leaf.shape:
            raise ValueError(f"{source} does not match the model at {key}")
        new.append(jnp.asarray(params[key]))
    nnx.update(model, jax.tree.unflatten(jax.tree.structure(state), new))
