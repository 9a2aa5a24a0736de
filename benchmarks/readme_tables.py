"""Print the measured tables of docs/results.md (Markdown) from the committed result files.

Run after ``eval``, ``eval --ablation``, ``eval --lossless`` and ``bench`` have rewritten the JSON
files in ``benchmarks/results/``; paste the output into docs/results.md::

    python benchmarks/readme_tables.py [rd|effort|ablation|lossless|bench|bench-kodak|exact ...]

Nothing here measures anything: it only formats what the commands wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _per_setting(curves: dict, label, cells) -> list:
    """One Markdown row per (curve, setting): name, ``label(name, setting)``, ``cells(results, i)``."""
    rows = []
    for name, c in curves.items():
        settings = json.loads(c["settings"]) if isinstance(c["settings"], str) else c["settings"]
        rows += [f"| {name} | {label(name, s)} | " + " | ".join(cells(c["results"], i)) + " |" for i, s in enumerate(settings)]
    return rows


def rd_tables(path: str = "eval_kodak.json") -> str:
    d = _load(path)
    out = ["| codec | setting | bpp | PSNR dB | MSE | CR | enc MPix/s | dec MPix/s |", "|---|---|---|---|---|---|---|---|"]
    out += _per_setting(
        d["curves"],
        lambda name, s: s,
        lambda r, i: [
            f"{r['bpp'][i]:.3f}",
            f"{r['psnr'][i]:.2f}",
            f"{r['mse'][i]:.2f}",
            f"{r['cr'][i]:.1f}",
            f"{r['enc_mpix_s'][i]:.1f}",
            f"{r['dec_mpix_s'][i]:.1f}",
        ],
    )
    out += ["", "| codec | BD-rate vs JPEG (optimize=True) | BD-rate vs WebP |", "|---|---|---|"]
    for name, b in d["bd_rate"].items():
        out.append(f"| {name} | {b['vs_jpeg']:+.1f}% | {b['vs_webp']:+.1f}% |")
    for name, b in d.get("published_bd_rate", {}).items():  # published curves against this run's JPEG and WebP
        out.append(f"| {name} (published) | {b['vs_jpeg']:+.1f}% | {b['vs_webp']:+.1f}% |")
    vs = d.get("bd_rate_vs_published", {})
    if vs:
        names = list(next(iter(vs.values())))
        out += ["", "| BD-rate of | " + " | ".join(f"vs {n}" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
        out += [f"| {c} | " + " | ".join(f"{b[n]:+.1f}%" for n in names) + " |" for c, b in vs.items()]
    return "\n".join(out)


def ablation_tables(path: str = "ablation_kodak.json") -> str:
    d = _load(path)
    curves, bd = d["curves"], d["bd_rate_vs_jpeg"]
    cols = [c for c in ("paper", "scalar-rle", "scalar", "context", "cluster") if c in curves]
    out = ["| quality | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i in range(8):
        cells = [f"{curves[c]['results']['bpp'][i]:.3f} / {curves[c]['results']['psnr'][i]:.2f}" for c in cols]
        out.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    out.append("| BD-rate vs JPEG | " + " | ".join(f"{bd[c]:+.1f}%" for c in cols) + " |")
    out += ["", "| quality | estimated bpp (prior) | real bpp (scalar) | PSNR dB |", "|---|---|---|---|"]
    for q, m in d["model_table"].items():
        out.append(f"| {q} | {m['est_bpp']:.4f} | {m['bpp']:.4f} | {m['psnr']:.2f} |")
    out += ["", "| latent (all 24 images) | NK-RLE bytes, key = run² | key = run | cost of squaring |", "|---|---|---|---|"]
    for q, (nk, plain) in d["key_cost"].items():
        out.append(f"| quality {q} | {nk} | {plain} | {100 * (nk / plain - 1):+.1f}% |")
    return "\n".join(out)


def effort_table(path: str = "eval_kodak_effort.json") -> str:
    d = _load(path)
    c0, c1 = d["curves"]["nkcodec"]["results"], d["curves"]["nkcodec-effort-1"]["results"]
    out = ["| quality | effort 0: bpp / dB | effort 1: bpp / dB | enc MPix/s (0 / 1) |", "|---|---|---|---|"]
    for i in range(len(c0["bpp"])):
        out.append(
            f"| {i + 1} | {c0['bpp'][i]:.3f} / {c0['psnr'][i]:.2f} | {c1['bpp'][i]:.3f} / {c1['psnr'][i]:.2f} "
            f"| {c0['enc_mpix_s'][i]:.2f} / {c1['enc_mpix_s'][i]:.2f} |"
        )
    bd = d["bd_rate"]
    out.append(
        f"| BD-rate vs JPEG / WebP | {bd['nkcodec']['vs_jpeg']:+.1f}% / {bd['nkcodec']['vs_webp']:+.1f}% "
        f"| {bd['nkcodec-effort-1']['vs_jpeg']:+.1f}% / {bd['nkcodec-effort-1']['vs_webp']:+.1f}% | |"
    )
    return "\n".join(out)


def lossless_table(path: str = "lossless_kodak.json") -> str:
    d = _load(path)
    out = ["| codec | setting | CR | bpp | PSNR dB | max error | enc MPix/s | dec MPix/s |", "|---|---|---|---|---|---|---|---|"]
    labels = {
        "near-lossless": "max_error={}",
        "near-lossless-base6": "max_error={}, learned base q6 (version 1)",
        "near-lossless-effort-1": "max_error={}, effort=1",
        "near-lossless-effort-2": "max_error={}, effort=2",
        "palette": "k={}",
        "rle": "",
        "png": "Pillow default",
        "webp-lossless": "Pillow default",
        "jpegxl-lossless": "effort 7 (imagecodecs)",
        "jpeg-ls": "near={} (CharLS, imagecodecs)",
    }
    out += _per_setting(
        d["curves"],
        lambda name, s: labels.get(name, "{}").format(s),
        lambda r, i: [
            f"{r['cr'][i]:.3f}",
            f"{r['bpp'][i]:.2f}",
            f"{r['psnr'][i]:.2f}",
            str(r["max_err"][i]),
            f"{r['enc_mpix_s'][i]:.2f}",
            f"{r['dec_mpix_s'][i]:.2f}",
        ],
    )
    return "\n".join(out)


def bench_table(path: str = "bench_samples.json") -> str:
    d = _load(path)
    out = ["| stage | data | throughput | peer | peer throughput | x peer | notes |", "|---|---|---|---|---|---|---|"]
    for s in d["stages"]:
        peer = s.get("peer") or "-"
        pt = s.get("peer_throughput")
        ratio = f"{s['throughput'] / pt:.2f}" if pt else ""
        notes = []
        if "packed_bytes" in s:
            notes.append(f"packed {s['packed_bytes']} B vs {s['plain_key_bytes']} B plain keys")
        if "peer_ratio" in s:
            notes.append(f"CR {s['ratio']:.2f} vs PNG {s['peer_ratio']:.2f}")
        if "psnr" in s:
            notes.append(f"PSNR {s['psnr']:.3f} dB" + (f" vs {s['peer_psnr']:.3f}" if "peer_psnr" in s else ""))
        if "share" in s:
            notes.append("share " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in s["share"].items()))
        if "jpeg_throughput" in s:
            notes.append(f"JPEG {s['jpeg_throughput']:.1f}")
        if "speedup" in s:
            notes.append(f"{s['speedup']:.2f}x one at a time; bounds: overlap {s['overlap_bound']:.2f}x, cores {s['cpu_bound']:.2f}x")
        out.append(
            f"| {s['stage']} | {s.get('data', '')} | {s['throughput']:.1f} {s['unit']} | {peer} | {pt:.1f} | {ratio} | {'; '.join(notes)} |"
            if pt
            else f"| {s['stage']} | {s.get('data', '')} | {s['throughput']:.1f} {s['unit']} | {peer} |  |  | {'; '.join(notes)} |"
        )
    return "\n".join(out)


def exact_table(path: str = "exact_precision_kodak.json") -> str:
    d = _load(path)
    out = [
        "| quality | bpp | float32 synthesis dB | exact float32 (v2) | worst image | exact float64 (v1) |",
        "|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        out.append(
            f"| {r['quality']} | {r['bpp']:.4f} | {r['psnr_float32']:.3f} | {r['delta_db_exact32']:+.4f} dB "
            f"| {r['worst_image_delta_db_exact32']:+.4f} dB | {r['delta_db_float64']:+.4f} dB |"
        )
    b = d["bd_rate_vs_float32"]
    out.append(f"| BD-rate vs float32 | | | {b['exact32']:+.2f}% | | {b['float64']:+.2f}% |")
    return "\n".join(out)


def main(argv: list) -> int:
    which = argv or ["rd", "effort", "ablation", "lossless", "bench", "bench-kodak", "exact"]
    makers = {
        "rd": rd_tables,
        "effort": effort_table,
        "ablation": ablation_tables,
        "lossless": lossless_table,
        "bench": bench_table,
        "bench-kodak": lambda: bench_table("bench_codec_kodak.json"),
        "exact": exact_table,
    }
    for w in which:
        print(f"<!-- {w} -->")
        print(makers[w]())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
