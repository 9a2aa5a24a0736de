"""The codec: composes the stages behind ``Codec``, ``compress`` and ``decompress``.

Each preset is a small class with ``encode(image) -> (params, sections)`` and
``decode(header, sections) -> image``; :class:`Codec` adds input checks and the
``.nkc`` container around it.

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

from . import rle
from .container import MAX_PIXELS, MAX_SIDE, Header, pack_container, unpack_container
from .errors import CorruptStreamError

__all__ = ["Codec", "compress", "decompress", "PRESETS", "check_image"]

QUALITIES = range(1, 9)


def check_image(image) -> np.ndarray:
    """Validate a uint8 HxW, HxWx1, HxWx3 or HxWx4 image; return it C-contiguous."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy uint8 array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {image.dtype}; convert or scale the image first")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected shape HxW or HxWxC with C in (1, 3, 4), got {image.shape}")
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ValueError(f"image {h}x{w} is too large (at most {MAX_SIDE} a side and {MAX_PIXELS} pixels)")
    return np.ascontiguousarray(image)


def _planes(image: np.ndarray) -> np.ndarray:
    """Channel-major view C x H x W."""
    return image[None] if image.ndim == 2 else np.moveaxis(image, 2, 0)


class RlePreset:
    """Lossless: each channel plane NK-RLE coded (row-major scan), then varint-packed."""

    name = "rle"
    lossless = True

    def __init__(self, quality: int, variant: str = "nk"):
        self.variant = variant

    def encode(self, image: np.ndarray):
        sections = []
        for plane in _planes(image):
            values, keys = rle.encode_image(plane, self.variant)
            sections.append(rle.pack(values, keys))
        return {"rle": {"variant": self.variant}}, sections

    def decode(self, header: Header, sections: list) -> np.ndarray:
        variant = _param(header, "rle", "variant", str)
        if variant not in rle.VARIANTS:
            raise CorruptStreamError(f"unknown NK-RLE variant {variant!r}")
        if len(sections) != header.channels:
            raise CorruptStreamError(f"{len(sections)} sections for {header.channels} channels")
        hw = (header.height, header.width)
        planes = []
        for s in sections:
            values, keys = rle.unpack(s, np.uint8, max_pairs=header.num_pixels)
            planes.append(rle.decode_image(values, keys, hw, variant))
        return np.stack(planes, axis=-1)


class PalettePreset:
    """The paper's clustering stage as a codec: k colours (FAISS k-means++) + NK-RLE-coded labels.

    Exact for images with at most ``k`` colours; otherwise each pixel becomes its
    nearest centroid (the paper's clustered image).
    """

    name = "palette"
    lossless = False

    def __init__(self, quality: int, k: int = 256, variant: str = "nk", seed: int = 0):
        from .kmeans import MAX_K

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
            raise ValueError(f"palette size k must be an integer in 1..{MAX_K}, got {k!r}")
        if variant not in rle.VARIANTS:
            raise ValueError(f"unknown NK-RLE variant {variant!r}; choose one of {rle.VARIANTS}")
        self.k, self.variant, self.seed = int(k), variant, seed

    def encode(self, image: np.ndarray):
        from . import kmeans

        palette = kmeans.palette_fit(image, self.k, seed=self.seed)
        labels = kmeans.palette_apply(image, palette)
        values, keys = rle.encode_image(labels, self.variant)
        params = {"palette": {"k": int(palette.shape[0]), "variant": self.variant}}
        return params, [palette.tobytes(), rle.pack(values, keys)]

    def decode(self, header: Header, sections: list) -> np.ndarray:
        from .kmeans import MAX_K, label_dtype

        k = _param(header, "palette", "k", int)
        variant = _param(header, "palette", "variant", str)
        if not 1 <= k <= MAX_K or variant not in rle.VARIANTS:
            raise CorruptStreamError(f"bad palette parameters k={k} variant={variant!r}")
        if len(sections) != 2 or len(sections[0]) != k * header.channels:
            raise CorruptStreamError("palette sections have the wrong count or size")
        palette = np.frombuffer(sections[0], np.uint8).reshape(k, header.channels)
        dtype = label_dtype(k)
        values, keys = rle.unpack(sections[1], dtype, max_pairs=header.num_pixels)
        if values.size and int(values.max()) >= k:
            raise CorruptStreamError(f"palette label {int(values.max())} out of range for k={k}")
        labels = rle.decode_image(values, keys, (header.height, header.width), variant)
        return palette[labels]


def _param(header: Header, stage: str, key: str, typ):
    try:
        value = header.params[stage][key]
    except (KeyError, TypeError):
        raise CorruptStreamError(f"missing parameter {stage}.{key}") from None
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise CorruptStreamError(f"parameter {stage}.{key} has the wrong type")
    return value


PRESETS = {"rle": RlePreset, "palette": PalettePreset}
# "default" names the best preset measured so far; the learned codec takes it over.
_ALIASES = {"default": "rle"}


def _resolve(preset: str) -> str:
    name = _ALIASES.get(preset, preset)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(set(PRESETS) | set(_ALIASES))}")
    return name


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
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or quality not in QUALITIES:
            raise ValueError(f"quality must be an integer in 1..8, got {quality!r}")
        self.quality = int(quality)
        self.preset = _resolve(preset)
        try:
            self._impl = PRESETS[self.preset](self.quality, **options)
        except TypeError as e:
            raise ValueError(f"bad option for preset {self.preset!r}: {e}") from None

    def encode(self, image) -> bytes:
        """Compress a uint8 image to ``.nkc`` bytes."""
        image = check_image(image)
        params, sections = self._impl.encode(image)
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


def decompress(data) -> np.ndarray:
    """Decode ``.nkc`` bytes to a uint8 image of the original shape.

    Raises
    ------
    CorruptStreamError
        The stream is malformed in any way.
    """
    header, sections = unpack_container(data)
    impl = _decoder(header)
    image = impl.decode(header, sections)
    if image.shape[:2] != (header.height, header.width) or image.shape[-1] != header.channels:
        raise CorruptStreamError(f"decoded shape {image.shape} disagrees with the header")
    return image.reshape(header.shape)


def _decoder(header: Header):
    if header.preset not in PRESETS:
        raise CorruptStreamError(f"preset {header.preset!r} is not supported by this build")
    return PRESETS[header.preset](max(1, min(8, header.quality)))


def compress(image, quality: int = 4, preset: str = "default", **options) -> bytes:
    """Compress a uint8 image (HxW, HxWx3 or HxWx4) to ``.nkc`` bytes.

    Examples
    --------
    >>> import numpy as np
    >>> data = compress(np.zeros((2, 2), np.uint8), preset="rle")
    >>> data[:3]
    b'NKC'
    """
    return Codec(quality, preset, **options).encode(image)
