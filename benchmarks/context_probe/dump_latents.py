import os

WORK = os.environ.get("NKCODEC_PROBE_DIR", "/tmp/nkcodec_probe")
import glob
import sys
import time

import numpy as np
from PIL import Image

from nkcodec import zoo

m = zoo.load_model()
files = sorted(glob.glob("../shared/data/train/*.jpg")) + sorted(glob.glob("../shared/data/train/*.png"))
print(len(files))
ims = [np.asarray(Image.open(f).convert("RGB")) for f in files]
t = time.time()
for q in [int(a) for a in sys.argv[1:]]:
    lats = {}
    groups = {}
    for i, im in enumerate(ims):
        groups.setdefault(m.analysis_key(im.shape), []).append(i)
    for key, idx in groups.items():
        for s in range(0, len(idx), 16):
            part = idx[s : s + 16]
            ys = m.encode_latents([ims[i] for i in part], q)
            for i, y in zip(part, ys):
                lats[f"i{i:03d}"] = y.astype(np.int16)
    np.savez(f"{WORK}/lat_q{q}.npz", **lats)
    print(q, time.time() - t, flush=True)
