"""Bounded-error coding of any sample depth and channel count: the ``near-lossless``
preset's residual version 4.

Version 2 (:mod:`nkcodec.coding.nearlossless_v2`) codes 8-bit images of 1 to 4
channels.  Version 4 runs the same compiled coder on samples of 1 to 16 bits
(``uint8`` or ``uint16`` arrays) and 1 to :data:`MAX_CHANNELS` channels, with
``max_error`` in sample units.  What it adds, all chosen by the encoder per tile and
written at the start of the tile's bytes, so the decoder only reads it:

* **Channel decorrelation.**  Each channel is coded either on its own or as its
  difference from one channel coded before it (its *reference*), with the colour
  predictors that version 2 uses for R and B; a channel whose reference another
  channel shares is also *guided* by that one, as R guides B.  The encoder picks
  each channel's reference from the tile, greedily in coding order: the earlier
  channel whose difference is the smoothest (sum of absolute neighbour differences,
  on every 4th row pair), if it beats coding the channel alone.  For three or four
  channels the order starts with channel 1, as version 2 starts with G.
* **Depth.**  Activities and errors of deep samples are shifted down into the
  8-bit coder's context ranges; the shift follows the tile's range of values.
* **Stored tiles.**  A tile whose coded bytes would not be fewer than its raw
  samples is stored raw (little-endian), so no tile costs more than raw.

Tile layout: 3 bytes (mode, activity shift, error shift; mode 0 is all this version
has, and a decoder refuses another), then 3 bytes per channel in
coding order (channel, reference + 1, guide + 1; 0: none), then the arithmetic
coder's bytes; or exactly the raw samples.  Every tile starts from version 2's
prior (counted on 8-bit training photos), each plane from the plane of the same role,
its error bits moved up by the tile's error shift (:func:`_plane_prior`).

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 4096, (5, 6, 7), dtype=np.uint16)
>>> parts = encode(x, max_error=2, bits=12)
>>> out = decode(parts, x.shape, max_error=2, bits=12, wide=True)
>>> out.dtype, int(np.abs(out.astype(int) - x).max()) <= 2
(dtype('uint16'), True)
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ..errors import CorruptStreamError, check_int
from ..format.limits import MAX_STREAM_CHANNELS, check_image
from . import nearlossless_v2 as v2

__all__ = [
    "Coder",
    "V4",
    "EFFORTS",
    "candidates",
    "VERSION",
    "MAX_CHANNELS",
    "MAX_ERROR",
    "encode",
    "decode",
    "check_samples",
    "check_bits",
    "sample_bits",
    "tile_layout",
]

VERSION = 4
MAX_CHANNELS = MAX_STREAM_CHANNELS  # 16
MAX_ERROR = 32767  # largest max_error (sample units) a stream may name
_HEAD = 3  # bytes before the per-channel layout: mode, activity shift, error shift
MODES = (0,)  # the tile modes this build codes (a byte in each tile: room for later coder options)
_GAIN = 0.95  # a reference is taken when the difference is at most this fraction as rough


def sample_bits(image: np.ndarray) -> int:
    """The depth an array's dtype holds: 8 (uint8) or 16 (uint16)."""
    return 8 * image.dtype.itemsize


def check_samples(image, bits: int | None = None) -> tuple:
    """(image HxWxC C-contiguous, bits): a uint8 or uint16 HxW or HxWxC array, C in
    1..:data:`MAX_CHANNELS`, every sample below ``2**bits`` (``bits`` None: the
    dtype's depth).  ValueError naming the problem otherwise."""
    image = check_image(image, dtypes=(np.uint8, np.uint16), max_channels=MAX_CHANNELS)
    return image.reshape(image.shape[0], image.shape[1], -1), check_bits(image, bits)


def check_bits(image: np.ndarray, bits: int | None) -> int:
    """The depth of a checked uint8 or uint16 ``image``: ``bits`` (None: the dtype's), if
    every sample is below ``2**bits``; ValueError otherwise."""
    depth = sample_bits(image)
    bits = check_int(depth if bits is None else bits, "bits", 1, depth)
    if bits < depth and image.size and int(image.max()) >> bits:
        raise ValueError(f"a sample is {int(image.max())}, above the largest {bits}-bit value {(1 << bits) - 1}")
    return bits


def _roughness(x: np.ndarray) -> int:
    """Sum of absolute differences to the west and north neighbours, on every 4th row
    pair (the encoder's estimate of how costly a plane is to code)."""
    if x.shape[0] < 2:
        return int(np.abs(np.diff(x, axis=1)).sum())
    lo, hi = x[0:-1:4], x[1::4][: len(x[0:-1:4])]
    return int(np.abs(np.diff(hi, axis=1)).sum() + np.abs(hi - lo).sum())


def tile_layout(tile: np.ndarray, order: list | None = None, guides: bool = True) -> np.ndarray:
    """The planes of one HxWxC tile in coding order, as the kernel takes them: rows of
    [channel, reference, guide] (-1: none), chosen as the module docstring says.
    The last channel of 2 or 4 is alpha: coded on its own, last, and no reference.
    ``order``: the channels' coding order instead of the rule's; ``guides=False``: no
    guides (the encoder's search, :func:`candidates`)."""
    c = tile.shape[2]
    if order is None:
        order = [1, 0, 2] + list(range(3, c)) if c in (3, 4) else list(range(c))
    alpha = c - 1 if c in (2, 4) else -1
    x = tile.astype(np.int32)
    rows, done = [], []
    for ch in order:
        ref = -1
        if ch != alpha and done:
            best = _roughness(x[:, :, ch])
            for r in done:
                if r == alpha:
                    continue
                cost = _roughness(x[:, :, ch] - x[:, :, r])
                if cost < _GAIN * best or cost == best == 0 and ref < 0:  # a flat plane: as flat from its first reference
                    best, ref = cost, r
        guide = next((r[0] for r in reversed(rows) if guides and ref >= 0 and r[1] == ref), -1)
        rows.append([ch, ref, guide])
        done.append(ch)
    return np.array(rows, np.int64)


def _shifts(tile: np.ndarray, bits: int, step: int) -> tuple:
    """(activity shift, error shift) of a tile: how far its range of values reaches
    above 8 bits, and that less the quantiser's own shrinking of the errors."""
    span = int(tile.max()) - int(tile.min()) if tile.size else 0
    ash = max(0, min(bits, span.bit_length()) - 8)
    return ash, max(0, ash - (step.bit_length() - 1))


@dataclasses.dataclass(frozen=True)
class Coder:
    """What a residual version's tiles are coded with: its ``version``, the ``prior`` that
    starts every tile (a function returning (probs, wts) of version 2's layout, any number
    of models), the kernel's LMS stage (``lms``: its step's shift; 0: none) and the tile
    ``modes`` it reads (mode 1: the LMS stage on; mode 0: off)."""

    version: int
    prior: object
    lms: int = 0
    modes: tuple = (0,)

    def lms_of(self, mode: int) -> int:
        """The kernel's ``lms`` argument for a tile of this mode."""
        return self.lms if mode & 1 else 0


V4 = Coder(VERSION, v2.prior, 0, MODES)
EFFORTS = (0, 1, 2)  # encoder efforts: 0 the rules; 1 also tries other channel orders per tile; 2 also the shifts


def candidates(tile: np.ndarray, effort: int) -> list:
    """The plane layouts the encoder tries on a tile at ``effort`` (:data:`EFFORTS`), the
    rule's first: at effort 1 and up, for 3 or more channels the first three channels in
    each of the orders G R B, G B R, R G B, B G R (version 2's is G R B) and the rule's
    without guides; for 2 or more channels, every channel on its own."""
    lays = [tile_layout(tile)]
    c = tile.shape[2]
    if effort >= 1 and c >= 2:
        rest = list(range(3, c))
        if c >= 3:
            lays += [tile_layout(tile, o + rest) for o in ([1, 2, 0], [0, 1, 2], [2, 1, 0])]
            lays.append(tile_layout(tile, guides=False))
        lays.append(np.array([[ch, -1, -1] for ch in lays[0][:, 0]], np.int64))
    out = []
    for lay in lays:
        if not any(np.array_equal(lay, o) for o in out):
            out.append(lay)
    return out


@functools.lru_cache(maxsize=64)
def _plane_prior(role: int, bits: int, qsh: int, coder: Coder = V4) -> tuple:
    """One plane's starting (probabilities (models, contexts, block), mixer weights
    (groups, sets, models)): version 2's prior of the plane in the same ``role`` (0: a
    channel with a reference, 1: one without, 2: one with a guide too, 3: alpha), its
    error bits moved up by the error shift ``qsh``: length bit j starts as version 2's
    bit j - qsh (the bits below qsh as almost surely set), mantissa bits as version 2's
    bits of the same rank from the top (those below version 2's range: even)."""
    p2, w2 = coder.prior()
    models = p2.shape[0]
    p2 = p2.reshape(models, v2._MAX_PLANES, v2._CTX3, v2._BLOCK)[:, role]
    w2 = w2.reshape(v2._MAX_PLANES, v2._WGROUPS, v2._WSETS, models)[role]
    mb, m8 = bits, v2._MAX_BITS
    probs = np.full((models, v2._CTX3, 1 + mb + mb * mb), v2._ONE // 2, np.uint16)
    wts = np.full((v2._WGROUPS, mb + 3, models), (1 << 16) // models, np.int64)
    for j in range(mb):
        if j >= qsh:
            probs[:, :, j] = p2[:, :, min(j - qsh, m8 - 1)]
            wts[:, j] = w2[:, min(j - qsh, m8 - 1)]
        else:
            probs[:, :, j] = v2._ONE - 1024
    probs[:, :, mb] = p2[:, :, m8]  # sign
    wts[:, mb:] = w2[:, m8:]  # sign, leading and other mantissa bits
    for nb in range(qsh + 1, min(mb, qsh + m8) + 1):
        for j in range(qsh, nb - 1):
            probs[:, :, mb + 1 + (nb - 1) * mb + j] = p2[:, :, m8 + 1 + (nb - qsh - 1) * m8 + j - qsh]
    probs.flags.writeable = wts.flags.writeable = False
    return probs, wts


def _state(lay: np.ndarray, channels: int, bits: int, qsh: int, coder: Coder = V4) -> tuple:
    """A tile's starting (probs, wts) for :func:`v2._code_tile`: each plane's
    :func:`_plane_prior`, by the role its layout row gives it."""
    roles = {}
    for ch, ref, guide in lay.tolist():
        roles[ch] = 3 if (channels in (2, 4) and ch == channels - 1) else (1 if ref < 0 else 2 if guide >= 0 else 0)
    parts = [_plane_prior(roles[ch], bits, qsh, coder) for ch in range(channels)]
    models = parts[0][0].shape[0]
    probs = np.concatenate([p for p, _ in parts], axis=1).reshape(models, -1)
    return probs, np.concatenate([w for _, w in parts]).reshape(-1, models)


def _raw(tile: np.ndarray) -> bytes:
    return tile.astype(tile.dtype.newbyteorder("<"), copy=False).tobytes()


def _code(tile, lay, bits, ash, qsh, steps, coder, mode) -> bytes:
    """One tile coded with this layout, these shifts and this mode: its head and the coder's bytes."""
    channels = tile.shape[2]
    cfg = np.array([(1 << bits) - 1, bits, ash, qsh], np.int64)
    head = bytes([mode, ash, qsh, *(int(v) + (i > 0) for row in lay for i, v in enumerate(row))])
    size = tile.size * tile.itemsize * 2 + 1024
    while True:
        buf = np.empty(size, np.uint8)
        n = v2._code_tile(tile, np.empty_like(tile), lay, cfg, steps, buf, v2._TABLES, *_state(lay, channels, bits, qsh, coder), True, coder.lms_of(mode))
        if n >= 0:
            return head + buf[:n].tobytes()
        size *= 4


def _mode(coder, ash: int) -> int:
    """The rule's tile mode: the LMS stage on where the coder has one and the tile's values
    span at most 8 bits (on the deep MRI slices it costs bytes: ``docs/lossless.md``)."""
    return 1 if 1 in coder.modes and ash == 0 else 0


def _search(tile, bits, steps, coder, effort) -> bytes:
    """The tile's fewest bytes over what ``effort`` tries: each of :func:`candidates`' layouts
    with the rule's shifts and mode, then the best layout in the other modes, then (effort 2)
    with each shift within 1 of the rule's."""
    ash, qsh = _shifts(tile, bits, int(steps[0]))
    mode = _mode(coder, ash)
    best, lay = None, None
    for cand in candidates(tile, effort):
        part = _code(tile, cand, bits, ash, qsh, steps, coder, mode)
        if best is None or len(part) < len(best):
            best, lay = part, cand
    if effort >= 1:
        for m in coder.modes:
            if m != mode:
                part = _code(tile, lay, bits, ash, qsh, steps, coder, m)
                if len(part) < len(best):
                    best, mode = part, m
    if effort >= 2:
        for a in range(max(0, ash - 1), min(bits, ash + 1) + 1):
            for q in range(max(0, qsh - 1), min(bits, qsh + 1) + 1):
                if (a, q) != (ash, qsh):
                    part = _code(tile, lay, bits, a, q, steps, coder, mode)
                    if len(part) < len(best):
                        best = part
    return best


def encode(image: np.ndarray, max_error: int = 0, bits: int | None = None, threads: int | None = None, coder: Coder = V4, effort: int = 0) -> list:
    """Code a uint8 or uint16 image (HxW or HxWxC, C in 1..16; C = 2 and 4 carry alpha,
    coded losslessly) of ``bits``-bit samples (None: the dtype's) so that every sample
    decodes within ``max_error``: one bytes object per tile (:func:`v2.tiles`).
    ``coder``: the residual version's (:class:`Coder`); ``effort``: what the encoder tries
    per tile (:data:`EFFORTS`, :func:`candidates`): the decoder's work is the same."""
    image, bits = check_samples(image, bits)
    max_error = check_int(max_error, "max_error", 0, MAX_ERROR)
    effort = check_int(effort, "effort", choices=EFFORTS)
    steps = v2._steps(image.shape[2], max_error)

    def one(t):
        tile = np.ascontiguousarray(image[t])
        part = _search(tile, bits, steps, coder, effort)
        return part if len(part) < tile.size * tile.itemsize else _raw(tile)

    with v2._tile_threads(threads) as n:
        return v2._map(one, v2.tiles(*image.shape[:2]), n)


def _read_head(part: bytes, channels: int, bits: int, i: int, modes: tuple = MODES) -> tuple:
    """(layout, cfg, mode) a coded tile's first bytes name, checked: CorruptStreamError otherwise."""
    mode, ash, qsh = part[0], part[1], part[2]
    if mode not in modes:
        raise CorruptStreamError(f"lossless tile {i} has mode {mode}, which this build does not decode (a newer nkcodec may)")
    if ash > bits or qsh > bits:
        raise CorruptStreamError(f"lossless tile {i}: shifts {ash}, {qsh} above the {bits} bits of a sample")
    lay = np.frombuffer(part, np.uint8, 3 * channels, _HEAD).astype(np.int64).reshape(channels, 3)
    lay[:, 1:] -= 1
    seen = []
    for ch, ref, guide in lay.tolist():
        if not 0 <= ch < channels or ch in seen:
            raise CorruptStreamError(f"lossless tile {i}: its channel order is not a permutation of 0..{channels - 1}")
        if ref != -1 and ref not in seen:
            raise CorruptStreamError(f"lossless tile {i}: channel {ch} refers to channel {ref}, not coded before it")
        if guide != -1 and (ref == -1 or guide == ref or guide not in seen):
            raise CorruptStreamError(f"lossless tile {i}: channel {ch} has a bad guide {guide}")
        seen.append(ch)
    return lay, np.array([(1 << bits) - 1, bits, ash, qsh], np.int64), mode


def decode(parts: list, shape: tuple, max_error: int = 0, bits: int = 8, wide: bool | None = None, threads: int | None = None, coder: Coder = V4) -> np.ndarray:
    """Inverse of :func:`encode`: the image of ``shape`` (HxWxC; HxW comes back HxWx1),
    uint16 if ``wide`` (None: if ``bits`` > 8) else uint8, every sample within ``max_error``."""
    h, w, channels = shape if len(shape) == 3 else (*shape, 1)
    if not 1 <= channels <= MAX_CHANNELS:
        raise CorruptStreamError(f"{channels} channels, expected 1..{MAX_CHANNELS}")
    dtype = np.uint16 if (bits > 8 if wide is None else wide) else np.uint8
    if not 1 <= bits <= 8 * np.dtype(dtype).itemsize:
        raise CorruptStreamError(f"{bits}-bit samples in a {np.dtype(dtype).name} image")
    item = np.dtype(dtype).itemsize
    steps = v2._steps(channels, max_error)
    grid = v2.tiles(h, w)
    if len(parts) != len(grid):
        raise CorruptStreamError(f"{len(parts)} lossless tiles, expected {len(grid)}")
    for i, ((rs, cs), part) in enumerate(zip(grid, parts)):
        samples = (rs.stop - rs.start) * (cs.stop - cs.start) * channels
        least = _HEAD + 3 * channels + v2.min_bytes(samples)
        if len(part) > samples * item:
            raise CorruptStreamError(f"lossless tile {i} has {len(part)} bytes, more than its {samples} raw samples")
        if len(part) < least and len(part) != samples * item:
            raise CorruptStreamError(f"lossless tile {i} has {len(part)} bytes, fewer than the {least} its samples need at least")
    out = np.empty((h, w, channels), dtype)

    def one(i):
        rs, cs = grid[i]
        rec = np.empty((rs.stop - rs.start, cs.stop - cs.start, channels), dtype)
        part = parts[i]
        if len(part) == rec.size * item:
            tile = np.frombuffer(part, np.dtype(dtype).newbyteorder("<")).reshape(rec.shape)
            if bits < 8 * item and tile.size and int(tile.max()) >> bits:
                raise CorruptStreamError(f"stored lossless tile {i} has a sample above {bits} bits")
            out[rs, cs] = tile
            return
        lay, cfg, mode = _read_head(part, channels, bits, i, coder.modes)
        data = np.frombuffer(part, np.uint8, offset=_HEAD + 3 * channels).copy()
        n = v2._code_tile(rec, rec, lay, cfg, steps, data, v2._TABLES, *_state(lay, channels, bits, int(cfg[3]), coder), False, coder.lms_of(mode))
        if n != data.size:
            raise CorruptStreamError(f"lossless tile {i} ends at byte {n} of {data.size}")
        out[rs, cs] = rec

    with v2._tile_threads(threads) as n:
        v2._map(one, list(range(len(grid))), n)
    return out
