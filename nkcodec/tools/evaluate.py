"""Rate-distortion evaluation against JPEG and WebP, measured in the same run.

``python -m nkcodec eval DIR [--json FILE] [--plot FILE]`` codes every image
at nkcodec qualities 1..8 (and the ``paper`` preset), and with Pillow's JPEG
(``optimize=True``, 4:2:0) and WebP over quality sweeps.  bpp comes from the
real byte count; PSNR (RGB, peak 255) from the decoded uint8 image.  BD-rate is
Bjøntegaard's delta rate with a piecewise-cubic (PCHIP) fit of log-rate over
PSNR, integrated over the overlapping PSNR range.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import metrics
from ..config import QUALITIES
from ..imageio import folder_images, pillow_codec

__all__ = ["bd_rate", "run_eval", "run_ablation", "run_lossless", "JPEG_QUALITIES", "WEBP_QUALITIES"]

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def bd_rate(rate_ref, psnr_ref, rate_test, psnr_test) -> float:
    """Bjøntegaard delta rate (%) of test against ref; negative = fewer bits.

    Examples
    --------
    >>> round(bd_rate([1, 2, 4], [30, 33, 36], [0.5, 1, 2], [30, 33, 36]), 1)
    -50.0
    """
    from scipy.interpolate import PchipInterpolator

    def curve(r, p):
        r = np.log(np.asarray(r, np.float64))
        p = np.asarray(p, np.float64)
        order = np.argsort(p)
        p, r = p[order], r[order]
        keep = np.concatenate([[True], np.diff(p) > 1e-9])  # PCHIP needs increasing x
        return p[keep], r[keep]

    p1, r1 = curve(rate_ref, psnr_ref)
    p2, r2 = curve(rate_test, psnr_test)
    lo, hi = max(p1[0], p2[0]), min(p1[-1], p2[-1])
    if hi <= lo or len(p1) < 2 or len(p2) < 2:
        return float("nan")
    i1 = PchipInterpolator(p1, r1).integrate(lo, hi)
    i2 = PchipInterpolator(p2, r2).integrate(lo, hi)
    return float((np.exp((i2 - i1) / (hi - lo)) - 1) * 100)


def _nk_codec(quality: int, preset: str, **options):
    from ..codec import Codec, decompress

    c = Codec(quality, preset, **options)
    return c.encode, decompress


def _warm_up(enc, dec, images: dict) -> None:
    """Encode and decode one image of each distinct shape outside the timed runs:
    model loading and JIT compilation (per size bucket and orientation) are not
    what a point's speed should measure."""
    for img in {im.shape: im for im in images.values()}.values():
        dec(enc(img))


def _run_point(enc, dec, images: dict) -> dict:
    rows = []
    t_enc = t_dec = 0.0
    for name, img in images.items():
        t0 = time.perf_counter()
        data = enc(img)
        t1 = time.perf_counter()
        out = dec(data)
        t2 = time.perf_counter()
        t_enc += t1 - t0
        t_dec += t2 - t1
        rows.append(
            {
                "image": name,
                "bytes": len(data),
                "bpp": metrics.bpp(data, img),
                "psnr": metrics.psnr(img, out),
                "mse": metrics.mse(img, out),
                "cr": metrics.compression_ratio(data, img),
                "max_err": int(np.abs(out.astype(np.int64) - img.astype(np.int64)).max()),
            }
        )
    pix = sum(im.shape[0] * im.shape[1] for im in images.values())
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("bpp", "psnr", "mse", "cr")}
    mean.update(enc_mpix_s=pix / t_enc / 1e6, dec_mpix_s=pix / t_dec / 1e6, max_err=max(r["max_err"] for r in rows))
    return {"mean": mean, "rows": rows}


def _curve(name: str, points: list, labels: list) -> dict:
    res = {k: [p["mean"][k] for p in points] for k in ("bpp", "psnr", "mse", "cr", "enc_mpix_s", "dec_mpix_s", "max_err")}
    return {
        "name": name,
        "description": "",
        "results": res,
        "settings": labels,
        "per_image": {str(lab): p["rows"] for lab, p in zip(labels, points)},
    }


def read_published(path) -> dict:
    """A published RD curve in CompressAI's JSON shape (``name``, ``results`` with
    ``bpp`` and ``psnr-rgb`` or ``psnr``), e.g. ``../shared/anchors/compressai_kodak/``.
    Returns ``{"name", "source", "description", "results": {"bpp", "psnr"}}``;
    ValueError naming the file if it is not such a curve."""
    try:
        d = json.loads(Path(path).read_text())
        r = d["results"]
        bpp = [float(v) for v in r["bpp"]]
        psnr = [float(v) for v in (r["psnr-rgb"] if "psnr-rgb" in r else r["psnr"])]
        name = str(d.get("name") or Path(path).stem)
    except OSError as e:
        raise ValueError(f"published curve {path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"published curve {path}: not a CompressAI-style results file ({e.__class__.__name__}: {e})") from None
    if len(bpp) != len(psnr) or len(bpp) < 2:
        raise ValueError(f"published curve {path}: needs as many bpp as PSNR values, at least 2")
    order = np.argsort(bpp)
    return {
        "name": name,
        "source": str(path),
        "description": str(d.get("description", "")),
        "results": {"bpp": [bpp[i] for i in order], "psnr": [psnr[i] for i in order]},
    }


def _plot(curves: dict, path, published: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, c in curves.items():
        r = c["results"]
        ax.plot(r["bpp"], r["psnr"], "o-" if name.startswith("nkcodec") else ".--", label=name, ms=4)
    for name, c in (published or {}).items():
        r = c["results"]
        ax.plot(r["bpp"], r["psnr"], ":", label=f"{name} (published)", lw=1.2)
    ax.set_xlabel("bits per pixel (real bytes)")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.set_xlim(0, 2.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Rate-distortion, measured in one run" + (" (dotted: published results)" if published else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_eval(
    folder,
    json_path=None,
    plot_path=None,
    qualities=QUALITIES,
    paper: bool = True,
    progress: bool = True,
    efforts=(0,),
    published=(),
):
    """Evaluate nkcodec, JPEG and WebP on every image of ``folder``; print tables.
    ``efforts``: encoder efforts of the default preset to run (curve ``nkcodec``
    for 0, ``nkcodec-effort-E`` otherwise).  ``published``: CompressAI-style JSON
    files of published results on the same images (:func:`read_published`):
    they are not run, only drawn and compared by BD-rate, and kept apart from
    the measured ``curves``."""
    from tqdm import tqdm

    pub = {}
    for path in published:  # read first: a bad file fails before the long run
        c = read_published(path)
        pub[c["name"]] = c
    images = rgb_images(folder)
    jobs = []
    for e in efforts:
        label = "nkcodec" if e == 0 else f"nkcodec-effort-{e}"
        jobs += [(label, q, lambda q=q, e=e: _nk_codec(q, "default", **({"effort": e} if e else {}))) for q in qualities]
    if paper:
        jobs += [("nkcodec-paper", q, lambda q=q: _nk_codec(q, "paper")) for q in qualities]
    jobs += [("jpeg", q, lambda q=q: pillow_codec("JPEG", q)) for q in JPEG_QUALITIES]
    jobs += [("webp", q, lambda q=q: pillow_codec("WEBP", q)) for q in WEBP_QUALITIES]
    for e in efforts:
        _warm_up(*_nk_codec(4, "default", **({"effort": e} if e else {})), images)
    if paper:
        _warm_up(*_nk_codec(4, "paper"), images)
    points: dict = {}
    for name, q, make in tqdm(jobs, desc="eval", disable=not progress):
        enc, dec = make()
        points.setdefault(name, []).append((q, _run_point(enc, dec, images)))
    curves = {name: _curve(name, [p for _, p in pts], [q for q, _ in pts]) for name, pts in points.items()}

    def vs_peers(c):  # BD-rate against this run's JPEG and WebP
        return {"vs_jpeg": bd_rate(*_bp(curves["jpeg"]), *_bp(c)), "vs_webp": bd_rate(*_bp(curves["webp"]), *_bp(c))}

    bd = {name: vs_peers(c) for name, c in curves.items()}
    result = {"images": len(images), "folder": str(folder), "curves": curves, "bd_rate": bd}
    if pub:
        result["published"] = pub
        result["published_bd_rate"] = {name: vs_peers(c) for name, c in pub.items()}
        # each measured curve against each published one: negative = fewer bits than the published codec
        result["bd_rate_vs_published"] = {n: {p: bd_rate(*_bp(pc), *_bp(c)) for p, pc in pub.items()} for n, c in curves.items() if n.startswith("nkcodec")}
    _print_eval(result)
    write_json(result, json_path)
    if plot_path:
        _plot(curves, plot_path, pub)
        print(f"wrote {plot_path}")
    return result


def _bp(curve: dict) -> tuple:
    return curve["results"]["bpp"], curve["results"]["psnr"]


def write_json(result: dict, path) -> None:
    """Write a command's results (when ``path`` is given) and say so."""
    if path:
        Path(path).write_text(json.dumps(result, indent=1))
        print(f"wrote {path}")


ABLATION = ("paper", "scalar-rle", "scalar", "context", "cluster")


def run_ablation(folder, json_path=None, qualities=QUALITIES, progress: bool = True) -> dict:
    """What each stage contributes: the learned presets at every quality, with BD-rate
    against Pillow JPEG measured in the same run (the lossless-leaning presets and
    the paper's operating point: :func:`run_lossless`)."""
    from tqdm import tqdm

    from .. import zoo

    images = rgb_images(folder)
    jobs = [(p, q) for p in ABLATION for q in qualities]
    out: dict = {}
    for preset, q in tqdm(jobs, desc="ablation", disable=not progress):
        enc, dec = _nk_codec(q, preset)
        if q == qualities[0]:
            _warm_up(enc, dec, images)
        out.setdefault(preset, []).append((q, _run_point(enc, dec, images)))
    jpeg = [(q, _run_point(*pillow_codec("JPEG", q), images)) for q in JPEG_QUALITIES]
    out["jpeg"] = jpeg
    curves = {name: _curve(name, [p for _, p in pts], [q for q, _ in pts]) for name, pts in out.items()}
    ref = curves["jpeg"]["results"]
    bd = {n: bd_rate(ref["bpp"], ref["psnr"], c["results"]["bpp"], c["results"]["psnr"]) for n, c in curves.items()}
    m = zoo.load_model()
    latents = {q: [m.encode_latent(img, q) for img in images.values()] for q in qualities}
    key_cost = _key_cost({q: latents[q] for q in (1, 4, 8) if q in latents})
    table = model_table(m, images, latents, curves["scalar"])
    result = {
        "images": len(images),
        "folder": str(folder),
        "curves": curves,
        "bd_rate_vs_jpeg": bd,
        "key_cost": key_cost,
        "model_table": table,
    }
    print(f"{len(images)} images from {folder}\n")
    for q, (nk, plain) in key_cost.items():
        print(f"NK-RLE on q{q} latents: {nk} bytes with key = run**2 vs {plain} with key = run ({nk / plain - 1:+.1%})")
    print("quality | " + " | ".join(f"{p} bpp / dB" for p in ABLATION))
    for i, q in enumerate(qualities):
        cells = [f"{curves[p]['results']['bpp'][i]:.3f} / {curves[p]['results']['psnr'][i]:.2f}" for p in ABLATION]
        print(f"{q:>7} | " + " | ".join(cells))
    print("BD-rate vs JPEG: " + ", ".join(f"{p} {bd[p]:+.1f}%" for p in ABLATION))
    write_json(result, json_path)
    return result


NEAR_LOSSLESS = (0, 1, 2, 4)  # max_error settings of the lossless table
EFFORTS = (1, 2)  # near-lossless encoder efforts above the default, run lossless


def _effort_jobs():
    """(name, setting, make) of near-lossless at max_error 0 and each of :data:`EFFORTS`."""
    from ..codec import Codec, decompress

    return [(f"near-lossless-effort-{e}", 0, lambda e=e: (Codec(preset="near-lossless", max_error=0, effort=e).encode, decompress)) for e in EFFORTS]


PALETTE_KS = (64, 256, 768, 1024)


DEEP_ERRORS = (0, 1, 2, 4, 16)  # max_error settings of the 16-bit table, in sample units


def _deep_jobs():
    """(name, setting, make) of the 16-bit table: near-lossless at :data:`DEEP_ERRORS`,
    its 8-slice stacks, and the standards that take 16 bits, through imagecodecs."""
    import imagecodecs

    from ..codec import Codec, decompress

    jobs = [("near-lossless", d, lambda d=d: (Codec(preset="near-lossless", max_error=d).encode, decompress)) for d in DEEP_ERRORS]
    jobs += _effort_jobs()
    jobs += [("png-16", 0, lambda: (imagecodecs.png_encode, imagecodecs.png_decode))]
    jobs += [("jpeg2000-lossless", 0, lambda: ((lambda im: imagecodecs.jpeg2k_encode(im, level=0)), imagecodecs.jpeg2k_decode))]
    jobs += [("jpegxl-lossless", 0, lambda: ((lambda im: imagecodecs.jpegxl_encode(im, lossless=True, effort=7)), imagecodecs.jpegxl_decode))]
    jobs += [("jpeg-ls", n, lambda n=n: ((lambda im: imagecodecs.jpegls_encode(im, level=n)), imagecodecs.jpegls_decode)) for n in (0, 1, 2, 4, 16)]
    return jobs


def run_lossless(folder, json_path=None, progress: bool = True, plot_path=None, deep: bool = False) -> dict:
    """The lossless and bounded-error end: ``near-lossless`` at each max_error (and
    its version 1, a learned base image plus its residual, at 0 and 1),
    ``palette`` at several k and ``rle``, with Pillow PNG and lossless WebP timed
    and scored in the same run (compression ratio, PSNR, largest sample error),
    and JPEG XL and JPEG-LS when imagecodecs is installed (:func:`imagecodecs_anchors`;
    a note says so when it is not).  Per-image rows go in the JSON, and
    ``plot_path`` gets compression ratio against max error.
    The paper's operating point is 49.5 dB at compression ratio 1.37.

    ``deep``: instead, the 16-bit slices of real MRI volumes (:mod:`nkcodec.tools.deep_data`,
    ``folder`` unused) against 16-bit PNG, JPEG 2000, JPEG XL and JPEG-LS, all through
    imagecodecs (the ``eval`` extra), and near-lossless on 8-slice stacks of the same samples."""
    from tqdm import tqdm

    from ..codec import Codec, decompress

    if deep:
        return _run_deep(json_path, progress, plot_path)
    images = rgb_images(folder)
    jobs = [("near-lossless", d, lambda d=d: (Codec(preset="near-lossless", max_error=d).encode, decompress)) for d in NEAR_LOSSLESS]
    jobs += _effort_jobs()
    # the version 1 coder (a learned base image plus its residual), for comparison in the same run
    jobs += [("near-lossless-base6", d, lambda d=d: (Codec(preset="near-lossless", max_error=d, base=6).encode, decompress)) for d in (0, 1)]
    jobs += [("palette", k, lambda k=k: (Codec(1, "palette", k=k).encode, decompress)) for k in PALETTE_KS]
    jobs += [("rle", 0, lambda: (Codec(1, "rle").encode, decompress))]
    jobs += [("png", 0, lambda: pillow_codec("PNG", None)), ("webp-lossless", 0, lambda: pillow_codec("WEBP", None))]
    anchors = imagecodecs_anchors()
    notes = []
    if anchors is None:
        notes.append('imagecodecs is not installed: the JPEG XL and JPEG-LS anchors were skipped (pip install -e ".[eval]")')
        print(f"note: {notes[-1]}")
    else:
        jobs += anchors
    out: dict = {}
    for name, setting, make in tqdm(jobs, desc="lossless", disable=not progress):
        enc, dec = make()
        _warm_up(enc, dec, images)
        out.setdefault(name, []).append((setting, _run_point(enc, dec, images)))
    curves = {name: _curve(name, [p for _, p in pts], [s for s, _ in pts]) for name, pts in out.items()}
    result = {"images": len(images), "folder": str(folder), "curves": curves, "notes": notes}
    print(f"{len(images)} images from {folder}\n")
    print("codec | setting | CR | bpp | PSNR dB | max error | enc MPix/s | dec MPix/s")
    for name, c in curves.items():
        r = c["results"]
        for i, s in enumerate(c["settings"]):
            print(
                f"{name} | {s} | {r['cr'][i]:.3f} | {r['bpp'][i]:.3f} | {r['psnr'][i]:.2f} | {r['max_err'][i]} "
                f"| {r['enc_mpix_s'][i]:.2f} | {r['dec_mpix_s'][i]:.2f}"
            )
    write_json(result, json_path)
    if plot_path:
        plot_lossless(result, plot_path)
    return result


def _run_deep(json_path, progress, plot_path) -> dict:
    from tqdm import tqdm

    from ..codec import Codec, decompress
    from .deep_data import deep_images, deep_stacks

    sets = {"slices": deep_images(), "stacks": deep_stacks(8)}
    jobs = [("slices", *job) for job in _deep_jobs()]
    jobs += [("stacks", "near-lossless (8-slice stacks)", d, lambda d=d: (Codec(preset="near-lossless", max_error=d).encode, decompress)) for d in (0, 1)]
    out: dict = {}
    for which, name, setting, make in tqdm(jobs, desc="16-bit", disable=not progress):
        enc, dec = make()
        images = sets[which]
        _warm_up(enc, dec, images)
        point = _run_point(enc, dec, images)
        point["mean"]["total_cr"] = sum(im.nbytes for im in images.values()) / sum(r["bytes"] for r in point["rows"])
        out.setdefault(name, []).append((setting, point))
    curves = {name: _curve(name, [p for _, p in pts], [s for s, _ in pts]) for name, pts in out.items()}
    for name, pts in out.items():
        curves[name]["results"]["total_cr"] = [p["mean"]["total_cr"] for _, p in pts]
    slices = sets["slices"]
    result = {
        "images": len(slices),
        "stacks": len(sets["stacks"]),
        "pixels": sum(im.size for im in slices.values()),
        "data": "nibabel test data, 16-bit MRI slices (nkcodec.tools.deep_data)",
        "curves": curves,
        "notes": ["CR: mean over images of raw bytes (2 per sample) / coded bytes; total CR: all raw bytes / all coded bytes"],
    }
    print(f"{len(slices)} slices ({result['pixels']} pixels, 16-bit) and {len(sets['stacks'])} stacks of 8 from nibabel's test data\n")
    print("codec | setting | CR | total CR | max error | enc MPix/s | dec MPix/s")
    for name, c in curves.items():
        r = c["results"]
        for i, s in enumerate(c["settings"]):
            print(f"{name} | {s} | {r['cr'][i]:.3f} | {r['total_cr'][i]:.3f} | {r['max_err'][i]} | {r['enc_mpix_s'][i]:.2f} | {r['dec_mpix_s'][i]:.2f}")
    write_json(result, json_path)
    if plot_path:
        plot_lossless(result, plot_path)
    return result


def imagecodecs_anchors():
    """The lossless and near-lossless standards through ``imagecodecs`` (the
    ``eval`` extra), as (name, setting, make) jobs: JPEG XL lossless at effort 7
    and JPEG-LS (CharLS, no colour transform) at near = 0, 1 and 2; ``None``
    when imagecodecs is missing."""
    try:
        import imagecodecs
    except ImportError:
        return None

    def jxl():
        return (lambda im: imagecodecs.jpegxl_encode(im, lossless=True, effort=7)), imagecodecs.jpegxl_decode

    def jls(near):
        return (lambda im: imagecodecs.jpegls_encode(im, level=near)), imagecodecs.jpegls_decode

    return [("jpegxl-lossless", 0, jxl)] + [("jpeg-ls", near, lambda near=near: jls(near)) for near in (0, 1, 2)]


def plot_lossless(result: dict, path) -> None:
    """Compression ratio against the largest sample error, one curve per codec."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    left_out = []
    for name, c in result["curves"].items():
        r = c["results"]
        if min(r["max_err"]) > 8:  # not a bounded-error codec (the palette): it would squash the axis
            left_out.append(name)
            continue
        ax.plot(r["max_err"], r["cr"], "o-" if len(r["cr"]) > 1 else "s", label=name)
    if left_out:
        ax.text(0.98, 0.02, f"not shown (max error > 8): {', '.join(left_out)}", transform=ax.transAxes, ha="right", fontsize=8)
    ax.set_xlabel("largest error of any sample")
    ax.set_ylabel("compression ratio (raw bytes / coded bytes)")
    ax.set_title(f"Lossless and bounded error, {result['images']} images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_table(m, images: dict, latents: dict, scalar_curve: dict) -> dict:
    """Per quality: the float prior's estimated bpp of the rounded latents, next to
    the real bpp and PSNR of the ``scalar`` preset measured on the same images."""
    pix = [img.shape[0] * img.shape[1] for img in images.values()]
    r = scalar_curve["results"]
    out = {}
    print("quality | estimated bpp | real bpp (scalar) | PSNR dB")
    for i, (q, ys) in enumerate(latents.items()):
        est = [m.estimate_bits(y, q) / n for y, n in zip(ys, pix)]
        out[q] = {"est_bpp": float(np.mean(est)), "bpp": r["bpp"][i], "psnr": r["psnr"][i]}
        print(f"{q:>7} | {out[q]['est_bpp']:.4f} | {out[q]['bpp']:.4f} | {out[q]['psnr']:.2f}")
    return out


def _key_cost(latents: dict) -> dict:
    """Packed NK-RLE bytes of the channel-major latents: squared keys vs plain keys."""
    from ..coding import rle

    out = {}
    for q, ys in latents.items():
        nk = plain = 0
        for y in ys:
            sym = np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(-1)
            nk += len(rle.pack(*rle.encode(sym, "nk")))
            plain += len(rle.pack(*rle.encode(sym, "plain")))
        out[q] = (nk, plain)
    return out


def rgb_images(folder) -> dict:
    """The RGB images of a folder (the learned codec and the peers are compared on RGB)."""

    images = {k: v for k, v in folder_images(folder).items() if v.ndim == 3 and v.shape[2] == 3}
    if not images:
        raise ValueError(f"no RGB images in {folder}")
    return images


def _print_eval(result: dict) -> None:
    print(f"{result['images']} images from {result['folder']}")
    for name, c in result["curves"].items():
        r = c["results"]
        print(f"\n{name}: setting, bpp, PSNR dB, MSE, CR, enc MPix/s, dec MPix/s")
        for i, s in enumerate(c["settings"]):
            print(f"  {s:>3} {r['bpp'][i]:7.4f} {r['psnr'][i]:7.3f} {r['mse'][i]:9.3f} {r['cr'][i]:8.2f} {r['enc_mpix_s'][i]:8.2f} {r['dec_mpix_s'][i]:8.2f}")
    print("\nBD-rate (%; negative = fewer bits at equal PSNR)")
    for name, b in {**result["bd_rate"], **result.get("published_bd_rate", {})}.items():
        print(f"  {name:<22} vs JPEG {b['vs_jpeg']:+7.2f}   vs WebP {b['vs_webp']:+7.2f}" + ("   (published)" if name in result.get("published", {}) else ""))
    for name, b in result.get("bd_rate_vs_published", {}).items():
        print(f"  {name} vs " + ", ".join(f"{p} {v:+.2f}" for p, v in b.items()))
