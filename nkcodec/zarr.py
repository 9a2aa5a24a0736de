"""nkcodec as a numcodecs codec, for Zarr arrays (format 2 and 3).

``NkCodec`` (``codec_id = "nkcodec"``) codes uint8 chunks shaped (H, W),
(H, W, C) or (N, H, W, C), where the N images of a chunk are coded one by
one; with ``preset="near-lossless"`` also uint16 chunks, and up to 16 channels.  It is registered through the ``numcodecs.codecs`` entry point, so
``numcodecs.get_codec({"id": "nkcodec", ...})`` finds it without an import,
and :class:`NkCodecZarr3` wraps it as a Zarr format 3 array-to-bytes codec
(``numcodecs.nkcodec``, the ``zarr.codecs`` entry point) with zarr's own
numcodecs adapter.  Needs the ``zarr`` extra: ``pip install "nkcodec[zarr]"``.

Examples
--------
>>> import numpy as np
>>> codec = NkCodec(preset="rle")
>>> chunk = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
>>> bool((codec.decode(codec.encode(chunk)) == chunk).all())
True
"""

from __future__ import annotations

import struct

import numpy as np
from numcodecs.abc import Codec as _NumcodecsCodec
from numcodecs.compat import ensure_bytes, ensure_ndarray_like, ndarray_copy

__all__ = ["NkCodec", "NkCodecZarr3", "check_chunk"]  # noqa: F822  (NkCodecZarr3: built on first use, below)

_MANY = b"NKCN"  # N images in one chunk: magic, u32 count, then (u32 length, .nkc stream) each
_U32 = struct.Struct("<I")


def check_chunk(shape, dtype, preset: str = "default") -> None:
    """ValueError unless ``shape``/``dtype`` is a chunk nkcodec's ``preset`` codes: uint8
    (H, W), (H, W, C) or (N, H, W, C) with C in 1..4; near-lossless also uint16 and C up to 16."""
    from .presets import PRESETS, resolve

    deep = PRESETS[resolve(preset)].max_channels > 4
    dtypes = (np.uint8, np.uint16) if deep else (np.uint8,)
    if np.dtype(dtype) not in dtypes:
        hint = "" if deep else "; presets near-lossless and rle code uint16"
        raise ValueError(f"nkcodec codes {' and '.join(np.dtype(d).name for d in dtypes)} chunks, not {np.dtype(dtype)}{hint}")
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        if shape[0] < 1:
            raise ValueError(f"chunk shape {shape}: N must be at least 1")
        shape = shape[1:]
    if len(shape) not in (2, 3):
        raise ValueError(f"nkcodec codes chunks shaped (H, W), (H, W, C) or (N, H, W, C), not {shape}")
    most = PRESETS[resolve(preset)].max_channels
    if len(shape) == 3 and not 1 <= shape[2] <= most:
        what = "(gray, gray + alpha, RGB, RGBA; near-lossless and rle code up to 16)" if most == 4 else f"with {resolve(preset)}"
        raise ValueError(f"chunk shape {shape} has {shape[2]} channels; nkcodec codes 1 to {most} {what}")
    if min(shape[:2]) < 1:
        raise ValueError(f"chunk shape {shape} is empty")


class NkCodec(_NumcodecsCodec):
    """numcodecs codec: each image of a chunk coded by ``nkcodec.Codec(quality, preset, **options)``."""

    codec_id = "nkcodec"

    def __init__(self, quality: int = 4, preset: str = "default", **options):
        from .codec import Codec

        self._codec = Codec(quality, preset, **options)  # checks the settings now, not at the first chunk
        self.quality, self.preset, self.options = self._codec.quality, preset, self._codec.options  # plain JSON values

    def encode(self, buf) -> bytes:
        a = np.asarray(ensure_ndarray_like(buf))
        if a.dtype.hasobject:  # numcodecs' contract: an object array is a TypeError
            raise TypeError("nkcodec cannot encode an object array; it codes uint8 image chunks")
        check_chunk(a.shape, a.dtype, self._codec.preset)
        if a.ndim < 4:
            return self._codec.encode(a)
        parts = [_MANY, _U32.pack(a.shape[0])]
        for data in self._codec.encode_many(a):
            parts += [_U32.pack(len(data)), data]
        return b"".join(parts)

    def decode(self, buf, out=None):
        from .codec import decompress, decompress_many
        from .errors import CorruptStreamError

        if out is not None and np.asarray(out).dtype.hasobject:
            raise TypeError("nkcodec cannot decode into an object array")
        data = ensure_bytes(buf)
        if data[:4] != _MANY:
            image = decompress(data)
        else:
            if len(data) < 8:
                raise CorruptStreamError("nkcodec chunk of several images is truncated")
            (n,) = _U32.unpack_from(data, 4)
            streams, pos = [], 8
            for _ in range(n):
                if pos + 4 > len(data):
                    raise CorruptStreamError("nkcodec chunk of several images is truncated")
                (size,) = _U32.unpack_from(data, pos)
                if size > len(data) - pos - 4:
                    raise CorruptStreamError("an image of an nkcodec chunk runs past its end")
                streams.append(data[pos + 4 : pos + 4 + size])
                pos += 4 + size
            if pos != len(data) or n == 0:
                raise CorruptStreamError("nkcodec chunk of several images has stray bytes or none")
            images = list(decompress_many(streams))
            if len({im.shape for im in images}) != 1:
                raise CorruptStreamError("the images of an nkcodec chunk differ in shape")
            image = np.stack(images)
        return ndarray_copy(image, out) if out is not None else image

    def get_config(self) -> dict:
        return {"id": self.codec_id, "quality": self.quality, "preset": self.preset, **self.options}

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"NkCodec(quality={self.quality}, preset={self.preset!r}{opts})"


def _zarr3_class():
    from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec

    class NkCodecZarr3(_NumcodecsArrayBytesCodec, codec_name="nkcodec"):
        """Zarr format 3 array-to-bytes codec ``numcodecs.nkcodec``: zarr's own
        numcodecs adapter around :class:`NkCodec`, which checks the array's
        dtype and chunk shape when the array is created."""

        def __init__(self, **codec_config):
            settings = {k: v for k, v in codec_config.items() if k != "id"}
            NkCodec(**settings)  # a bad quality, preset or option fails here, not at the first write
            super().__init__(**codec_config)

        def validate(self, *, shape, dtype, chunk_grid) -> None:
            chunks = getattr(chunk_grid, "chunk_shape", shape)
            check_chunk(chunks, dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else dtype, self.codec_config.get("preset", "default"))

    return NkCodecZarr3


def __getattr__(name):
    if name == "NkCodecZarr3":  # built on first use: zarr is imported only by those who use it
        cls = globals()["NkCodecZarr3"] = _zarr3_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
