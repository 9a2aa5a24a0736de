"""A/B of a coder's speed: this checkout against another (e.g. a worktree of an older
commit), on the Kodak images, alternating fresh processes, and the streams' bytes checked
to be identical.  For changes to compiled code that must not change bytes:

    git worktree add /tmp/old 56fc00a
    python benchmarks/ab_lossless_speed.py /tmp/old --rounds 3
    python benchmarks/ab_lossless_speed.py /tmp/old --rounds 3 --stage entropy

``--stage lossless`` (default): the near-lossless coder at max_error 0, whole images.
``--stage entropy``: the default preset's latent entropy coder alone (context model, quality
``--quality``) on the latents of the same images, each pass the best of 3 (MPix/s of image);
with ``--threads``, also the batched pipeline's whole decode stage (parse and entropy decode,
no synthesis) over every image twice in a pool of 1 and of 2 threads: whether decoding threads
scale, or hold the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_CODE = r"""
import glob, hashlib, json, sys, time
import numpy as np
from PIL import Image
import nkcodec
ims = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(sys.argv[1] + "/*.png"))]
nkcodec.decompress(nkcodec.compress(ims[0], preset="near-lossless", max_error=0))
t = time.perf_counter(); ds = [nkcodec.compress(im, preset="near-lossless", max_error=0) for im in ims]; te = time.perf_counter() - t
t = time.perf_counter(); [nkcodec.decompress(d) for d in ds]; td = time.perf_counter() - t
px = sum(im.shape[0] * im.shape[1] for im in ims)
print(json.dumps({"enc": px / te / 1e6, "dec": px / td / 1e6, "sha": hashlib.sha256(b"".join(ds)).hexdigest()}))
"""

_ENTROPY = r"""
import glob, hashlib, json, sys, time
import numpy as np
from PIL import Image
from nkcodec import zoo
from nkcodec.coding import context
ims = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(glob.glob(sys.argv[1] + "/*.png"))]
m, q = zoo.load_model(), int(sys.argv[2])
ct = m.context_tables(q)
lat = [m.encode_latent(im, q) for im in ims]
coded = [context.code_latent(ct, y) for y in lat]
for y, (p, s) in zip(lat, coded):
    assert (context.decode_latent(ct, p, s, y.shape[:2]).reshape(y.shape) == y).all()
def best(fn):
    ts = []
    for _ in range(3):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)
te = best(lambda: [context.code_latent(ct, y) for y in lat])
td = best(lambda: [context.decode_latent(ct, p, s, y.shape[:2]) for y, (p, s) in zip(lat, coded)])
px = sum(im.shape[0] * im.shape[1] for im in ims)
sha = hashlib.sha256(b"".join(b"".join(s) for _, s in coded)).hexdigest()
out = {"enc": px / te / 1e6, "dec": px / td / 1e6, "sha": sha}
if len(sys.argv) > 3:  # the batched pipeline's decode stage (parse + entropy) in 1 and 2 threads, every image twice
    from concurrent.futures import ThreadPoolExecutor
    import nkcodec
    from nkcodec.pipeline import entropy_stage
    streams = [nkcodec.compress(im, quality=q) for im in ims] * 2
    for n in (1, 2):
        with ThreadPoolExecutor(n) as ex:
            list(ex.map(entropy_stage, streams[:2]))
            out[f"stage x{n}"] = 2 * px / best(lambda: list(ex.map(entropy_stage, streams))) / 1e6
print(json.dumps(out))
"""


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", help="the other checkout (its root folder)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", default=str(here.parent / "shared" / "data" / "kodak"))
    p.add_argument("--stage", choices=("lossless", "entropy"), default="lossless")
    p.add_argument("--quality", type=int, default=4, help="--stage entropy: the quality of the latents")
    p.add_argument("--threads", action="store_true", help="--stage entropy: also the decode stage in 1 and 2 threads")
    a = p.parse_args()
    code, args = (_CODE, [a.images]) if a.stage == "lossless" else (_ENTROPY, [a.images, str(a.quality)] + ["threads"] * a.threads)
    res = {"this": [], "other": []}
    for _ in range(a.rounds):
        for name, root in (("this", here), ("other", Path(a.other).resolve())):
            env = {**os.environ, "PYTHONPATH": str(root)}
            out = subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True, check=True)
            res[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    names = {"enc": "encode", "dec": "decode"}
    for name, runs in res.items():
        med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0] if k != "sha"}
        print(f"{name:6s} median over {len(runs)}: " + ", ".join(f"{names.get(k, k)} {v:.3f} MPix/s" for k, v in med.items()))
    same = len({r["sha"] for runs in res.values() for r in runs}) == 1
    print("same bytes" if same else "BYTES DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
