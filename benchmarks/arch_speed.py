"""Speed of smaller architectures as nkcodec would run them (a planning measurement, not an asv suite).

For each (N, M, analysis kernel): the float32 analysis (XLA, rounded latent) and the bit-exact float64
fixed-point synthesis (:class:`nkcodec.nets.exact_v1.XlaSynthesis`) on a Kodak-size 768x512 image, untrained
weights, warm, median of 7.  Entropy coding is not included (about 26 ms to encode and 37 ms to decode
a Kodak latent with M=192).  Run::

    python benchmarks/arch_speed.py
"""

from __future__ import annotations

import time

import numpy as np

ARCHS = [(64, 192, 5), (48, 192, 5), (32, 192, 5), (32, 192, 3), (32, 128, 3), (24, 96, 3)]  # (N, M, analysis kernel)


def _median_seconds(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from nkcodec import zoo
    from nkcodec.config import NetConfig
    from nkcodec.nets import exact_v1
    from nkcodec.nets.transforms import CompressionModel

    h, w = 512, 768
    x = jnp.asarray(np.random.default_rng(0).random((1, h, w, 3), np.float32))
    q = jnp.asarray([3], jnp.int32)
    mpix = h * w / 1e6
    for n, m, k in ARCHS:
        model = CompressionModel(NetConfig(n=n, m=m, kernel_a=k, prior_per_quality=True), seed=0)
        graphdef, state = nnx.split(model)
        analysis = jax.jit(lambda s, x: jnp.round(nnx.merge(graphdef, s).encode_latent(x, q)).astype(jnp.int32))
        t_ana = _median_seconds(lambda: analysis(state, x).block_until_ready())
        synthesis = exact_v1.XlaSynthesis(exact_v1.quantize(zoo.param_dict(model), "gdn", layers=4))
        y = np.random.default_rng(1).integers(-3, 4, (h // 16, w // 16, m)).astype(np.int32)
        t_syn = _median_seconds(lambda: synthesis(y, 4))
        print(f"N={n} M={m} analysis {k}x{k}: analysis {mpix / t_ana:.1f} MPix/s, exact synthesis {mpix / t_syn:.1f} MPix/s", flush=True)


if __name__ == "__main__":
    main()
