"""Cross-device check of the float32-exact synthesis, for a GPU window.

On a machine with a CUDA JAX, this runs the default model's exact synthesis
(``nkcodec.nets.exact_v2``) on the accelerator and on the CPU backend of the same
process, and compares the pixels of every latent: seeded photo-like ones,
the shipped samples' latents (analysed on the CPU) and hostile ones at and
beyond every clamp.  It then times the exact synthesis, the float32 synthesis
(not exact) and the float64 one of the same weights on Kodak-sized latents
(768x512 pixels), one image per call, after warm-up.  Run it with the
fixture tests, which compare the decoded pixels with hashes made on a CPU:

    python benchmarks/gpu_exact_check.py --json $OUT/gpu_exact.json
    python -m pytest -n 0 tests/test_fixed32.py "tests/test_learned.py::test_fixture_learned"

(`-n 0`: one process, since each JAX process on a GPU reserves most of its memory.)

Without an accelerator it compares the CPU with itself (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _time(fn, repeats: int = 10) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    import jax

    from nkcodec import zoo
    from nkcodec.nets import exact_v2
    from nkcodec.tools.bench import sample_images

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    cpu, dev = jax.devices("cpu")[0], jax.devices()[0]
    print("devices:", jax.devices(), "jax", jax.__version__, flush=True)
    m = zoo.load_model(zoo.DEFAULT_MODEL)
    fx = m.fixed32
    on_cpu = exact_v2.Synthesis(fx, device=cpu)
    forms = {"auto": exact_v2.Synthesis(fx, device=dev)}
    if dev.platform != "cpu":  # also XLA's own convolution on the accelerator: exact only without Winograd/FFT
        forms["xla-conv"] = exact_v2.Synthesis(fx, device=dev, conv="xla")
    rng = np.random.default_rng(0)
    latents = [("laplace", q, np.round(rng.laplace(0, s, (32, 48, 192))).astype(np.int32)) for q, s in ((1, 1.0), (4, 2.0), (8, 4.0))]
    for name, img in sample_images().items():
        if img.ndim == 3 and img.shape[2] == 3:
            latents += [(name, q, m.encode_latent(img, q)) for q in (1, 8)]
    sign = np.where(rng.random((4, 6, 192)) < 0.5, -1, 1)
    latents += [("hostile", q, (sign * v).astype(np.int32)) for q in (1, 8) for v in (exact_v2.LATENT_LIMIT, 1 << 20)]
    results = {"device": str(dev), "jax": jax.__version__, "checks": {}, "mpix_s": {}}
    for form, syn in forms.items():
        bad = [f"{name} q{q}" for name, q, y in latents if not np.array_equal(syn(y, q), on_cpu(y, q))]
        results["checks"][form] = {"latents": len(latents), "mismatches": bad}
        print(f"{form}: {len(latents) - len(bad)}/{len(latents)} latents decode to the CPU's pixels", bad or "", flush=True)

    y = latents[1][2]  # Kodak-sized, q4
    pix = 16 * y.shape[0] * 16 * y.shape[1] / 1e6
    runs = {f"exact32 ({form})": (lambda s=syn: s(y, 4)) for form, syn in forms.items()}
    runs["float32 (not exact)"] = lambda: m.decode_latent_float32(y, 4)
    runs["float64 exact (v1, CPU)"] = lambda: zoo.load_model(zoo.EXACT32_VARIANTS[m.name][0]).decode_latent(y, 4)
    for name, fn in runs.items():
        results["mpix_s"][name] = pix / _time(fn)
        print(f"{name}: {results['mpix_s'][name]:.1f} MPix/s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if not any(c["mismatches"] for form, c in results["checks"].items() if form == "auto") else 1


if __name__ == "__main__":
    sys.exit(main())
