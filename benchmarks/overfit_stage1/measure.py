"""Issue 26, stage 1: RD and encode time of the overfitted prototype (coolchic.py) on 4 Kodak
images at 4 rates and 3 effort levels, against JPEG, WebP, AVIF (imagecodecs) and nkcodec's
default, all run in this process on the same images.  Each result is written as soon as it
exists, and a rerun resumes where the last one stopped:

    python benchmarks/overfit_stage1/measure.py            # all of it (hours on 2 cores)
    python benchmarks/overfit_stage1/measure.py --report   # the table from what is there

Results: benchmarks/results/overfit_stage1.json.  Encode time is the fit plus the stream's
writing, on this machine's cores (2 here), JIT compilation included."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nkcodec.metrics import psnr

sys.path.insert(0, os.path.dirname(__file__))

IMAGES = ["kodim04", "kodim08", "kodim19", "kodim23"]  # portrait, texture, mixed, smooth
LAMBDAS = [6e-4, 2e-4, 6e-5, 2e-5]
EFFORTS = {  # coarse-to-fine iteration schedules: [(scale, iterations)], then straight-through iterations
    0: ([[2, 1000], [1, 400], [0, 100]], 40),
    1: ([[2, 1500], [1, 600], [0, 150]], 60),
    2: ([[2, 3000], [1, 1200], [0, 300]], 120),
}
OUT = Path(__file__).resolve().parents[1] / "results" / "overfit_stage1.json"
KODAK = Path(os.environ.get("NKCODEC_KODAK", Path(__file__).resolve().parents[3] / "shared" / "data" / "kodak"))


def load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}


def save(res: dict) -> None:
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(OUT)


def peers(img: np.ndarray):
    """(codec, setting, bytes, psnr, encode s) of the classic codecs and nkcodec's default."""
    import imagecodecs

    import nkcodec

    def pil(fmt, q, **kw):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, fmt, quality=q, **kw)
        return buf.getvalue(), lambda d: np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))

    runs = [("jpeg", q, lambda q=q: pil("JPEG", q)) for q in (10, 20, 30, 40, 50, 60, 70, 80, 90)]
    runs += [("webp", q, lambda q=q: pil("WEBP", q, method=6)) for q in (5, 15, 30, 45, 60, 75, 90)]
    runs += [("avif", q, lambda q=q: (imagecodecs.avif_encode(img, level=q, speed=6), imagecodecs.avif_decode)) for q in (20, 35, 50, 65, 80, 90)]
    runs += [("nkcodec-default", q, lambda q=q: (nkcodec.compress(img, quality=q), nkcodec.decompress)) for q in range(1, 9)]
    for name, q, run in runs:
        t = time.perf_counter()
        data, dec = run()
        t = time.perf_counter() - t
        yield name, q, len(data), psnr(img, dec(data)[..., :3]), t


def measure() -> None:
    import coolchic as cc

    res = load()
    done = {(r["codec"], r["image"], str(r["setting"])) for r in res["rows"]}
    images = {n: np.asarray(Image.open(KODAK / f"{n}.png").convert("RGB")) for n in IMAGES}
    for n, img in images.items():
        if ("jpeg", n, "10") in done:
            continue
        for name, q, nbytes, p, t in peers(img):
            res["rows"].append({"codec": name, "image": n, "setting": q, "bpp": 8 * nbytes / img.shape[0] / img.shape[1], "psnr": p, "encode_s": t})
        save(res)
    for effort, (schedule, hard) in EFFORTS.items():
        for lam in LAMBDAS:
            for n, img in images.items():
                key = (f"overfit-e{effort}", n, str(lam))
                if key in done:
                    continue
                t = time.perf_counter()
                params, fit_s = cc.fit(img, lam, schedule, hard_iters=hard)
                nbytes, out, info = cc.encode(params, img, lam)
                t = time.perf_counter() - t
                row = {
                    "codec": key[0],
                    "image": n,
                    "setting": lam,
                    "bpp": 8 * nbytes / img.shape[0] / img.shape[1],
                    "psnr": psnr(img, out),
                    "encode_s": t,
                    "fit_s": fit_s,
                    **info,
                }
                res["rows"].append(row)
                save(res)
                print(json.dumps(row), flush=True)


def report() -> dict:
    from nkcodec.tools.evaluate import bd_rate

    rows = load()["rows"]
    curves = {}
    for codec in sorted({r["codec"] for r in rows}):
        by = {}
        for r in rows:
            if r["codec"] == codec:
                by.setdefault(str(r["setting"]), []).append(r)
        pts = [
            (np.mean([r["bpp"] for r in v]), np.mean([r["psnr"] for r in v]), np.mean([r["encode_s"] for r in v])) for v in by.values() if len(v) == len(IMAGES)
        ]
        if len(pts) >= 2:
            curves[codec] = sorted(pts)
    out = {}
    print(f"{'codec':18s} {'points':>6s} {'BD-rate vs JPEG':>16s} {'vs WebP':>9s} {'vs AVIF':>9s} {'encode s/image':>15s}")
    for codec, pts in curves.items():
        r, p, t = zip(*pts)
        bd = {peer: bd_rate(*zip(*[(a, b) for a, b, _ in curves[peer]]), r, p) for peer in ("jpeg", "webp", "avif") if peer in curves}
        out[codec] = {"points": [list(x) for x in pts], **{f"bd_vs_{k}": v for k, v in bd.items()}, "encode_s_mean": float(np.mean(t))}
        print(
            f"{codec:18s} {len(pts):6d} {bd.get('jpeg', float('nan')):15.2f}% {bd.get('webp', float('nan')):8.2f}% {bd.get('avif', float('nan')):8.2f}% {np.mean(t):15.1f}"
        )
    # per image and point: PSNR against each peer at the same bpp (the peer's curve on that image,
    # interpolated in log-rate; "-" where the point lies outside the peer's range)
    print(
        f"\n{'codec':12s} {'image':8s} {'lambda':>7s} {'bpp':>6s} {'PSNR':>6s} {'dB vs JPEG':>10s} {'WebP':>6s} {'AVIF':>6s} {'nk-default':>10s} {'encode s':>8s}"
    )
    for r in rows:
        if not r["codec"].startswith("overfit"):
            continue
        d = {}
        for peer in ("jpeg", "webp", "avif", "nkcodec-default"):
            pts = sorted((x["bpp"], x["psnr"]) for x in rows if x["codec"] == peer and x["image"] == r["image"])
            b, ps = np.log([a for a, _ in pts]), [c for _, c in pts]
            d[peer] = r["psnr"] - float(np.interp(np.log(r["bpp"]), b, ps)) if b[0] <= np.log(r["bpp"]) <= b[-1] else None
        f = [f"{d[k]:+.2f}" if d[k] is not None else "-" for k in d]
        print(
            f"{r['codec']:12s} {r['image']:8s} {r['setting']:7.0e} {r['bpp']:6.3f} {r['psnr']:6.2f} {f[0]:>10s} {f[1]:>6s} {f[2]:>6s} {f[3]:>10s} {r['encode_s']:8.0f}"
        )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    if not a.report:
        measure()
    report()
