"""A Pillow plugin: after ``import nkcodec.pillow``, ``Image.open("x.nkc")``
decodes and ``im.save("x.nkc", quality=4)`` encodes (``preset=`` and the
preset's options as further keywords).  ``.nkc`` is registered as the
extension of format ``NKC``, MIME type ``image/x-nkc``.  Pillow has no hook
that loads plugins by itself, hence the import.

Modes: L, LA, RGB and RGBA are coded as they are; 1 and P are saved as L or
RGB(A) after Pillow's own conversion.  ``I;16`` (16-bit gray) is coded exactly by the
``near-lossless`` preset (``preset="near-lossless", max_error=0``) and opens as ``I;16``;
Pillow has no mode for deeper colour or more than 4 channels, which ``nkcodec.decompress``
decodes.

Examples
--------
>>> import io, numpy as np
>>> from PIL import Image
>>> import nkcodec.pillow
>>> buf = io.BytesIO()
>>> Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(buf, format="NKC", preset="rle")
>>> im = Image.open(io.BytesIO(buf.getvalue()))
>>> im.format, im.mode, im.size
('NKC', 'RGB', (6, 4))
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

from .format.container import MAGIC, VERSIONS
from .imageio import MODES

__all__ = ["NkcImageFile", "FORMAT", "MIME"]

FORMAT, MIME = "NKC", "image/x-nkc"


def _accept(prefix: bytes) -> bool:
    return prefix[:3] == MAGIC and len(prefix) > 3 and prefix[3] in VERSIONS


class NkcImageFile(ImageFile.ImageFile):
    """An ``.nkc`` stream opened by Pillow: the header is read at open, the
    pixels are decoded by nkcodec on ``load()``."""

    format = FORMAT
    format_description = "nkcodec learned image"

    def _open(self) -> None:
        from .format.container import unpack_container

        self._data = self.fp.read()
        header, _ = unpack_container(self._data)  # CorruptStreamError (a ValueError) for a bad stream
        self._size = (header.width, header.height)
        from .presets.near_lossless import NearLosslessPreset

        wide = header.preset == "near-lossless" and NearLosslessPreset.sample_depth(header.params)[1]
        if wide or header.channels not in MODES:
            if not (wide and header.channels == 1):
                depth = "16-bit " if wide else ""
                raise ValueError(f"Pillow has no mode for a {depth}image of {header.channels} channels; decode it with nkcodec.decompress")
            self._mode = "I;16"
        else:
            self._mode = MODES[header.channels]
        self.info["nkcodec"] = {"preset": header.preset, "quality": header.quality, "model_id": header.model_id}
        self.tile = []  # no Pillow decoder: load() below decodes

    def load(self):
        if getattr(self, "_data", None) is not None:
            from .codec import decompress

            pixels = decompress(self._data)
            self._data = None
            pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
            self.im = (Image.fromarray(pixels) if self.mode == "I;16" else Image.fromarray(pixels, self.mode)).im  # uint16: I;16
        return Image.Image.load(self)


def _save(im: Image.Image, fp, filename) -> None:
    from .codec import compress
    from .presets import OPTIONS

    info = dict(im.encoderinfo)
    quality, preset = info.pop("quality", 4), info.pop("preset", "default")
    options = {k: v for k, v in info.items() if k in OPTIONS}  # Pillow adds keys of its own to encoderinfo
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):  # 16-bit gray: near-lossless codes it as it is
        if preset != "near-lossless":
            raise ValueError(f"mode {im.mode} has 16 bits per sample: save it with preset='near-lossless' (max_error=0: exactly)")
        fp.write(compress(np.asarray(im).astype(np.uint16), quality, preset, **options))
        return
    if im.mode in ("F",) or im.mode.startswith("I"):  # 32-bit samples: converting would clip them
        raise ValueError(f"nkcodec codes 8- and 16-bit images; mode {im.mode} has more bits per sample (convert it yourself if 16 bits will do)")
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode in ("PA", "RGBa", "La") else "L" if im.mode == "1" else "RGB")
    data = compress(np.asarray(im), quality, preset, **options)
    fp.write(data)


Image.register_open(FORMAT, NkcImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".nkc")
Image.register_mime(FORMAT, MIME)
