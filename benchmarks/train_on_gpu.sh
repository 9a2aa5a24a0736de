#!/bin/bash
# One time-boxed training run on a borrowed GPU machine (the workplace's `device`
# tool), continuing a shipped model and returning exported weights in $OUT.
#
# Expects, in git-ignored .gpu/ at the repo root (carried with the run):
#   .gpu/train/   the BSDS500 training photos (copy of ../shared/data/train)
#   .gpu/kodak/   kodim01-04.png, only for the quick-eval log (never trained on)
#   .gpu/whl/     flax and optax wheels matching pyproject, the fallback if the
#                 image's own do not work (on 2026-11-28 the image had jax 0.11.2
#                 and flax 0.12.10, which worked; flax 0.12.8 fails to import there)
# Usage: FIT=480 INIT=nkcodec/weights/nk64-2.npz MODEL_ID=3 bash benchmarks/train_on_gpu.sh
set -u
FIT=${FIT:-480}
INIT=${INIT:-nkcodec/weights/nk64-2.npz}
MODEL_ID=${MODEL_ID:-3}
BATCH=${BATCH:-16}
LR=${LR:-2e-4}
export DECAY=${DECAY:-0.5}
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || true

smoke() {
    timeout 120 python3 - <<'EOF'
import os
import jax, flax, optax, numpy as np
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, jax.devices())
assert jax.devices()[0].platform == os.environ.get("EXPECT", "gpu"), "JAX sees no GPU"
from nkcodec.model import NetConfig
from nkcodec.train import TrainConfig, Trainer
t = Trainer(NetConfig(prior_per_quality=True), TrainConfig(batch=1, crop=32))
print("smoke step", t.train_steps([np.zeros((40, 40, 3), np.uint8)], 1))
EOF
}
if smoke; then
    echo "using the image's flax/optax"
elif PYTHONPATH=/tmp/site smoke; then
    export PYTHONPATH=/tmp/site
    echo "using the carried flax/optax"
else
    echo "no working JAX/flax stack on this machine"
    exit 3
fi

# Python API rather than the CLI: the CLI imports the codec (Numba), which training does not need.
python3 - "$FIT" "$INIT" "$BATCH" "$LR" "$MODEL_ID" "$OUT" <<'EOF' 2>&1 | tr '\r' '\n' | grep -v '^ *[0-9]*%'
import os, sys
from nkcodec.model import NetConfig
from nkcodec.train import TrainConfig, train_and_evaluate
from nkcodec.zoo import export
fit, init, batch, lr, model_id, out = sys.argv[1:7]
fit = float(fit)
tr = train_and_evaluate(".gpu/train", "/tmp/run", NetConfig(prior_per_quality=True),
                        TrainConfig(batch=int(batch), crop=256, lr=float(lr), decay_start=float(os.environ.get("DECAY", 0.5))),
                        init=init, eval_dir=".gpu/kodak", fit_seconds=fit, max_seconds=fit + 30, progress=False)
path = export(tr, f"{out}/nk64-{model_id}.npz", model_id=int(model_id))
print(f"exported step {tr.step} ({tr.wall_seconds:.0f} s of training in all) to {path}")
EOF
cp /tmp/run/train.log "$OUT/train.log"
grep '"eval"' /tmp/run/train.log | tail -3
