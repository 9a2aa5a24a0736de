"""Peak memory of encode and decode at 1, 24 and 50 MPix (default preset, or --preset).

Each measurement runs in a fresh process (the decode one reads the stream
the encode one wrote), which reports its peak resident set size
(``resource.getrusage``); the baseline is the same process
doing everything but the coding (imports, the image, loading the model).
The image is a Kodak photo mirror-tiled to the size, so the content is
photographic at every size.

    python benchmarks/memory.py ../shared/data/kodak/kodim05.png --json benchmarks/results/memory.json
    python benchmarks/memory.py ../shared/data/kodak/kodim05.png --preset near-lossless --json benchmarks/results/memory_lossless.json
    python benchmarks/memory.py ../shared/data/kodak/kodim05.png --preset near-lossless --deep --json benchmarks/results/memory_lossless16.json

``--deep``: the same image as 16-bit samples (each 8-bit value v as 257 v plus a fixed
pseudo-random 0..255 below it: 16-bit content with sensor-like low bits), near-lossless only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _image(path: str, mpix: float, deep: bool = False):
    import numpy as np

    from nkcodec.imageio import read_image

    src = read_image(path)
    if deep:
        noise = np.random.default_rng(0).integers(0, 256, src.shape)
        src = np.minimum(src.astype(np.int64) * 257 + noise, 65535).astype(np.uint16)
    h = int((mpix * 1e6 * 2 / 3) ** 0.5)
    w = int(mpix * 1e6 / h)
    reps = (-(-h // src.shape[0]), -(-w // src.shape[1]))
    tile = np.concatenate([src, src[::-1]], 0)
    tile = np.concatenate([tile, tile[:, ::-1]], 1)
    return np.ascontiguousarray(np.tile(tile, (reps[0] // 2 + 1, reps[1] // 2 + 1, 1))[:h, :w])


def one(path: str, what: str, mpix: float, stream: str, preset: str = "default", deep: bool = False) -> dict:
    """In this process: encode to ``stream``, decode ``stream``, or only set up
    (``what="baseline"``: imports, the image, the weights); report the peak RSS."""
    from pathlib import Path

    import nkcodec

    img = _image(path, mpix, deep)
    codec = nkcodec.Codec(4, preset, **({"max_error": 0} if preset == "near-lossless" else {}))
    if getattr(codec.impl, "model_id", 0):
        codec.impl.model  # the weights, as every real call needs
    data = Path(stream).read_bytes() if what == "decode" else b""
    t = time.perf_counter()
    if what == "encode":
        data = codec.encode(img)
        Path(stream).write_bytes(data)
    elif what == "decode":
        nkcodec.decompress(data)
    seconds = time.perf_counter() - t
    return {
        "what": what,
        "mpix": img.shape[0] * img.shape[1] / 1e6,
        "shape": list(img.shape),
        "seconds": seconds,
        "bytes": len(data),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--sizes", default="1,24,50")
    p.add_argument("--json")
    p.add_argument("--preset", default="default", help="preset to measure (near-lossless: max_error 0, lossless)")
    p.add_argument("--deep", action="store_true", help="16-bit samples (near-lossless)")
    p.add_argument("--one", nargs=3, metavar=("WHAT", "MPIX", "STREAM"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.image, args.one[0], float(args.one[1]), args.one[2], args.preset, args.deep)))
        return 0
    import tempfile

    rows = []
    stream = tempfile.NamedTemporaryFile(suffix=".nkc", delete=False).name
    for mpix in map(float, args.sizes.split(",")):
        for what in ("baseline", "encode", "decode"):
            out = subprocess.run(
                [sys.executable, __file__, args.image, "--one", what, str(mpix), stream, "--preset", args.preset] + ["--deep"] * args.deep,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{r['mpix']:6.1f} MPix {what:<8} peak RSS {r['peak_rss_mb']:7.0f} MB  {r['seconds']:6.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"image": args.image, "preset": args.preset, "deep": args.deep, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
