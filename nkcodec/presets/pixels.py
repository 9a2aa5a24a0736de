"""The presets that code pixels directly, with no model: ``rle`` (lossless NK-RLE of each
plane) and ``palette`` (the paper's clustering stage as a codec)."""

from __future__ import annotations

import numpy as np

from ..coding import rle
from ..coding.kmeans import MAX_K
from ..errors import CorruptStreamError, check_int
from ..format.container import Header
from ..format.limits import MAX_STREAM_CHANNELS, check_image
from ..format.schema import Int, OneOf
from .base import Preset, pack_plane, planes, unpack_plane

__all__ = ["RlePreset", "PalettePreset"]


class RlePreset(Preset):
    """Lossless: each channel plane NK-RLE coded (row-major scan), then varint-packed.
    The codec's quality is not used.  uint8 or uint16 samples (``"dtype": "uint16"`` in
    the stream; absent: uint8, as every stream before it), 1 to 16 channels."""

    name = "rle"
    lossless = True
    stream_params = {"rle": {"variant": OneOf(*rle.VARIANTS), "dtype?": OneOf("uint16")}}
    max_channels = MAX_STREAM_CHANNELS

    def check_image(self, image) -> np.ndarray:
        """uint8 or uint16, 1 to 16 channels."""
        return check_image(image, dtypes=(np.uint8, np.uint16), max_channels=self.max_channels)

    def __init__(self, quality: int, variant: str = "nk"):
        super().__init__(quality)
        if variant not in rle.VARIANTS:
            raise ValueError(f"unknown NK-RLE variant {variant!r}; choose one of {rle.VARIANTS}")
        self.variant = variant

    def encode(self, image: np.ndarray):
        sections = [pack_plane(plane, self.variant) for plane in planes(image)]
        params = {"variant": self.variant, **({"dtype": "uint16"} if image.dtype == np.uint16 else {})}
        return {"rle": params}, sections

    def decode(self, header: Header, sections: list) -> np.ndarray:
        variant = header.params["rle"]["variant"]
        if len(sections) != header.channels:
            raise CorruptStreamError(f"{len(sections)} sections for {header.channels} channels")
        hw = (header.height, header.width)
        dtype = np.uint16 if header.params["rle"].get("dtype") == "uint16" else np.uint8
        return np.stack([unpack_plane(s, hw, variant, dtype) for s in sections], axis=-1)


class PalettePreset(Preset):
    """The paper's clustering stage as a codec: k colours (FAISS k-means++) + NK-RLE-coded labels.

    Exact for images with at most ``k`` colours; otherwise each pixel becomes its
    nearest centroid (the paper's clustered image).
    """

    name = "palette"
    stream_params = {"palette": {"k": Int(1, MAX_K), "variant": OneOf(*rle.VARIANTS)}}

    def __init__(self, quality: int, k: int = 256, variant: str = "nk", seed: int = 0):
        super().__init__(quality)
        k = check_int(k, "palette size k", 1, MAX_K)
        if variant not in rle.VARIANTS:
            raise ValueError(f"unknown NK-RLE variant {variant!r}; choose one of {rle.VARIANTS}")
        self.k, self.variant, self.seed = k, variant, seed

    def encode(self, image: np.ndarray):
        from ..coding import kmeans

        palette = kmeans.palette_fit(image, self.k, seed=self.seed)
        labels = kmeans.palette_apply(image, palette)
        values, keys = rle.encode_image(labels, self.variant)
        params = {"palette": {"k": int(palette.shape[0]), "variant": self.variant}}
        return params, [palette.tobytes(), rle.pack(values, keys)]

    def decode(self, header: Header, sections: list) -> np.ndarray:
        from ..coding.kmeans import label_dtype

        k, variant = header.params["palette"]["k"], header.params["palette"]["variant"]
        if len(sections) != 2 or len(sections[0]) != k * header.channels:
            raise CorruptStreamError("palette sections have the wrong count or size")
        palette = np.frombuffer(sections[0], np.uint8).reshape(k, header.channels)
        values, keys = rle.unpack(sections[1], label_dtype(k), max_pairs=header.num_pixels)
        if values.size and int(values.max()) >= k:
            raise CorruptStreamError(f"palette label {int(values.max())} out of range for k={k}")
        labels = rle.decode_image(values, keys, (header.height, header.width), variant)
        return palette[labels]
