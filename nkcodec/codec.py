"""The codec's public API: :class:`Codec`, :func:`compress` and :func:`decompress`, their
batched forms (:func:`compress_many`, :func:`decompress_many`) and rate control
(:func:`compress_to_size`).  The presets do the coding (:mod:`nkcodec.presets`); the
``.nkc`` container wraps it (:mod:`nkcodec.format.container`).

Examples
--------
>>> import numpy as np, nkcodec
>>> img = np.zeros((5, 7, 3), np.uint8)
>>> data = nkcodec.compress(img, preset="rle")
>>> bool((nkcodec.decompress(data) == img).all())
True
"""

from __future__ import annotations

import numpy as np

from .config import QUALITIES
from .errors import check_int
from .format.container import Header, pack_container
from .format.limits import check_image
from .presets import PRESETS, decode_stream, resolve

__all__ = ["Codec", "compress", "compress_many", "compress_to_size", "decompress", "decompress_many", "PRESETS"]


class Codec:
    """A reusable encoder/decoder for one quality and preset.

    Parameters
    ----------
    quality : int
        1 (lowest rate) .. 8 (highest). Lossless presets ignore it.
    preset : str
        ``"default"``, ``"rle"``, ``"palette"``, ... (see ``nkcodec.PRESETS``).
    **options
        Preset options, e.g. ``k=64`` (palette size) for ``"palette"``.

    Examples
    --------
    >>> import numpy as np
    >>> codec = Codec(quality=4, preset="rle")
    >>> img = np.full((3, 4), 9, np.uint8)
    >>> bool((codec.decode(codec.encode(img)) == img).all())
    True
    """

    def __init__(self, quality: int = 4, preset: str = "default", **options):
        import inspect

        self.quality = check_int(quality, "quality", QUALITIES[0], QUALITIES[-1])
        self.preset = resolve(preset)
        # NumPy scalars as plain Python values, so that get_config() is JSON
        options = {k: v.item() if isinstance(v, np.generic) else v for k, v in options.items()}
        cls = PRESETS[self.preset]
        try:  # an option the preset does not take; a TypeError from inside the preset is its own
            inspect.signature(cls).bind(self.quality, **options)
        except TypeError as e:
            raise ValueError(f"bad option for preset {self.preset!r}: {e}") from None
        self._impl = cls(self.quality, **options)
        self.options = options

    @property
    def impl(self):
        """The preset object that does the coding (a :class:`~nkcodec.presets.LatentPreset`
        for the learned presets that code one latent, which the batched pipeline splits)."""
        return self._impl

    @property
    def codec_id(self) -> str:
        return f"nkcodec.{self.preset}"

    def get_config(self) -> dict:
        """JSON-able configuration (numcodecs style): ``{"id", "quality", **options}``."""
        return {"id": self.codec_id, "quality": self.quality, **self.options}

    @classmethod
    def from_config(cls, config: dict) -> Codec:
        """Rebuild a codec from :meth:`get_config` output."""
        config = dict(config)
        cid = str(config.pop("id", ""))
        if not cid.startswith("nkcodec."):
            raise ValueError(f"not an nkcodec config id: {cid!r}")
        return cls(config.pop("quality", 4), cid[len("nkcodec.") :], **config)

    def encode(self, image) -> bytes:
        """Compress an image to ``.nkc`` bytes: uint8 with 1 to 4 channels, or for
        ``near-lossless`` also uint16 and up to 16 channels."""
        image = self._impl.check_image(image)
        return self.pack(image, *self._impl.encode(image))

    def pack(self, image: np.ndarray, params: dict, sections: list) -> bytes:
        """The ``.nkc`` bytes of a checked ``image`` coded as (params, sections) by this codec's preset."""
        header = Header(
            height=image.shape[0],
            width=image.shape[1],
            channels=1 if image.ndim == 2 else image.shape[2],
            preset=self.preset,
            quality=self.quality,
            model_id=getattr(self._impl, "model_id", 0),
            squeeze=image.ndim == 2,
            params=params,
        )
        return pack_container(header, sections)

    def decode(self, data) -> np.ndarray:
        """Decompress ``.nkc`` bytes (any preset) to a uint8 image."""
        return decompress(data)

    def encode_many(self, images, *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise"):
        """Compress many images: an iterator of ``.nkc`` bytes in input order, the
        same bytes as :meth:`encode` of each.  The nets run in device batches
        on ``lanes`` threads while a pool of ``workers`` threads does the
        entropy coding (:mod:`nkcodec.batch`); the options are described in
        :data:`nkcodec.batch.OPTIONS_DOC`.

        Examples
        --------
        >>> import numpy as np
        >>> codec = Codec(preset="rle")
        >>> [len(d) > 0 for d in codec.encode_many([np.zeros((2, 2), np.uint8)] * 3)]
        [True, True, True]
        """
        from . import batch
        from .pipeline import encode_batch

        batch_size, lanes, workers, depth, _ = batch.check_options(batch_size, lanes, workers, depth, errors)

        def nets(items, pool):
            return encode_batch(self, items, pool, load)

        return batch.encode_pipeline(images, nets, batch_size=batch_size, lanes=lanes, workers=workers, depth=depth, errors=errors)

    def decode_many(self, streams, **options):
        """Decompress many ``.nkc`` streams: an iterator of uint8 images in input
        order, the same pixels as :meth:`decode` of each (:func:`decompress_many`)."""
        return decompress_many(streams, **options)


def decompress(data) -> np.ndarray:
    """Decode ``.nkc`` bytes to a uint8 image of the original shape.

    Raises
    ------
    CorruptStreamError
        The stream is malformed in any way.
    """
    return decode_stream(data)


def compress(image, quality: int = 4, preset: str = "default", **options) -> bytes:
    """Compress a uint8 image (HxW, HxWx1, HxWx2, HxWx3 or HxWx4) to ``.nkc`` bytes.

    Examples
    --------
    >>> import numpy as np
    >>> data = compress(np.zeros((2, 2), np.uint8), preset="rle")
    >>> data[:3]
    b'NKC'
    """
    return Codec(quality, preset, **options).encode(image)


def compress_many(
    images, quality: int = 4, preset: str = "default", *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise", **options
):
    """Compress many images (any iterable): an iterator of ``.nkc`` bytes in input
    order, each the bytes :func:`compress` gives; the nets run in device batches
    while a pool of threads does the entropy coding (:meth:`Codec.encode_many`).

    Examples
    --------
    >>> import numpy as np
    >>> [d[:3] for d in compress_many([np.zeros((2, 2), np.uint8)] * 2, preset="rle")]
    [b'NKC', b'NKC']
    """
    return Codec(quality, preset, **options).encode_many(images, batch_size=batch_size, lanes=lanes, workers=workers, depth=depth, load=load, errors=errors)


def decompress_many(streams, *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise", pool="auto"):
    """Decompress ``.nkc`` streams (bytes; presets, models and sizes may mix): an
    iterator of uint8 images in input order, each the image :func:`decompress`
    gives.  The entropy decoding runs in a pool (``pool``: ``"thread"``,
    ``"process"``, or ``"auto"``: threads, since the entropy decoders are
    compiled code that releases the GIL, so threads scale), the synthesis in device batches on ``lanes`` threads
    (:mod:`nkcodec.batch`; the other options: :data:`nkcodec.batch.OPTIONS_DOC`).

    Examples
    --------
    >>> import numpy as np
    >>> streams = compress_many([np.full((8, 8), v, np.uint8) for v in range(3)], preset="rle")
    >>> [int(im[0, 0]) for im in decompress_many(streams)]
    [0, 1, 2]
    """
    from . import batch
    from .pipeline import entropy_stage, synthesize

    batch_size, lanes, workers, depth, pool = batch.check_options(batch_size, lanes, workers, depth, errors, pool)
    return batch.decode_pipeline(
        streams, entropy_stage, synthesize, batch_size=batch_size, lanes=lanes, workers=workers, depth=depth, errors=errors, pool=pool, load=load
    )


def compress_to_size(image, max_bytes: int, preset: str = "default", **options) -> bytes:
    """The highest quality whose stream fits in ``max_bytes`` (rate control for a
    byte budget): a binary search over qualities 1..8, at most 4 encodes.

    Raises ValueError if even quality 1 does not fit, or if the preset has no
    quality ladder (``rle``, ``palette``, ``near-lossless``).

    Examples
    --------
    >>> import numpy as np
    >>> compress_to_size(np.zeros((4, 4), np.uint8), 10, preset="rle")
    Traceback (most recent call last):
    ...
    ValueError: preset 'rle' has no quality ladder; compress_to_size needs a learned lossy preset
    """
    name = resolve(preset)
    if not PRESETS[name].quality_ladder:
        raise ValueError(f"preset {preset!r} has no quality ladder; compress_to_size needs a learned lossy preset")
    check_int(max_bytes, "max_bytes", 1)
    image = check_image(image)
    best, lo, hi = None, QUALITIES[0], QUALITIES[-1]
    while lo <= hi:  # sizes grow with quality (measured on every Kodak image), so bisect
        q = (lo + hi) // 2
        data = Codec(q, name, **options).encode(image)
        if len(data) <= max_bytes:
            best, lo = data, q + 1
        else:
            hi = q - 1
    if best is None:
        raise ValueError(f"even quality 1 takes more than {max_bytes} bytes for this image")
    return best
