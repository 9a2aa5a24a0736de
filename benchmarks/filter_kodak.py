"""The adaptive filter on Kodak (``adaptive_filter=True`` against the default), at every
quality, with BD-rate against the JPEG and WebP curves of an ``eval --json`` run on the same
images (run ``python -m nkcodec eval DIR --json EVAL`` first; its nkcodec curve is the default's).

    python benchmarks/filter_kodak.py ../shared/data/kodak benchmarks/results/eval_kodak.json [--json OUT]

Per quality: mean bpp and PSNR with the filter, how many images it was sent for, and the
mean encode and decode time against the default's."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("eval_json")
    p.add_argument("--json")
    args = p.parse_args()
    import nkcodec
    from nkcodec.format.container import unpack_container
    from nkcodec.imageio import folder_images
    from nkcodec.tools.evaluate import bd_rate

    ref = json.load(open(args.eval_json))
    images = folder_images(args.folder)
    rows = []
    for q in range(1, 9):
        bpp, psnr, sent, t_enc, t_dec, t_enc0, t_dec0 = [], [], 0, 0.0, 0.0, 0.0, 0.0
        for image in images.values():
            image = image[..., :3] if image.ndim == 3 else image
            t = time.perf_counter()
            plain = nkcodec.compress(image, q)
            t_enc0 += time.perf_counter() - t
            t = time.perf_counter()
            nkcodec.decompress(plain)
            t_dec0 += time.perf_counter() - t
            t = time.perf_counter()
            data = nkcodec.compress(image, q, adaptive_filter=True)
            t_enc += time.perf_counter() - t
            t = time.perf_counter()
            out = nkcodec.decompress(data)
            t_dec += time.perf_counter() - t
            sent += "filter" in unpack_container(data)[0].params
            bpp.append(nkcodec.metrics.bpp(data, image))
            psnr.append(nkcodec.metrics.psnr(image, out))
        n = len(images)
        rows.append({"quality": q, "bpp": float(np.mean(bpp)), "psnr": float(np.mean(psnr)), "sent": sent, "images": n,
                     "encode_s": t_enc / n, "decode_s": t_dec / n, "encode_s_default": t_enc0 / n, "decode_s_default": t_dec0 / n})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    curves = ref["curves"]
    rates, psnrs = [r["bpp"] for r in rows], [r["psnr"] for r in rows]
    result = {"rows": rows}
    for peer in ("jpeg", "webp", "nkcodec"):
        c = curves[peer]["results"]
        result[f"bd_rate_vs_{peer}"] = bd_rate(c["bpp"], c["psnr"], rates, psnrs)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
