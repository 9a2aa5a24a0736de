"""Probe for issue 27's encoder effort: would choosing each tile's context shifts by
trying them pay?  Version 4 already signals an activity shift and an error shift per
tile (chosen by a rule from the tile's range, ``nearlossless_v4._shifts``), so a search
would need no format change.  Per tile, every (activity, error) shift within 2 of the
rule's is tried, lossless, and the smallest kept:

* on the 16-bit MRI slices of ``eval --lossless --deep`` (one tile each, 1 channel);
* on 256x384 crops of 10 training photos, 8-bit RGB (never Kodak), with version 2's
  plane layout and with version 4's per-tile references.

    python benchmarks/lossless_shift_probe.py
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np

from nkcodec.coding import nearlossless_v2 as v2
from nkcodec.coding import nearlossless_v4 as v4


def _size(tile, lay, bits, ash, qsh, steps) -> int:
    cfg = np.array([(1 << bits) - 1, bits, ash, qsh], np.int64)
    buf = np.empty(tile.size * tile.itemsize * 3 + 1024, np.uint8)
    return int(v2._code_tile(tile, np.empty_like(tile), lay, cfg, steps, buf, v2._TABLES, *v4._state(lay, tile.shape[2], bits, qsh), True))


def _search(tile, lay, bits) -> tuple:
    """(bytes with the rule's shifts, fewest bytes over the grid)."""
    steps = v2._steps(tile.shape[2], 0)
    a0, q0 = v4._shifts(tile, bits, int(steps[0]))
    sizes = {
        (a, q): _size(tile, lay, bits, a, q, steps) for a in range(max(0, a0 - 2), min(bits, a0 + 2) + 1) for q in range(max(0, q0 - 2), min(bits, q0 + 2) + 1)
    }
    return sizes[(a0, q0)], min(sizes.values())


def main() -> int:
    from PIL import Image

    from nkcodec.tools.deep_data import deep_images

    rule = best = 0
    for im in deep_images().values():
        r, b = _search(np.ascontiguousarray(im[:, :, None]), np.array([[0, -1, -1]], np.int64), 16)
        rule, best = rule + r, best + b
    print(f"16-bit MRI slices: the rule's shifts {rule} bytes, the best per slice {best} ({best / rule - 1:+.2%})")
    train = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
    for name, layout in (("version 2's layout", lambda t: v2._layout(3)), ("version 4's references", v4.tile_layout)):
        rule = best = 0
        for f in sorted(glob.glob(str(train / "*.jpg")))[::40][:10]:
            tile = np.ascontiguousarray(np.asarray(Image.open(f).convert("RGB"))[:256, :384])
            r, b = _search(tile, layout(tile), 8)
            rule, best = rule + r, best + b
        print(f"8-bit training crops, {name}: the rule's shifts {rule} bytes, the best per tile {best} ({best / rule - 1:+.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
