"""Stage throughput tables: ``python -m nkcodec bench``.

Every stage is timed after a warm-up call (so JIT compile time is excluded);
the figure is the median of several runs, next to its peer timed in the same
run: the NumPy reference for NK-RLE, Pillow for the whole lossless codec.
"""

from __future__ import annotations

import io
import platform
import statistics
import time

import numpy as np

from ..coding import rle
from ..config import cpu_count
from ..imageio import folder_images, pillow_codec, sample_images

__all__ = ["measure", "synthetic_stream", "sample_images", "run_bench"]


def measure(fn, *args, repeats: int = 7, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn(*args)`` over ``repeats`` runs, after one warm-up call."""
    fn(*args)
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_seconds(fn, *args) -> float:
    """CPU seconds (every thread of the process) of one call of ``fn(*args)``, after a warm-up call."""
    fn(*args)
    t0 = time.process_time()
    fn(*args)
    return time.process_time() - t0


def synthetic_stream(n: int = 10_000_000, seed: int = 0, dtype=np.int16) -> np.ndarray:
    """A latent-like stream: ~70% zeros in runs.

    Zero runs (geometric, mean 7) alternate with non-zero runs (geometric,
    mean 3), each non-zero run holding one random value in +-[1, 50].
    """
    rng = np.random.default_rng(seed)
    pairs = n // 9 + 64
    lengths = np.stack([rng.geometric(1 / 7, pairs), rng.geometric(1 / 3, pairs)], 1).reshape(-1)
    mags = rng.integers(1, 51, pairs) * rng.choice(np.array([-1, 1]), pairs)
    values = np.stack([np.zeros(pairs, np.int64), mags], 1).reshape(-1)
    out = np.repeat(values, lengths)[:n].astype(dtype)
    if out.size < n:  # pragma: no cover - pairs is generous
        raise RuntimeError("synthetic stream too short")
    return out


def _row(stage, seconds, items, unit, peer=None, peer_seconds=None, **extra):
    scale = 1e6
    row = {
        "stage": stage,
        "seconds": seconds,
        "items": items,
        "unit": unit,
        "throughput": items / seconds / scale,
        "peer": peer,
        "peer_throughput": None if peer_seconds is None else items / peer_seconds / scale,
    }
    row.update(extra)
    return row


def _rle_rows(label: str, stream: np.ndarray, repeats: int) -> list:
    values, keys = rle.encode(stream)
    ok = np.array_equal(rle.decode(values, keys), stream)
    if not ok:
        raise RuntimeError("NK-RLE round trip failed in bench")
    nbytes = stream.nbytes
    ref = "numpy reference"
    t_enc = measure(rle.encode, stream, repeats=repeats)
    t_enc_ref = measure(rle.encode_reference, stream, repeats=repeats)
    t_dec = measure(rle.decode, values, keys, repeats=repeats)
    t_dec_ref = measure(rle.decode_reference, values, keys, repeats=repeats)
    packed = rle.pack(values, keys)
    t_pack = measure(rle.pack, values, keys, repeats=repeats)
    t_unpack = measure(rle.unpack, packed, stream.dtype, repeats=repeats)
    plain = rle.pack(*rle.encode(stream, "plain"))
    info = {"data": label, "runs": int(values.size)}
    return [
        _row("rle.encode", t_enc, nbytes, "MB/s", ref, t_enc_ref, **info),
        _row("rle.decode", t_dec, nbytes, "MB/s", ref, t_dec_ref, **info),
        _row("rle.pack", t_pack, nbytes, "MB/s", **info, packed_bytes=len(packed), plain_key_bytes=len(plain)),
        _row("rle.unpack", t_unpack, nbytes, "MB/s", **info),
    ]


def _lossless_rows(images: dict, repeats: int) -> list:
    """The lossless presets (``rle``; ``near-lossless`` at max_error 0) against Pillow PNG."""
    from PIL import Image

    from ..codec import Codec

    pix = sum(im.shape[0] * im.shape[1] for im in images.values())
    raw = sum(im.nbytes for im in images.values())
    pngs = []
    for im in images.values():
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        pngs.append(buf.getvalue())

    def png_enc():
        for im in images.values():
            Image.fromarray(im).save(io.BytesIO(), format="PNG")

    def png_dec():
        for b in pngs:
            np.asarray(Image.open(io.BytesIO(b)))

    png_size = sum(len(b) for b in pngs)
    png_times = measure(png_enc, repeats=repeats), measure(png_dec, repeats=repeats)
    rows = []
    for label, codec in (("rle-preset", Codec(preset="rle")), ("near-lossless", Codec(preset="near-lossless", max_error=0))):
        streams = [codec.encode(im) for im in images.values()]

        def enc(codec=codec):
            for im in images.values():
                codec.encode(im)

        def dec(codec=codec, streams=streams):
            for s in streams:
                codec.decode(s)

        extra = {"data": f"{len(images)} images", "ratio": raw / sum(len(s) for s in streams), "peer_ratio": raw / png_size}
        rows.append(_row(f"{label}.encode", measure(enc, repeats=repeats), pix, "MPix/s", "Pillow PNG", png_times[0], **extra))
        rows.append(_row(f"{label}.decode", measure(dec, repeats=repeats), pix, "MPix/s", "Pillow PNG", png_times[1], **extra))
    return rows


def _kmeans_rows(images: dict, ks=(16, 64, 256), sample_size: int = 1 << 16) -> list:
    """Palette k-means: FAISS (nkcodec) vs scikit-learn on the same pixel subsample.

    Both fit on the same seeded subsample; PSNR is over all pixels of each image
    with uint8-rounded centroids.  ``palette_fit`` (the codec path: FAISS on the
    subsample, then 2 Lloyd steps over all pixels) is reported too.
    """
    from .. import metrics
    from ..coding import kmeans

    try:
        from sklearn.cluster import KMeans
    except ImportError:  # the peer lives in the "test" extra
        KMeans = None
    kmeans.fit(np.random.default_rng(0).random((512, 3), dtype=np.float32), 4)  # load FAISS
    rows = []
    for k in ks:
        t_f = t_s = t_p = 0.0
        ps_f, ps_s, ps_p = [], [], []
        pix_total = 0
        for im in images.values():
            pix = im.reshape(-1, 1 if im.ndim == 2 else im.shape[2]).astype(np.float32)
            sample = kmeans.subsample(pix, sample_size, 0)
            pix_total += sample.shape[0]

            def score(c):
                c8 = np.clip(np.round(c), 0, 255).astype(np.float32)
                return metrics.psnr(pix, c8[kmeans.assign(pix, c8)])

            t0 = time.perf_counter()
            c = kmeans.fit(sample, k)
            t_f += time.perf_counter() - t0
            ps_f.append(score(c))
            t0 = time.perf_counter()
            pal = kmeans.palette_fit(im, k)
            t_p += time.perf_counter() - t0
            ps_p.append(score(pal))
            if KMeans is not None:
                t0 = time.perf_counter()
                c = KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=0).fit(sample).cluster_centers_
                t_s += time.perf_counter() - t0
                ps_s.append(score(c))
        peer = "scikit-learn KMeans (same subsample)" if KMeans is not None else None
        extra = {"data": f"{len(images)} images, k={k}", "k": k, "psnr": float(np.mean(ps_f))}
        if KMeans is not None:
            extra["peer_psnr"] = float(np.mean(ps_s))
        rows.append(_row("kmeans.fit", t_f, pix_total, "MPix/s", peer, t_s if KMeans else None, **extra))
        rows.append(_row("palette.fit", t_p, pix_total, "MPix/s", data=extra["data"], k=k, psnr=float(np.mean(ps_p))))
    return rows


def _kmeans_all_pixels_rows(images: dict, ks=(16, 64, 256)) -> list:
    """The codec's palette path (FAISS on a subsample + 2 Lloyd steps over all pixels,
    then labelling every pixel) against scikit-learn fitted on *all* pixels."""
    from sklearn.cluster import KMeans

    from .. import metrics
    from ..coding import kmeans

    kmeans.fit(np.random.default_rng(0).random((512, 3), dtype=np.float32), 4)
    rows = []
    for k in ks:
        t_n = t_s = 0.0
        ps_n, ps_s = [], []
        pix_total = 0
        for im in images.values():
            pix = im.reshape(-1, 1 if im.ndim == 2 else im.shape[2])
            pix_total += pix.shape[0]
            t0 = time.perf_counter()
            pal = kmeans.palette_fit(im, k)
            lab = kmeans.palette_apply(im, pal)
            t_n += time.perf_counter() - t0
            ps_n.append(metrics.psnr(im, pal[lab]))
            t0 = time.perf_counter()
            km = KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=0).fit(pix.astype(np.float32))
            t_s += time.perf_counter() - t0
            c8 = np.clip(np.round(km.cluster_centers_), 0, 255).astype(np.uint8)
            ps_s.append(metrics.psnr(im, c8[km.labels_].reshape(im.shape)))
        extra = {"data": f"{len(images)} images, k={k}", "k": k, "psnr": float(np.mean(ps_n)), "peer_psnr": float(np.mean(ps_s))}
        rows.append(_row("palette.fit+apply", t_n, pix_total, "MPix/s", "scikit-learn KMeans (all pixels)", t_s, **extra))
    return rows


def _codec_rows(images: dict, repeats: int, quality: int = 4) -> list:
    """Autoencoder stages and the whole learned codec vs Pillow JPEG and WebP."""
    from .. import zoo
    from ..batch import default_batch_size, default_lanes, default_workers
    from ..codec import Codec, decompress
    from ..coding import context

    rgb = {k: v for k, v in images.items() if v.ndim == 3 and v.shape[2] == 3}
    pix = sum(im.shape[0] * im.shape[1] for im in rgb.values())
    m = zoo.load_model()
    codec = Codec(quality, "default")
    lat = {k: m.encode_latent(im, quality) for k, im in rgb.items()}  # warm-up / compile
    ct = m.context_tables(quality)  # the default preset's entropy stage
    coded = {k: context.code_latent(ct, y) for k, y in lat.items()}
    streams = {k: codec.encode(im) for k, im in rgb.items()}
    # the same weights with the float64 exact synthesis (fixed-point v1), where the default has a twin
    m64 = zoo.load_model(zoo.EXACT32_VARIANTS[m.name][0]) if m.name in zoo.EXACT32_VARIANTS else None
    for y, im in zip(lat.values(), rgb.values()):
        m.decode_latent(y, quality, im.shape[:2])
        m.decode_latent_float32(y, quality, im.shape[:2])
        if m64 is not None:
            m64.decode_latent(y, quality, im.shape[:2])
    streams64 = {k: Codec(quality, "default", model=m64.name).encode(im) for k, im in rgb.items()} if m64 else {}

    def run(fn):
        return lambda: [fn(k) for k in rgb]

    threads = cpu_count()

    def run_threads(fn):  # the peers in as many threads as the cores the batched pipeline uses, every image twice
        from concurrent.futures import ThreadPoolExecutor

        def go():
            with ThreadPoolExecutor(threads) as ex:
                return list(ex.map(fn, list(rgb) * 2))

        return go

    def batched(coding, items):  # the batched pipeline over every image twice (so it runs full)
        return lambda: list(coding(list(items) * 2))

    t = {
        "analysis": measure(run(lambda k: m.encode_latent(rgb[k], quality)), repeats=repeats),
        "entropy.encode": measure(run(lambda k: context.code_latent(ct, lat[k])), repeats=repeats),
        "entropy.decode": measure(
            run(lambda k: context.decode_latent(ct, coded[k][0], coded[k][1], lat[k].shape[:2])),
            repeats=repeats,
        ),
        "synthesis": measure(run(lambda k: m.decode_latent(lat[k], quality, rgb[k].shape[:2])), repeats=repeats),
        "encode": measure(run(lambda k: codec.encode(rgb[k])), repeats=repeats),
        "decode": measure(run(lambda k: decompress(streams[k])), repeats=repeats),
        "encode.batched": measure(batched(codec.encode_many, rgb.values()), repeats=repeats) / 2,
        "decode.batched": measure(batched(codec.decode_many, streams.values()), repeats=repeats) / 2,
        "synthesis.float32": measure(run(lambda k: m.decode_latent_float32(lat[k], quality, rgb[k].shape[:2])), repeats=repeats),
    }
    if m64 is not None:
        t["synthesis.float64"] = measure(run(lambda k: m64.decode_latent(lat[k], quality, rgb[k].shape[:2])), repeats=repeats)
        t["decode.float64"] = measure(run(lambda k: decompress(streams64[k])), repeats=repeats)
    peers = {}
    for name, fmt, q in (("webp", "WEBP", 75), ("jpeg", "JPEG", 75)):
        enc, dec = pillow_codec(fmt, q)
        data = {k: enc(im) for k, im in rgb.items()}
        peers[name] = (measure(run(lambda k: enc(rgb[k])), repeats=repeats), measure(run(lambda k: dec(data[k])), repeats=repeats))
        peers[name + ".batched"] = tuple(measure(run_threads(f), repeats=repeats) / 2 for f in (lambda k: enc(rgb[k]), lambda k: dec(data[k])))
    # CPU seconds of each stage, one image at a time: what the cores can overlap at best
    cpu = {
        "analysis": cpu_seconds(run(lambda k: m.encode_latent(rgb[k], quality))),
        "entropy.encode": cpu_seconds(run(lambda k: context.code_latent(ct, lat[k]))),
        "entropy.decode": cpu_seconds(run(lambda k: context.decode_latent(ct, coded[k][0], coded[k][1], lat[k].shape[:2]))),
        "synthesis": cpu_seconds(run(lambda k: m.decode_latent(lat[k], quality, rgb[k].shape[:2]))),
    }
    info = {"data": f"{len(rgb)} RGB images, q{quality}"}
    syn = {"synthesis": m.synthesis, "float32_throughput": pix / t["synthesis.float32"] / 1e6, **info}
    rows = [
        _row("autoencoder.analysis", t["analysis"], pix, "MPix/s", **info),
        _row("autoencoder.synthesis", t["synthesis"], pix, "MPix/s", **syn),
        _row("entropy.encode", t["entropy.encode"], pix, "MPix/s", **info),
        _row("entropy.decode", t["entropy.decode"], pix, "MPix/s", **info),
    ]
    parts = {"encode": ("analysis", "entropy.encode"), "decode": ("entropy.decode", "synthesis")}
    # one image at a time (with each stage's share), then the batched pipeline (as the CLI runs), peers in threads
    for suffix, key in (("", ""), (".batched", ".batched")):
        for d, idx in (("encode", 0), ("decode", 1)):
            total = t[d + key]
            if not suffix:
                extra = {"share": {p: t[p] / total for p in parts[d]}, **info}
            else:
                nets, ent = t["analysis" if d == "encode" else "synthesis"], t[f"entropy.{d}"]
                cpu_work = sum(cpu[p] for p in parts[d]) / threads
                extra = {
                    "data": info["data"] + f", peers in {threads} threads",
                    "speedup": t[d] / total,
                    # the bound: the stages overlapped perfectly, each as fast as alone
                    "overlap_bound": (nets + ent) / max(nets, ent),
                    # and with the cores counted: the stages' CPU seconds spread over every core
                    "cpu_bound": t[d] / max(nets, ent, cpu_work),
                    "share": {p: cpu[p] / sum(cpu[q] for q in parts[d]) for p in parts[d]},
                    "options": {"batch_size": default_batch_size(), "lanes": default_lanes(), "workers": default_workers()},
                }
            jpeg = pix / peers["jpeg" + key][idx] / 1e6
            rows.append(_row(f"codec.{d}{suffix}", total, pix, "MPix/s", "Pillow WebP q75", peers["webp" + key][idx], jpeg_throughput=jpeg, **extra))
    if m64 is not None:  # the exact float32 path against the float64 one, same weights, same run
        peer = f"{m64.name}: {m64.synthesis}"
        rows.append(_row("exact.synthesis", t["synthesis"], pix, "MPix/s", peer, t["synthesis.float64"], model=m.name, **syn))
        rows.append(_row("exact.decode", t["decode"], pix, "MPix/s", peer, t["decode.float64"], model=m.name, **info))
    return rows


def _machine() -> dict:
    import jax
    import numba

    from ..batch import device_name

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "jax": jax.__version__,
        "jax_device": str(jax.devices()[0]),
        "device": device_name(),
    }


def _print_table(rows: list) -> None:
    print(f"{'stage':<20} {'data':<26} {'throughput':>14} {'peer':>14}  {'x peer':>6}  peer name")
    for r in rows:
        peer = r["peer_throughput"]
        ratio = f"{r['throughput'] / peer:6.2f}" if peer else "     -"
        peer_s = f"{peer:10.1f} {r['unit']:<4}" if peer else " " * 15
        print(f"{r['stage']:<20} {r.get('data', ''):<26} {r['throughput']:8.1f} {r['unit']:<5} {peer_s}  {ratio}  {r['peer'] or ''}")


def run_bench(images=None, json_path=None, quick: bool = False, stages=("rle", "kmeans", "codec")) -> dict:
    """Run every stage benchmark, print a table, optionally write JSON."""
    imgs = folder_images(images) if images else sample_images()
    repeats = 3 if quick else 7
    n = 1_000_000 if quick else 10_000_000
    rows = []
    if "rle" in stages:
        stream = synthetic_stream(n)
        rows += _rle_rows(f"synthetic int16 {n / 1e6:g}M", stream, repeats)
        planes = [np.moveaxis(im.reshape(im.shape[0], im.shape[1], -1), 2, 0).reshape(-1) for im in imgs.values()]
        rows += _rle_rows("image planes uint8", np.concatenate(planes), repeats)
        rows += _lossless_rows(imgs, repeats)
    if "kmeans" in stages:
        rows += _kmeans_rows(imgs, (16,) if quick else (16, 64, 256))
    if "kmeans-all-pixels" in stages:
        rows += _kmeans_all_pixels_rows(imgs)
    if "codec" in stages:
        rows += _codec_rows(imgs, repeats)
    e2e = {r["stage"]: r for r in rows if r["stage"].startswith(("codec.", "rle-preset"))}
    result = {"machine": _machine(), "stages": rows, "end_to_end": e2e}
    print(f"device: {result['machine']['device']}")
    _print_table(rows)
    for r in rows:
        if r["stage"].startswith(("kmeans.fit", "palette.fit+")) and "peer_psnr" in r:
            print(f"k-means {r['data']}: PSNR {r['psnr']:.3f} dB (FAISS) vs {r['peer_psnr']:.3f} dB (scikit-learn)")
        if r["stage"] == "palette.fit":
            print(f"palette.fit {r['data']}: PSNR {r['psnr']:.3f} dB, {r['seconds']:.3f} s")
        if r["stage"].startswith("codec."):
            shares = ", ".join(f"{k} {v:.0%}" for k, v in r.get("share", {}).items())
            print(
                f"{r['stage']}: {r['throughput']:.2f} MPix/s vs WebP {r['peer_throughput']:.2f}, JPEG {r['jpeg_throughput']:.2f}"
                + (f"; time share: {shares}" if shares else "")
            )
            if "speedup" in r:
                print(
                    f"  {r['speedup']:.2f}x one image at a time; bounds: overlap {r['overlap_bound']:.2f}x, "
                    f"cores {r['cpu_bound']:.2f}x ({', '.join(f'{k}={v}' for k, v in r['options'].items())})"
                )
        if r["stage"] == "rle.pack":
            cost = r["packed_bytes"] / r["plain_key_bytes"] - 1
            print(f"squared keys on {r['data']}: {r['packed_bytes']} bytes packed vs {r['plain_key_bytes']} with plain keys ({cost:+.1%})")
    from .evaluate import write_json

    write_json(result, json_path)
    return result
