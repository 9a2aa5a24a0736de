"""Flat blocks: the 8x8 blocks of an image whose every pixel has one colour, found by the
encoder (which has the original) and signalled, so that the decoder puts them back
exactly over the nets' output.  The learned transforms ring and tint around constant
regions (a black image came back with errors of 21); with this, a constant region comes
back constant, and a constant image needs no latent at all.

A block at the image's right or bottom edge counts its pixels inside the image only.
The stream carries the distinct colours of the flat blocks (a palette, 3 bytes each) and
a label per block (0: not flat, k: the palette's colour k - 1), NK-RLE coded.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((20, 20, 3), np.uint8); img[10:, 10:] = 200
>>> labels, palette = find(img)
>>> labels.tolist(), palette.tolist()
([[1, 1, 1], [1, 0, 0], [1, 0, 2]], [[0, 0, 0], [200, 200, 200]])
>>> params, sections = encode(labels, palette)
>>> params
{'blocks': 6, 'size': 8}
>>> out = apply(np.full((20, 20, 3), 7, np.uint8), *decode(params, sections, (20, 20)))
>>> int(out[0, 0, 0]), int(out[19, 19, 0]), int(out[12, 12, 0])
(0, 200, 7)
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptStreamError
from ..format.limits import MAX_PIXELS
from ..format.schema import Int, IntList
from . import rle

__all__ = ["BLOCK", "STREAM_PARAMS", "find", "block_errors", "keep", "encode", "decode", "apply", "constant_colour"]

BLOCK = 8  # pixels per block side
# The "flat" stage: "rgb" alone for a constant image (no latent at all); else the count of
# flat blocks and the block size, with two sections (palette, labels).
STREAM_PARAMS = {"rgb?": IntList(3, 0, 255), "blocks?": Int(1, MAX_PIXELS), "size?": Int(BLOCK, BLOCK)}


def _grid(hw: tuple) -> tuple:
    return -(-hw[0] // BLOCK), -(-hw[1] // BLOCK)


def constant_colour(rgb: np.ndarray):
    """The colour (3 ints) of an image that has one colour, else None."""
    first = rgb[0, 0]
    return [int(v) for v in first] if bool((rgb == first).all()) else None


def find(rgb: np.ndarray) -> tuple:
    """(labels (hb, wb) uint32: 0 = not flat, k = colour k - 1 of the palette; palette (k, 3) uint8)
    of a uint8 RGB image."""
    h, w = rgb.shape[:2]
    hb, wb = _grid((h, w))
    padded = np.pad(rgb, ((0, hb * BLOCK - h), (0, wb * BLOCK - w), (0, 0)), mode="edge")  # repeats pixels inside
    blocks = padded.reshape(hb, BLOCK, wb, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(hb, wb, BLOCK * BLOCK, 3)
    flat = (blocks == blocks[:, :, :1]).all(axis=(2, 3))
    labels = np.zeros((hb, wb), np.uint32)
    if not flat.any():
        return labels, np.zeros((0, 3), np.uint8)
    colours = blocks[:, :, 0][flat]  # (n, 3)
    key = (colours[:, 0].astype(np.uint32) << 16) | (colours[:, 1].astype(np.uint32) << 8) | colours[:, 2]
    unique, index = np.unique(key, return_inverse=True)
    labels[flat] = index.reshape(-1).astype(np.uint32) + 1
    palette = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.uint8)
    return labels, palette


def block_errors(decoded: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The largest |decoded - rgb| of each block (hb, wb), over the pixels inside the image."""
    h, w = rgb.shape[:2]
    hb, wb = _grid((h, w))
    err = np.abs(decoded.astype(np.int16) - rgb.astype(np.int16)).max(axis=2)
    err = np.pad(err, ((0, hb * BLOCK - h), (0, wb * BLOCK - w)))
    return err.reshape(hb, BLOCK, wb, BLOCK).max(axis=(1, 3))


def keep(labels: np.ndarray, palette: np.ndarray, mask: np.ndarray) -> tuple:
    """:func:`find`'s result reduced to the blocks where ``mask`` (hb, wb) is set, its
    palette to the colours they use."""
    kept = np.where(mask, labels, 0)
    used = np.unique(kept[kept > 0])
    remap = np.zeros(palette.shape[0] + 1, np.uint32)
    remap[used] = np.arange(1, used.size + 1, dtype=np.uint32)
    return remap[kept], palette[used - 1]


def encode(labels: np.ndarray, palette: np.ndarray) -> tuple:
    """(params of the "flat" stage, [palette bytes, NK-RLE labels]) of :func:`find`'s result."""
    params = {"blocks": int(np.count_nonzero(labels)), "size": BLOCK}
    return params, [np.ascontiguousarray(palette, np.uint8).tobytes(), rle.pack(*rle.encode(labels.reshape(-1)))]


def decode(params: dict, sections: list, hw: tuple) -> tuple:
    """Inverse of :func:`encode` for an image of (h, w): (labels, palette); CorruptStreamError
    where the sections disagree with the params or the image."""
    if len(sections) != 2 or len(sections[0]) % 3:
        raise CorruptStreamError("flat-block sections have the wrong count or size")
    hb, wb = _grid(hw)
    palette = np.frombuffer(sections[0], np.uint8).reshape(-1, 3)
    if not 1 <= palette.shape[0] <= hb * wb:
        raise CorruptStreamError(f"{palette.shape[0]} flat-block colours for {hb * wb} blocks")
    values, keys = rle.unpack(sections[1], np.uint32, max_pairs=hb * wb)
    labels = rle.decode(values, keys, cap=hb * wb)
    if labels.size != hb * wb:
        raise CorruptStreamError(f"{labels.size} flat-block labels for {hb * wb} blocks")
    if int(labels.max(initial=0)) > palette.shape[0]:
        raise CorruptStreamError("flat-block label out of range")
    if int(np.count_nonzero(labels)) != params["blocks"]:
        raise CorruptStreamError("flat-block count disagrees with the labels")
    return labels.reshape(hb, wb), palette


def apply(rgb: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``rgb`` (h, w, 3) with its flat blocks set to their colours (a new array)."""
    h, w = rgb.shape[:2]
    hb, wb = labels.shape
    colours = np.concatenate([np.zeros((1, 3), np.uint8), palette])[labels]  # (hb, wb, 3)
    fill = np.repeat(np.repeat(colours, BLOCK, axis=0), BLOCK, axis=1)[:h, :w]
    mask = np.repeat(np.repeat(labels > 0, BLOCK, axis=0), BLOCK, axis=1)[:h, :w]
    return np.where(mask[..., None], fill, rgb)
