"""A/B of the near-lossless coder's speed: this checkout against another (e.g. a worktree of an
older commit), lossless on the Kodak images, alternating fresh processes, and the streams'
bytes checked to be identical.  For changes to the compiled kernel that must not change bytes:

    git worktree add /tmp/old 56fc00a
    python benchmarks/ab_lossless_speed.py /tmp/old --rounds 3
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


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", help="the other checkout (its root folder)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", default=str(here.parent / "shared" / "data" / "kodak"))
    a = p.parse_args()
    res = {"this": [], "other": []}
    for _ in range(a.rounds):
        for name, root in (("this", here), ("other", Path(a.other).resolve())):
            env = {**os.environ, "PYTHONPATH": str(root)}
            out = subprocess.run([sys.executable, "-c", _CODE, a.images], cwd=root, env=env, capture_output=True, text=True, check=True)
            res[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for name, runs in res.items():
        med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in ("enc", "dec")}
        print(f"{name:6s} median over {len(runs)}: encode {med['enc']:.3f} MPix/s, decode {med['dec']:.3f} MPix/s")
    same = len({r["sha"] for runs in res.values() for r in runs}) == 1
    print("same bytes" if same else "BYTES DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
