"""Probe for issue 27: would a change to version 5's coder pay?  Each variant is the source
of ``nkcodec/coding/nearlossless_v2.py`` (the compiled kernel) with a few lines replaced,
compiled on its own, and run as the encoder on the 20 held-out training photos reduced 2x
(the photos ``fit_lossless_prior.py`` leaves out; never Kodak), lossless, with version 5's
layout, mode and prior.  It prints each variant's bytes against the unchanged kernel's:

    python benchmarks/lossless_variants.py                 # every variant
    python benchmarks/lossless_variants.py mix2_tex ols    # some

The variants are what ``docs/lossless.md`` reports under "Tried after version 5 and
dropped".  A variant whose lines are no longer in the source stops with their text: the
kernel has changed since, and the probe with it.  ``blend_c`` chooses per tile among the
blend constants 4, 16 and 64 (an encoder's choice), on the photos and on Kodak.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

from nkcodec.coding import nearlossless_v2 as v2
from nkcodec.coding import nearlossless_v4 as v4
from nkcodec.coding import nearlossless_v5 as v5

_SRC = Path(v2.__file__).read_text()
_TMP = []  # the folder of the variants' modules, made on the first build


def build(name: str, edits: list):
    """The kernel's module with ``edits`` ((old, new) texts) applied, imported from a temporary file."""
    s = _SRC.replace("from ..", "from nkcodec.").replace("from .nearlossless_v1", "from nkcodec.coding.nearlossless_v1")
    s = s.replace("cache=True", "cache=False")
    for old, new in edits:
        if old not in s:
            raise SystemExit(f"variant {name}: the kernel no longer has\n{old}")
        s = s.replace(old, new)
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="nkcodec-variants-"))
    path = Path(_TMP[0]) / f"variant_{name}.py"
    path.write_text(s)
    spec = importlib.util.spec_from_file_location(f"variant_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tile_bytes(mod, tile: np.ndarray) -> int:
    lay = v4.tile_layout(tile)
    probs, wts = v4._state(lay, 3, 8, 0, v5.CODER)
    buf = np.empty(tile.size * 2 + 1024, np.uint8)
    cfg = np.array([255, 8, 0, 0], np.int64)
    n = mod.kernel(5)(tile, np.empty_like(tile), lay, cfg, v2._steps(3, 0), buf, mod._TABLES, probs.copy(), wts.copy(), True, v5.LMS)
    assert n > 0
    return n


def sizes(mod, tiles: list) -> np.ndarray:
    tile_bytes(mod, tiles[0][:8, :8].copy())  # compile
    with cf.ThreadPoolExecutor(2) as ex:
        return np.array(list(ex.map(lambda t: tile_bytes(mod, t), tiles)))


def photo_tiles(folder: Path) -> list:
    sys.path.insert(0, str(Path(__file__).parent))
    from fit_lossless_prior import halved

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ims = [halved(p) for i, p in enumerate(files) if i % 20 == 0]
    return [np.ascontiguousarray(im[t]) for im in ims for t in v2.tiles(*im.shape[:2])]


# --- the variants -------------------------------------------------------------------------

_SIG = ("stt, sts, ctx", "stt, sts, apm, ctx")


def _apm(index: str, rows: str) -> list:
    """An APM after the mixer: 33 interpolated buckets of the mixed logit per context ``index``, output averaged 1:3 with the mixer's."""
    return [
        _SIG,
        (
            "    sts = np.zeros(nm, np.int64)\n",
            f"    sts = np.zeros(nm, np.int64)\n    apm = np.empty(({rows}, 33), np.int64)\n    for j in range(33):\n        apm[:, j] = sq[min(j * 128, 4095)] << 4\n",
        ),
        (
            "    p12 = sq[dot + 2048]\n    p = p12 << 4\n",
            f"    p12 = sq[dot + 2048]\n    aj = (dot + 2048) >> 7\n    fr = (dot + 2048) & 127\n    ai = {index}\n"
            "    pa = (apm[ai, aj] * (128 - fr) + apm[ai, aj + 1] * fr) >> 7\n    p = ((p12 << 4) + 3 * pa) >> 2\n",
        ),
        (
            "    e = ((bit << 12) - p12) * _MIX_RATE\n",
            "    e = ((bit << 12) - p12) * _MIX_RATE\n    tg = bit << 16\n"
            "    apm[ai, aj] += ((tg - apm[ai, aj]) * (128 - fr)) >> 13\n    apm[ai, aj + 1] += ((tg - apm[ai, aj + 1]) * fr) >> 13\n",
        ),
    ]


def _mix2(k2: str, n2: int) -> list:
    """A second mixer, its weight set chosen by ``k2`` (n2 values per channel); the two logits averaged, each mixer trained on its own error."""
    return [
        (
            "def _bit(st, buf, probs, wts, sq, stt, sts, ctx, off, ws, bit, enc, nm):",
            "def _bit(st, buf, probs, wts, sq, stt, sts, ctx, off, ws, dws, bit, enc, nm):",
        ),
        ("    dot = 0\n    for k in range(nm):\n        sk = stt", "    dot = 0\n    dot2 = 0\n    for k in range(nm):\n        sk = stt"),
        (
            "        dot += wts[ws, k] * sk\n    dot >>= 16\n",
            "        dot += wts[ws, k] * sk\n        dot2 += wts[ws + dws, k] * sk\n    d1 = min(max(dot >> 16, -2047), 2047)\n"
            "    d2 = min(max(dot2 >> 16, -2047), 2047)\n    dot = (dot + dot2) >> 17\n",
        ),
        (
            "    e = ((bit << 12) - p12) * _MIX_RATE\n",
            "    e = ((bit << 12) - sq[d1 + 2048]) * _MIX_RATE\n    e2 = ((bit << 12) - sq[d2 + 2048]) * _MIX_RATE\n",
        ),
        ("        wts[ws, k] += (sts[k] * e) >> 13\n", "        wts[ws, k] += (sts[k] * e) >> 13\n        wts[ws + dws, k] += (sts[k] * e2) >> 13\n"),
        (
            "def _value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, a, neg, enc, mb, nm):",
            "def _value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, dws, a, neg, enc, mb, nm):",
        ),
        ("wbase + j, more", "wbase + j, dws, more"),
        ("wbase + nb, 0", "wbase + nb, dws, 0"),
        ("wbase + mb, neg", "wbase + mb, dws, neg"),
        ("wbase + mb + 1 + (j == nb - 2), ", "wbase + mb + 1 + (j == nb - 2), dws, "),
        ("_value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, abs(qe)", "_value(st, buf, probs, wtx, sq, stt, sts, ctx, wbase, dws, abs(qe)"),
        ("_value(st, buf, probs, wts, sq, stt, sts, ctx, wbase, 0, 0, False", "_value(st, buf, probs, wtx, sq, stt, sts, ctx, wbase, dws, 0, 0, False"),
        (
            "                ctx[2] = (c * _CTX3 + d3) * blk\n",
            f"                ctx[2] = (c * _CTX3 + d3) * blk\n                dws = rw0 + (c * {n2} + ({k2})) * wsets - wbase\n",
        ),
        (
            "    st = np.zeros(5, np.int64)\n",
            f"    st = np.zeros(5, np.int64)\n    rw0 = wts.shape[0]\n    wtx = np.empty((rw0 + rec.shape[2] * {n2} * wsets, nm), np.int64)\n    wtx[:rw0] = wts\n"
            f"    for cc in range(rec.shape[2]):\n        for kk in range({n2}):\n"
            f"            wtx[rw0 + (cc * {n2} + kk) * wsets : rw0 + (cc * {n2} + kk + 1) * wsets] = wts[(cc * _WGROUPS + 1) * wsets : (cc * _WGROUPS + 2) * wsets]\n",
        ),
    ]


def _lms_inputs(lines: list) -> list:
    """More LMS inputs: ``lines`` set lu[8], lu[9], ... (12-space indented code)."""
    body = "".join(f"                    {ln}\n" for ln in lines)
    extra = sum(ln.startswith("lu[") for ln in lines)
    return [
        ("_LMS_TAPS = 8 + NUM_SUB", f"_LMS_TAPS = {8 + extra} + NUM_SUB"),
        ("                    lu[7] = 8\n                    nu = 8\n", f"                    lu[7] = 8\n{body}                    nu = {8 + extra}\n"),
    ]


_PREV4 = [
    "lu[8] = err[prev, py - 1, px] if cr else 0",
    "lu[9] = err[prev, py, px - 1] if cr else 0",
    "lu[10] = err[prev, py + 1, px] if cr and y + 1 < h else 0",
    "lu[11] = err[prev, py, px + 1] if cr else 0",
]
_FAR = [
    "lu[8] = 8 * v_[py - 2, px - 1] - p if y > 1 and x > 0 else 0",
    "lu[9] = 8 * v_[py - 2, px + 1] - p if y > 1 and x + 1 < w else 0",
    "lu[10] = 8 * v_[py - 1, px - 2] - p if y > 0 and x > 1 else 0",
    "lu[11] = 8 * v_[py - 1, px + 2] - p if y > 0 and x + 2 < w else 0",
    "lu[12] = 8 * v_[py, px - 3] - p if x > 2 else 0",
]
_STEP7 = [("f = (se << (44 - lms)) // nrm", "f = (se << (45 - lms)) // nrm")]

_OLS = '''

_OFFS = np.array([(-1, 0), (0, -1), (-1, -1), (-1, 1), (-2, 0), (0, -2), (-2, 1), (-2, -1), (-1, -2), (-1, 2), (0, -3), (-3, 0)], np.int64)


@numba.njit(cache=False, nogil=True)
def _ols(v_, y, x, w, r):
    """Least-squares prediction (x8) of plane value (y, x) from 12 neighbours, fitted over
    the r rows above and r columns either side (ridge 1); -999999 where it has none."""
    n = len(_OFFS)
    a_ = np.zeros((n, n))
    b_ = np.zeros(n)
    vv = np.zeros(n)
    cnt = 0
    for yy in range(max(0, y - r), y + 1):
        for xx in range(max(0, x - r), min(w, x + r + 1)):
            if yy == y and xx >= x:
                break
            ok = True
            for k in range(n):
                a, c = yy + _OFFS[k, 0], xx + _OFFS[k, 1]
                if a < 0 or c < 0 or c >= w:
                    ok = False
                    break
                vv[k] = v_[a + 2, c + 2]
            if not ok:
                continue
            t = v_[yy + 2, xx + 2]
            for i in range(n):
                b_[i] += vv[i] * t
                for j in range(n):
                    a_[i, j] += vv[i] * vv[j]
            cnt += 1
    for k in range(n):
        a, c = y + _OFFS[k, 0], x + _OFFS[k, 1]
        if a < 0 or c < 0 or c >= w or cnt <= 2 * n:
            return -999999
        vv[k] = v_[a + 2, c + 2]
    for i in range(n):
        a_[i, i] += 1.0
    sol = np.linalg.solve(a_, b_)
    p = 0.0
    for k in range(n):
        p += sol[k] * vv[k]
    return int(round(8 * p))

'''


def _counted(n0: int, top: int) -> list:
    """Every probability counts its updates and moves by 1/(n + 2) of the way to the bit, n starting at ``n0`` and
    stopping at ``top`` (version 5: a fixed 1/32), so a context learns fast while it is new, then settles."""
    return [
        ("_bit(st, buf, probs, wts,", "_bit(st, buf, probs, cnt, wts,"),
        ("_value(st, buf, probs, wts,", "_value(st, buf, probs, cnt, wts,"),
        ("    sub = np.zeros(NUM_SUB, np.int64)\n", f"    sub = np.zeros(NUM_SUB, np.int64)\n    cnt = np.zeros(probs.shape, np.uint8)\n    cnt[:] = {n0}\n"),
        (
            "        if bit:\n            probs[k, i] = q + ((_ONE - q) >> _RATE)\n        else:\n            probs[k, i] = q - (q >> _RATE)\n",
            "        n = np.int64(cnt[k, i])\n        if bit:\n            probs[k, i] = q + (_ONE - q) // (n + 2)\n        else:\n"
            f"            probs[k, i] = q - q // (n + 2)\n        if n < {top}:\n            cnt[k, i] = n + 1\n",
        ),
    ]


VARIANTS = {
    "apm_wset": _apm("ws", "wts.shape[0]"),
    "apm_activity": _apm("ctx[0] + off", "probs.shape[1]"),
    "apm_errors": _apm("ctx[2] + off", "probs.shape[1]"),
    "mix2_errors": _mix2("min(q_[py, px - 1] >> qsh, 3) * 4 + min(q_[py - 1, px] >> qsh, 3)", 16),
    "mix2_tex": _mix2("tex", 64),
    "mix2_best": _mix2("mbins[min(smin, _ACT_TABLE - 1)]", 24),
    "lms_prev4": _lms_inputs(_PREV4),
    "lms_far": _lms_inputs(_FAR),
    "lms_far_step7": _lms_inputs(_FAR) + _STEP7,
    "ols": _lms_inputs(["po = _ols(v_, y, x, w, 6)", "lu[8] = po - p if po != -999999 else 0"]) + [("_NM = _MODELS  # what", _OLS + "\n_NM = _MODELS  # what")],
    "counted_2_128": _counted(0, 126),
    "counted_16_128": _counted(14, 126),
    "counted_16_64": _counted(14, 62),
    "counted_16_256": _counted(14, 254),
    # every input above that paid, together: the far neighbours and least squares as LMS inputs, counted updates
    "together": _lms_inputs(_FAR + ["po = _ols(v_, y, x, w, 6)", "lu[13] = po - p if po != -999999 else 0"])
    + [("_NM = _MODELS  # what", _OLS + "\n_NM = _MODELS  # what")]
    + _counted(14, 126),
    "blend_c": None,  # per tile, the best of three blend constants (below)
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", help=f"which (default: all): {', '.join(VARIANTS)}")
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"), help="the training photos")
    ap.add_argument("--kodak", type=Path, default=Path("../shared/data/kodak"), help="Kodak (blend_c only, reported, not tuned on)")
    args = ap.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"no variant {', '.join(unknown)}; there are {', '.join(VARIANTS)}")
    tiles = photo_tiles(args.train)
    base = sizes(build("base", []), tiles)
    print(f"{'unchanged':16s} {int(base.sum()):9d} bytes on {len(tiles)} tiles of 20 held-out photos", flush=True)
    for name in args.variants or list(VARIANTS):
        if name == "blend_c":
            from PIL import Image

            kodak = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(args.kodak.glob("*.png"))]
            ktiles = [np.ascontiguousarray(im[t]) for im in kodak for t in v2.tiles(*im.shape[:2])]
            mods = {c: build(f"c{c}", [("return (1 << 32) // ((s + 4) * (s + 4))", f"return (1 << 32) // ((s + {c}) * (s + {c}))")]) for c in (4, 16, 64)}
            for label, ts in (("photos", tiles), ("Kodak", ktiles)):
                got = {c: sizes(m, ts) for c, m in mods.items()}
                best = np.minimum.reduce(list(got.values()))
                each = ", ".join(f"c={c} {100 * (g.sum() / got[4].sum() - 1):+.3f}%" for c, g in got.items())
                print(f"{'blend_c':16s} {label}: {each}; the best per tile {100 * (best.sum() / got[4].sum() - 1):+.3f}%", flush=True)
            continue
        got = sizes(build(name, VARIANTS[name]), tiles)
        print(f"{name:16s} {int(got.sum()):9d} {100 * (got.sum() / base.sum() - 1):+.3f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
