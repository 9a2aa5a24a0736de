import os

WORK = os.environ.get("NKCODEC_PROBE_DIR", "/tmp/nkcodec_probe")
import sys

import numpy as np

from nkcodec import zoo
from nkcodec.coding.context import code_latent

m = zoo.load_model()
q = int(sys.argv[1])
L = np.load(f"{WORK}/lat_q{q}.npz")
ct = m.context_tables(q)
tot = 0
totsc = 0
npos = 0
from nkcodec.coding.latent_codecs import _code_with_model_tables

for i in range(350, 400):
    y = L[f"i{i:03d}"].astype(np.int32)
    p, s = code_latent(ct, y)
    tot += sum(len(x) for x in s) * 8
    p2, s2 = _code_with_model_tables(m, y, q)
    totsc += sum(len(x) for x in s2) * 8
    npos += y.shape[0] * y.shape[1]
print(f"q{q}: v2 {tot / npos:.3f} bits/pos, scalar {totsc / npos:.3f}, saving {1 - tot / totsc:.3%}; total v2 bits {tot}")
