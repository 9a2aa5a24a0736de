"""asv suite: NK-RLE kernels against the NumPy reference.

Run: ``asv run --python=same --quick --show-stderr`` (add ``--dry-run`` to smoke-test).
"""

import numpy as np

from nkcodec.coding import rle


def _stream(dtype, density, n=1_000_000, seed=0):
    """Piecewise-constant stream; ``density`` = expected fraction of positions that start a new run."""
    rng = np.random.default_rng(seed)
    starts = rng.random(n) < density
    starts[0] = True
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -1000), min(info.max, 1000)
    vals = rng.integers(lo, hi + 1, int(starts.sum())).astype(dtype)
    return vals[np.cumsum(starts) - 1]


class RLE:
    params = (["int8", "int16", "int32", "int64", "uint8", "uint16"], [0.01, 0.1, 0.5])
    param_names = ["dtype", "run_density"]

    def setup(self, dtype, density):
        self.a = _stream(np.dtype(dtype), density)
        self.values, self.keys = rle.encode(self.a)  # also JIT warm-up
        rle.decode(self.values, self.keys)
        self.packed = rle.pack(self.values, self.keys)
        rle.unpack(self.packed, self.a.dtype)

    def time_encode(self, dtype, density):
        rle.encode(self.a)

    def time_encode_numpy(self, dtype, density):
        rle.encode_reference(self.a)

    def time_decode(self, dtype, density):
        rle.decode(self.values, self.keys)

    def time_decode_numpy(self, dtype, density):
        rle.decode_reference(self.values, self.keys)

    def time_pack(self, dtype, density):
        rle.pack(self.values, self.keys)

    def time_unpack(self, dtype, density):
        rle.unpack(self.packed, self.a.dtype)

    def track_packed_bytes_per_symbol(self, dtype, density):
        return len(self.packed) / self.a.size

    track_packed_bytes_per_symbol.unit = "bytes/symbol"
