"""What the float32-exact synthesis gives up: PSNR and BD-rate of each exact
decoder against the float32 synthesis of the same weights, at every quality.

The stream is the same for all three decoders (the latent is coded once), so the
rate is identical and only the PSNR differs: bpp comes from the real bytes of
the default preset's stream, PSNR from each decoder's uint8 output.

    python benchmarks/exact_precision.py ../shared/data/kodak --json benchmarks/results/exact_precision_kodak.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    import nkcodec
    from nkcodec import metrics, zoo
    from nkcodec.tools.evaluate import bd_rate, rgb_images, write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", help="folder of test images (Kodak)")
    p.add_argument("--model", default=zoo.DEFAULT_MODEL, help="a float32-exact model (default: the default model)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    exact = zoo.load_model(args.model)
    if args.model not in zoo.EXACT32_VARIANTS:
        p.error(f"{args.model} is not a float32-exact variant: {sorted(zoo.EXACT32_VARIANTS)}")
    f64 = zoo.load_model(zoo.EXACT32_VARIANTS[args.model][0])
    images = rgb_images(args.images)
    rows = []
    for q in range(1, 9):
        acc = {k: [] for k in ("bpp", "exact32", "float64", "float32")}
        for name, img in images.items():
            data = nkcodec.compress(img, quality=q, model=args.model)
            y = exact.encode_latent(img, q)
            h, w = img.shape[:2]
            outs = {
                "exact32": nkcodec.decompress(data),
                "float64": f64.decode_latent(y, q, (h, w)),
                "float32": exact.decode_latent_float32(y, q, (h, w)),
            }
            np.testing.assert_array_equal(outs["exact32"], exact.decode_latent(y, q, (h, w)))
            acc["bpp"].append(metrics.bpp(data, img))
            for k, out in outs.items():
                acc[k].append(metrics.psnr(img, out))
        row = {"quality": q, "bpp": float(np.mean(acc["bpp"]))}
        row.update({f"psnr_{k}": float(np.mean(acc[k])) for k in ("exact32", "float64", "float32")})
        row["delta_db_exact32"] = row["psnr_exact32"] - row["psnr_float32"]
        row["delta_db_float64"] = row["psnr_float64"] - row["psnr_float32"]
        row["worst_image_delta_db_exact32"] = float(np.min(np.subtract(acc["exact32"], acc["float32"])))
        rows.append(row)
        print(
            f"q{q}  {row['bpp']:.4f} bpp  float32 {row['psnr_float32']:.3f} dB  exact32 {row['delta_db_exact32']:+.4f} dB"
            f" (worst image {row['worst_image_delta_db_exact32']:+.4f})  float64 {row['delta_db_float64']:+.4f} dB",
            flush=True,
        )
    bpp = [r["bpp"] for r in rows]
    summary = {k: bd_rate(bpp, [r["psnr_float32"] for r in rows], bpp, [r[f"psnr_{k}"] for r in rows]) for k in ("exact32", "float64")}
    print(f"BD-rate against the float32 synthesis: exact32 {summary['exact32']:+.3f}%, float64 {summary['float64']:+.3f}%")
    write_json({"model": args.model, "images": len(images), "rows": rows, "bd_rate_vs_float32": summary}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
