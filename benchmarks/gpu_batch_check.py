"""The batched pipeline on whatever JAX device is present, for a GPU window.

Times ``encode_many`` and ``decode_many`` over a folder of images (repeated
``--repeat`` times, so the pool runs full) against one image at a time, checks
that the batched bytes and pixels equal one-at-a-time coding, and shows what
limits the stream: the nets alone in device batches, and one entropy coder
alone (the pool needs about nets-rate / coder-rate of them).  Then it sweeps
the pool size and kind.  Run on a GPU machine with a CUDA JAX:

    python benchmarks/gpu_batch_check.py --images kodak --json $OUT/gpu_batch.json

On a CPU it measures the same things there (a smoke test with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _rate(pix: float, fn) -> float:
    t = time.perf_counter()
    fn()
    return pix / (time.perf_counter() - t) / 1e6


def main(argv=None) -> int:
    import numpy as np

    import nkcodec
    from nkcodec import batch
    from nkcodec.coding import context
    from nkcodec.format.container import unpack_container
    from nkcodec.imageio import folder_images, sample_images

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", help="folder of images (default: the shipped samples)")
    p.add_argument("--repeat", type=int, default=4, help="times the folder is coded in one stream")
    p.add_argument("--quick", action="store_true", help="one setting, no sweep")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    imgs = [im for im in (folder_images(args.images) if args.images else sample_images()).values() if im.ndim == 3 and im.shape[2] == 3]
    images = imgs * args.repeat
    pix = sum(im.shape[0] * im.shape[1] for im in images)
    codec = nkcodec.Codec(4)
    m = codec.impl.model
    res = {"device": batch.device_name(), "cpus": batch.cpu_count(), "images": len(images), "mpix": pix / 1e6}
    res["defaults"] = {"batch_size": batch.default_batch_size(), "lanes": batch.default_lanes(), "workers": batch.default_workers()}
    print(res, flush=True)

    one = [codec.encode(im) for im in imgs]  # warm-up: compiles every size
    list(codec.decode_many(one))
    list(codec.encode_many(imgs))
    streams = one * args.repeat
    many = list(codec.encode_many(images))
    res["same_bytes"] = many == streams
    decoded = list(codec.decode_many(streams))
    res["same_pixels"] = all(np.array_equal(d, nkcodec.decompress(s)) for d, s in zip(decoded[: len(imgs)], one))
    print("batched == one at a time:", res["same_bytes"], res["same_pixels"], flush=True)

    rates = res["mpix_s"] = {}
    rates["encode one at a time"] = _rate(pix, lambda: [codec.encode(im) for im in images])
    rates["decode one at a time"] = _rate(pix, lambda: [codec.decode(s) for s in streams])
    rates["encode batched"] = _rate(pix, lambda: list(codec.encode_many(images)))
    rates["decode batched"] = _rate(pix, lambda: list(codec.decode_many(streams)))
    # the limits: the nets alone in device batches, one entropy coder alone
    bs = batch.default_batch_size()
    groups = {}
    for im in images:
        groups.setdefault(im.shape, []).append(im)
    lat = [m.encode_latent(im, 4) for im in imgs]
    rates["analysis batched (nets only)"] = _rate(pix, lambda: [m.encode_latents(g[i : i + bs], 4) for g in groups.values() for i in range(0, len(g), bs)])
    ys = {}
    for im, y in zip(imgs, lat):
        ys.setdefault(y.shape, []).append((y, im.shape[:2]))
    ys = {k: v * args.repeat for k, v in ys.items()}
    rates["synthesis batched (nets only)"] = _rate(
        pix,
        lambda: [
            m.decode_latents([y for y, _ in g[i : i + bs]], [4] * len(g[i : i + bs]), [s for _, s in g[i : i + bs]])
            for g in ys.values()
            for i in range(0, len(g), bs)
        ],
    )
    ct = m.context_tables(4)
    pix1 = sum(im.shape[0] * im.shape[1] for im in imgs)
    rates["entropy encode, one coder"] = _rate(pix1, lambda: [context.code_latent(ct, y) for y in lat])
    parsed = [unpack_container(s) for s in one]
    rates["entropy decode, one coder"] = _rate(pix1, lambda: [codec.impl.decode_entropy(h, sec) for h, sec in parsed])
    for k, v in rates.items():
        print(f"{k}: {v:.1f} MPix/s", flush=True)
    if not args.quick:
        sweep = res["sweep"] = []
        for workers in sorted({1, 2, 4, 8, batch.cpu_count() - 1, batch.cpu_count()} - {0}):
            for pool in ("thread", "process"):
                d = _rate(pix, lambda: list(codec.decode_many(streams, workers=workers, pool=pool)))
                e = _rate(pix, lambda: list(codec.encode_many(images, workers=workers))) if pool == "thread" else None
                sweep.append({"workers": workers, "pool": pool, "encode": e, "decode": d})
                print(sweep[-1], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res["same_bytes"] and res["same_pixels"] else 1


if __name__ == "__main__":
    sys.exit(main())
