"""Rate-distortion training with optax: ``loss = lambda_q * 255**2 * MSE + bpp``.

Every image in a batch draws its own quality, so one model learns all eight
rate points.  Training is resumable: a checkpoint (``.npz``) holds the
parameters, the optimizer state, an exponential moving average (EMA) of the
parameters, the step and the data RNG state.  The shipped weights are the EMA.

Runs unchanged on a GPU JAX install.

Examples
--------
Shell::

    nohup python -m nkcodec train --data ../shared/data/train --workdir runs/a \\
        --steps 200000 > runs/a.out 2>&1 &
    python -m nkcodec train --data ../shared/data/train --workdir runs/a --resume runs/a/ckpt.npz
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ..nets.transforms import LAMBDAS, NUM_QUALITIES, CompressionModel, NetConfig

__all__ = [
    "TrainConfig",
    "load_images",
    "random_crops",
    "Trainer",
    "train_and_evaluate",
    "with_per_quality_prior",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclasses.dataclass
class TrainConfig:
    steps: int = 200_000
    batch: int = 16
    crop: int = 64
    lr: float = 3e-4
    warmup: int = 500
    decay_start: float = 0.85  # fraction of steps after which lr decays (cosine) to lr/20
    ema: float = 0.999
    seed: int = 0
    ckpt_seconds: float = 300.0
    eval_every: int = 1000
    log_every: int = 50


def load_images(folder, min_side: int = 64) -> list:
    """Load every image in ``folder`` as uint8 RGB arrays (skipping tiny ones)."""
    from PIL import Image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"})
    if not paths:
        raise ValueError(f"no images (.png/.jpg/.bmp) in {folder}")
    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if min(a.shape[:2]) >= min_side:
            out.append(a)
    if not out:
        raise ValueError(f"no image in {folder} is at least {min_side} pixels a side")
    return out


def random_crops_u8(images: list, batch: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 batch (B, crop, crop, 3) of random crops with random flips.

    Kept in uint8 until it reaches the device (a quarter of the bytes to copy;
    on a GPU the float conversion on the host was half the step time).
    """
    out = np.empty((batch, crop, crop, 3), np.uint8)
    for b in range(batch):
        im = images[rng.integers(len(images))]
        y = rng.integers(im.shape[0] - crop + 1)
        x = rng.integers(im.shape[1] - crop + 1)
        c = im[y : y + crop, x : x + crop]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        if rng.random() < 0.5:
            c = c[::-1]
        out[b] = c
    return out


def random_crops(images: list, batch: int, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 batch (B, crop, crop, 3) in [0, 1] of random crops with flips."""
    return random_crops_u8(images, batch, crop, rng) / np.float32(255.0)


def _rd_terms(out, x):
    """Per-image bpp estimate and MSE (on [0,1])."""
    n_pix = x.shape[1] * x.shape[2]
    bits = -jnp.sum(jnp.log2(out["likelihoods"]), axis=(1, 2, 3))
    mse = jnp.mean((out["x_hat"] - x) ** 2, axis=(1, 2, 3))
    return bits / n_pix, mse


def loss_fn(model, x, q, key):
    out = model(x, q, train=True, key=key)
    bpp, mse = _rd_terms(out, x)
    lam = jnp.asarray(LAMBDAS, jnp.float32)[q]
    loss = jnp.mean(lam * 255.0**2 * mse + bpp)
    return loss, (jnp.mean(bpp), jnp.mean(mse))


@nnx.jit
def train_step(model, optimizer, x_u8, q, key):
    x = x_u8.astype(jnp.float32) / jnp.float32(255.0)
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, (bpp, mse)), grads = grad_fn(model, x, q, key)
    optimizer.update(model, grads)
    return loss, bpp, mse


@nnx.jit
def eval_step(model, x, q):
    out = model(x, q, train=False)
    bpp, mse = _rd_terms(out, x)
    x_hat = jnp.clip(jnp.round(out["x_hat"] * 255.0), 0, 255) / 255.0
    mse_u8 = jnp.mean((x_hat - x) ** 2, axis=(1, 2, 3))
    return bpp, mse_u8


def _schedule(cfg: TrainConfig):
    return _lr_curve(cfg.lr, cfg.warmup, int(cfg.steps * cfg.decay_start), cfg.steps)


def _lr_curve(lr: float, warmup: int, decay_at: int, end: int):
    """Linear warmup to ``lr``, constant until ``decay_at``, cosine to lr/20 at ``end``
    (positions are the optimizer's own update count)."""
    warmup = max(warmup, 1)
    decay_at = max(decay_at, warmup + 1)
    return optax.join_schedules(
        [
            optax.linear_schedule(lr * 0.01, lr, warmup),
            optax.constant_schedule(lr),
            optax.cosine_decay_schedule(lr, max(end - decay_at, 1), alpha=0.05),
        ],
        [warmup, decay_at],
    )


def _tx(schedule):
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def _flat(tree) -> list:
    return [np.asarray(v) for v in jax.tree.leaves(tree)]


def save_checkpoint(path, trainer: Trainer) -> None:
    """Atomically write the whole training state to ``path`` (.npz)."""
    path = Path(path)
    arrays = {}
    for name, tree in (("model", nnx.state(trainer.model)), ("opt", nnx.state(trainer.optimizer)), ("ema", trainer.ema)):
        for i, v in enumerate(_flat(tree)):
            arrays[f"{name}/{i}"] = v
    meta = {
        "step": trainer.step,
        "model_config": trainer.model_cfg.to_dict(),
        "train_config": dataclasses.asdict(trainer.cfg),
        "rng": trainer.rng.bit_generator.state,
        "wall_seconds": trainer.wall_seconds,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path, overrides: dict | None = None) -> Trainer:
    """Rebuild a :class:`Trainer` exactly as :func:`save_checkpoint` left it.

    ``overrides`` replaces training-config fields (e.g. ``{"lr": 1e-4}`` to
    continue at a lower learning rate); the optimizer state is kept.
    """
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        tcfg = TrainConfig(**{**meta["train_config"], **(overrides or {})})
        trainer = Trainer(NetConfig.from_dict(meta["model_config"]), tcfg)
        for name, obj in (("model", trainer.model), ("opt", trainer.optimizer)):
            state = nnx.state(obj)
            leaves, treedef = jax.tree.flatten(state)
            new = [jnp.asarray(z[f"{name}/{i}"], dtype=leaves[i].dtype) for i in range(len(leaves))]
            nnx.update(obj, jax.tree.unflatten(treedef, new))
        leaves, treedef = jax.tree.flatten(trainer.ema)
        trainer.ema = jax.tree.unflatten(treedef, [jnp.asarray(z[f"ema/{i}"]) for i in range(len(leaves))])
    trainer.step = int(meta["step"])
    trainer.wall_seconds = float(meta.get("wall_seconds", 0.0))
    trainer.rng.bit_generator.state = meta["rng"]
    return trainer


def init_from_weights(trainer: Trainer, path) -> None:
    """Start from shipped weights (parameters and EMA; fresh optimizer state).

    Weights with a shared prior can seed a model with one prior per quality
    (``prior_per_quality``): the shared density is copied to every quality.

    The step counter continues from the weights' recorded steps, so a fresh
    machine can keep training without the (unshipped) checkpoint.
    """
    from ..zoo import load_params_into, read_params

    params, meta = read_params(path)
    src = NetConfig.from_dict(meta["model_config"])
    dst = trainer.model_cfg
    if src == dataclasses.replace(dst, prior_per_quality=False) and dst.prior_per_quality and not src.prior_per_quality:
        # shared prior -> one copy per quality, each then free to adapt to its gain
        params = {k: _tile_prior(v) if k.startswith("prior/") else v for k, v in params.items()}
    elif src != dst:
        raise ValueError(f"{path} was trained with {meta['model_config']}, not {dst.to_dict()}")
    load_params_into(trainer.model, params, path)
    trainer.ema = jax.tree.map(jnp.array, nnx.state(trainer.model, nnx.Param))
    trainer.step = int(meta.get("steps", 0))
    trainer.wall_seconds = float(meta.get("train_wall_seconds", 0.0))


def _tile_prior(a):
    """A shared-prior parameter (M, ...) copied once per quality: (Q*M, ...)."""
    return np.tile(np.asarray(a), (NUM_QUALITIES,) + (1,) * (np.ndim(a) - 1))


def with_per_quality_prior(old: Trainer) -> Trainer:
    """Convert a shared-prior training state to one prior per quality.

    Parameters, Adam moments and the EMA of the prior are copied to every
    quality; everything else (step, schedule position, data RNG) carries over,
    so training continues exactly where the checkpoint left it.
    """
    new = Trainer(dataclasses.replace(old.model_cfg, prior_per_quality=True), old.cfg)

    def fill(dst_tree, src_tree):
        dst, treedef = jax.tree.flatten(dst_tree)
        src = jax.tree.leaves(src_tree)
        if len(dst) != len(src):
            raise ValueError("training states differ in structure")
        out = []
        for d, s in zip(dst, src):
            s = np.asarray(s)
            if s.shape != d.shape:
                s = _tile_prior(s)
                if s.shape != d.shape:
                    raise ValueError(f"cannot widen a {np.shape(s)} state to {d.shape}")
            out.append(jnp.asarray(s, d.dtype))
        return jax.tree.unflatten(treedef, out)

    nnx.update(new.model, fill(nnx.state(new.model), nnx.state(old.model)))
    nnx.update(new.optimizer, fill(nnx.state(new.optimizer), nnx.state(old.optimizer)))
    new.ema = fill(new.ema, old.ema)
    new.step, new.wall_seconds = old.step, old.wall_seconds
    new.rng.bit_generator.state = old.rng.bit_generator.state
    return new


@jax.jit
def _ema_update(ema, params, decay):
    return jax.tree.map(lambda e, p: e * decay + p * (1.0 - decay), ema, params)


class Trainer:
    """Holds the model, optimizer, EMA and data RNG; ``run`` trains for a while."""

    def __init__(self, model_cfg: NetConfig, cfg: TrainConfig):
        self.model_cfg = model_cfg
        self.cfg = cfg
        self.model = CompressionModel(model_cfg, seed=cfg.seed)
        self.optimizer = nnx.Optimizer(self.model, _tx(_schedule(cfg)), wrt=nnx.Param)
        self.ema = jax.tree.map(jnp.array, nnx.state(self.model, nnx.Param))
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.wall_seconds = 0.0

    def ema_model(self) -> CompressionModel:
        """A copy of the model carrying the EMA parameters."""
        graphdef, state = nnx.split(self.model)
        model = nnx.merge(graphdef, state)
        nnx.update(model, self.ema)
        return model

    def set_schedule(self, schedule) -> None:
        """Swap the learning-rate schedule, keeping the Adam moments and update count."""
        state = nnx.state(self.optimizer)
        self.optimizer = nnx.Optimizer(self.model, _tx(schedule), wrt=nnx.Param)
        nnx.update(self.optimizer, state)

    def fit_to_time(self, images, seconds: float, calib: int = 40) -> int:
        """Plan the rest of training to take about ``seconds`` of wall time.

        Measures the step rate over ``calib`` steps (after one compiling step),
        then sets a schedule that holds the learning rate for the first
        ``decay_start`` of the remaining steps and decays it (cosine) over the
        rest.  Returns the number of steps still to run.  Resuming a
        checkpoint of such a run later uses ``--steps``/``--decay-start`` again.
        """
        t0 = time.time()
        self.train_steps(images, 1)  # compiles
        compile_s = time.time() - t0
        t1 = time.time()
        self.train_steps(images, calib)
        rate = calib / (time.time() - t1)
        left = seconds - (time.time() - t0) - compile_s  # the new schedule compiles once more
        n = max(int(rate * left * 0.97), 1)  # 3%: evaluations and checkpoints
        count = int(self.optimizer.step[...])
        self.set_schedule(_lr_curve(self.cfg.lr, self.cfg.warmup, count + int(n * self.cfg.decay_start), count + n))
        self.cfg = dataclasses.replace(self.cfg, steps=self.step + n)
        return n

    def train_steps(self, images, n: int, on_step=None):
        """Run n steps; returns the last (loss, bpp, mse)."""
        loss = bpp = mse = float("nan")
        for _ in range(n):
            x = jnp.asarray(random_crops_u8(images, self.cfg.batch, self.cfg.crop, self.rng))
            q = jnp.asarray(self.rng.integers(0, NUM_QUALITIES, self.cfg.batch), jnp.int32)
            key = jax.random.PRNGKey(self.rng.integers(1 << 31))
            loss, bpp, mse = train_step(self.model, self.optimizer, x, q, key)
            self.ema = _ema_update(self.ema, nnx.state(self.model, nnx.Param), self.cfg.ema)
            self.step += 1
            if on_step is not None:
                on_step(self.step, loss, bpp, mse)
        return float(loss), float(bpp), float(mse)


def quick_eval(model, crops: np.ndarray) -> dict:
    """Estimated bpp and PSNR (on rounded uint8 output) per quality on fixed crops."""
    x = jnp.asarray(crops)
    res = {}
    for q in range(NUM_QUALITIES):
        bpp, mse = eval_step(model, x, jnp.full((x.shape[0],), q, jnp.int32))
        psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(np.asarray(mse), 1e-12))))
        res[q + 1] = (float(np.mean(bpp)), psnr)
    return res


def eval_crops(folder, size: int = 256, count: int = 4) -> np.ndarray:
    """Central crops of the first ``count`` images of an evaluation folder (Kodak)."""
    imgs = load_images(folder)[:count]
    out = []
    for im in imgs:
        y = (im.shape[0] - size) // 2
        x = (im.shape[1] - size) // 2
        out.append(im[y : y + size, x : x + size])
    return np.stack(out).astype(np.float32) / 255.0


def train_and_evaluate(
    data,
    workdir,
    model_cfg: NetConfig = NetConfig(),
    cfg: TrainConfig = TrainConfig(),
    resume=None,
    overrides: dict | None = None,
    init=None,
    eval_dir=None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    fit_seconds: float | None = None,
    progress: bool = True,
) -> Trainer:
    """Train (or resume) until ``cfg.steps``, ``max_steps`` more, or ``max_seconds``.

    With ``fit_seconds`` the schedule is instead planned to end after about
    that much wall time (see :meth:`Trainer.fit_to_time`): the way to use a
    borrowed GPU for a fixed time.

    Writes ``workdir/ckpt.npz`` every ``cfg.ckpt_seconds`` and at the end, and
    appends one JSON line per log event to ``workdir/train.log``.
    """
    from tqdm import tqdm

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    images = load_images(data, min_side=cfg.crop)
    if resume:
        trainer = load_checkpoint(resume, overrides)
        if model_cfg.prior_per_quality and not trainer.model_cfg.prior_per_quality:
            trainer = with_per_quality_prior(trainer)
    else:
        trainer = Trainer(model_cfg, cfg)
        if init:
            init_from_weights(trainer, init)
    crops = eval_crops(eval_dir) if eval_dir else None
    t_start = time.time()
    log = open(workdir / "train.log", "a")
    ckpt = workdir / "ckpt.npz"

    def write(**rec):
        rec["step"] = trainer.step
        rec["time"] = round(trainer.wall_seconds, 1)
        log.write(json.dumps(rec) + "\n")
        log.flush()

    if fit_seconds is not None:
        t0 = time.time()
        n = trainer.fit_to_time(images, fit_seconds - (t0 - t_start))
        trainer.wall_seconds += time.time() - t0
        write(event="fit", steps_left=n, device=str(jax.devices()[0]))
    end = trainer.cfg.steps if max_steps is None else min(trainer.cfg.steps, trainer.step + max_steps)
    bar = tqdm(total=end, initial=trainer.step, disable=not progress, smoothing=0.05, mininterval=5)
    t_ckpt = time.time()
    stop = {"flag": False}

    def _on_term(signum, frame):  # finish the current block, checkpoint, exit
        stop["flag"] = True

    import signal

    old_term = signal.signal(signal.SIGTERM, _on_term) if _main_thread() else None
    while trainer.step < end and not stop["flag"]:
        t0 = time.time()
        n = min(trainer.cfg.log_every, end - trainer.step)
        loss, bpp, mse = trainer.train_steps(images, n)
        trainer.wall_seconds += time.time() - t0
        bar.update(n)
        if not math.isfinite(loss):
            write(event="diverged", loss=loss)
            raise FloatingPointError(f"training diverged at step {trainer.step}; resume from {ckpt}")
        psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
        bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{bpp:.3f}", psnr=f"{psnr:.2f}")
        write(event="train", loss=loss, bpp=bpp, psnr=psnr, sec_per_step=(time.time() - t0) / n)
        if crops is not None and trainer.step % trainer.cfg.eval_every < n:
            res = quick_eval(trainer.ema_model(), crops)
            write(event="eval", **{f"q{k}": [round(v[0], 4), round(v[1], 3)] for k, v in res.items()})
        now = time.time()
        if now - t_ckpt > trainer.cfg.ckpt_seconds:
            save_checkpoint(ckpt, trainer)
            t_ckpt = now
        if max_seconds is not None and now - t_start > max_seconds:
            break
    save_checkpoint(ckpt, trainer)
    if stop["flag"]:
        write(event="stopped", reason="SIGTERM")
    if old_term is not None:
        signal.signal(signal.SIGTERM, old_term)
    bar.close()
    log.close()
    return trainer


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
