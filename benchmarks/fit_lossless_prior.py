"""Count the prior of the near-lossless coder (version 2, or 5) on the training photos.

    python benchmarks/fit_lossless_prior.py ../shared/data/train --out lossless-v2-prior.npz
    python benchmarks/fit_lossless_prior.py ../shared/data/train --version 5 --out lossless-v5-prior.npz

Each training photo is reduced 2x by averaging 2x2 blocks (BSDS500 photos are
JPEGs: the averaging takes out most of their block and chroma-subsampling traces,
so they look more like camera photos), then coded from the flat prior; every
probability's final value is averaged in the logistic domain over the tiles that
used it (``nkcodec.fit.lossless_prior.fit_prior``).  Every 20th photo is held out: those
20 are the ones the design was checked on.

The shipped files, ``nkcodec/weights/lossless-v2-prior.npz`` and ``lossless-v5-prior.npz``,
were made by these commands and are fixed forever: the streams of their versions decode with them.  A new prior is
a new residual version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def halved(path: Path) -> np.ndarray:
    from PIL import Image

    im = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    h, w = im.shape[0] // 2 * 2, im.shape[1] // 2 * 2
    return ((im[0:h:2, 0:w:2] + im[1:h:2, 0:w:2] + im[0:h:2, 1:w:2] + im[1:h:2, 1:w:2] + 2) // 4).astype(np.uint8)


def main(argv=None) -> int:
    from tqdm import tqdm

    from nkcodec.fit import lossless_prior

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="training photos (JPEG or PNG)")
    ap.add_argument("--out", type=Path, required=True, help="the .npz to write")
    ap.add_argument("--version", type=int, choices=(2, 5), default=2, help="the coder's residual version (default 2)")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = [p for i, p in enumerate(files) if i % 20 != 0]
    if not files:
        print(f"no photos in {args.folder}", file=sys.stderr)
        return 1
    bar = tqdm(total=len(files), unit="photo", file=sys.stderr)
    probs, wts = lossless_prior.fit_prior((halved(p) for p in files), progress=lambda: bar.update(), version=args.version)
    bar.close()
    np.savez_compressed(args.out, probs=probs.astype(np.uint16), wts=wts.astype(np.int32))
    print(f"wrote {args.out} from {len(files)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
