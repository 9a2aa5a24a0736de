"""The ``near-lossless`` preset: every sample within ``max_error`` of the original
(``max_error=0``: lossless).  The codec's ``quality`` is not used.

Version 5 (the default, ``base=None``) codes the image by prediction from the samples
already decoded around each one, with no model: any depth from 1 to 16 bits (``uint16``
arrays, or ``bits`` declared), 1 to 16 channels (:mod:`nkcodec.coding.nearlossless_v5`).
``effort`` (0 to 2) makes the encoder try more per tile; the decoder's work is the same.
Versions 2 and 3 (8 bits, 1 to 4 channels; :mod:`nkcodec.coding.nearlossless_v2`) and 4
(version 5's tiles with version 2's model; :mod:`nkcodec.coding.nearlossless_v4`) were
written before and are still decoded.
Version 1 (``base=q``) codes the ``context`` preset's image at quality ``q`` and then the
residual against it (:mod:`nkcodec.coding.nearlossless_v1`), as streams before version 2
did: it needs more bytes (``docs/lossless.md``).
"""

from __future__ import annotations

import numpy as np

from ..coding import nearlossless_v1, nearlossless_v2, nearlossless_v4, nearlossless_v5
from ..coding.latent_codecs import ContextLatent
from ..config import QUALITIES
from ..errors import CorruptStreamError, check_int
from ..format.container import Header
from ..format.limits import check_image
from ..format.schema import COUNT, IMAGE, Bool, Int, Versions
from .base import IMAGE_PARAMS, ModelOption, Preset, check_image_flags, image_parts, join_rgb, latent_hw, model_for, split_rgb, with_image

__all__ = ["NearLosslessPreset"]

_BASE_LATENT = ContextLatent()  # version 1's base image: the context preset's latent
_ANY_DEPTH = {nearlossless_v4.VERSION: nearlossless_v4, nearlossless_v5.VERSION: nearlossless_v5}  # versions of any depth and channel count


class NearLosslessPreset(ModelOption, Preset):
    """Bounded error: every sample within ``max_error`` of the original (see the module docstring)."""

    name = "near-lossless"
    stream_params = Versions(
        ("residual", "v"),
        {
            None: {
                **_BASE_LATENT.stream_params,
                "residual": {"base": Int(1, 8), "escapes": COUNT, "max_error": Int(0, nearlossless_v1.MAX_ERROR)},
                "image": IMAGE_PARAMS,
            },
            2: {"residual": {"v": Int(2, 2), "max_error": Int(0, nearlossless_v1.MAX_ERROR)}, "image": IMAGE},
            3: {"residual": {"v": Int(3, 3), "max_error": Int(0, nearlossless_v1.MAX_ERROR)}, "image": IMAGE},  # 2 with stored tiles
            # any depth and up to 16 channels; uint16 samples when bits > 8 or "wide" (no image
            # flags: the channel count says it all, and small images feel every byte)
            4: {"residual": {"v": Int(4, 4), "max_error": Int(0, nearlossless_v4.MAX_ERROR), "bits": Int(1, 16), "wide?": Bool()}},
            5: {"residual": {"v": Int(5, 5), "max_error": Int(0, nearlossless_v4.MAX_ERROR), "bits": Int(1, 16), "wide?": Bool()}},  # 4 with a stronger model
        },
    )
    max_channels = nearlossless_v4.MAX_CHANNELS

    def __init__(self, quality: int, model: str | None = None, max_error: int = 1, base: int | None = None, bits: int | None = None, effort: int = 0):
        super().__init__(quality, model)  # the model: version 1's base
        self.max_error = check_int(max_error, "max_error", 0, nearlossless_v4.MAX_ERROR)
        self.base = check_int(base, "base (None: no learned base; else a quality)", choices=QUALITIES, none=True)
        self.bits = check_int(bits, "bits (None: the dtype's, 8 or 16)", 1, 16, none=True)
        self.effort = check_int(effort, "effort (near-lossless: what the encoder tries per tile)", choices=nearlossless_v4.EFFORTS)
        if self.base is not None and (self.max_error > nearlossless_v1.MAX_ERROR or bits is not None or effort):
            raise ValueError(f"base (version 1) codes 8-bit images with max_error at most {nearlossless_v1.MAX_ERROR}, and no effort")

    def check_image(self, image) -> np.ndarray:
        """uint8 or uint16, 1 to 16 channels (version 1, ``base``: as the learned presets)."""
        if self.base is not None:
            return super().check_image(image)
        image = check_image(image, dtypes=(np.uint8, np.uint16), max_channels=self.max_channels)
        nearlossless_v4.check_bits(image, self.bits)
        return image

    @staticmethod
    def sample_depth(params: dict) -> tuple:
        """(bits per sample, whether decoded as uint16) of a stream's params (unchecked
        params give (8, False)): versions 4 and 5 name them, every other version is 8-bit."""
        res = params.get("residual") if isinstance(params, dict) else None
        if not isinstance(res, dict) or res.get("v") not in _ANY_DEPTH or type(res.get("bits")) is not int:
            return 8, False
        return res["bits"], bool(res.get("wide", res["bits"] > 8))

    @property
    def lossless(self) -> bool:
        return self.max_error == 0

    @property
    def model_id(self) -> int:
        return 0 if self.base is None else self.model.model_id

    def encode(self, image: np.ndarray):
        if self.base is None:
            bits = nearlossless_v4.sample_bits(image) if self.bits is None else self.bits  # checked by check_image
            parts = nearlossless_v5.encode(image, self.max_error, bits, effort=self.effort)
            residual = {"v": nearlossless_v5.VERSION, "max_error": self.max_error, "bits": bits}
            if image.dtype == np.uint16 and bits <= 8:
                residual["wide"] = True
            return {"residual": residual}, parts
        rgb, alpha, gray = split_rgb(image)
        m = self.model
        params, sections = _BASE_LATENT.encode(m, y := m.encode_latent(rgb, self.base), self.base)
        x_hat = m.decode_latent(y, self.base, rgb.shape[:2])  # the decoder's base image, exactly
        r_params, r_sections = nearlossless_v1.encode(rgb, x_hat, self.max_error)
        params["residual"] = {**r_params, "base": self.base}
        return with_image(params, sections + r_sections, alpha, gray)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        res = header.params["residual"]
        if header.channels > 4 and res.get("v") not in _ANY_DEPTH:
            raise CorruptStreamError(f"near-lossless version {res.get('v', 1)} codes at most 4 channels, the stream names {header.channels}")
        if res.get("v") is None:  # version 1: a learned base and its residual
            return self._decode_v1(header, sections)
        if header.model_id != 0:
            raise CorruptStreamError(f"near-lossless version {res['v']} uses no model, but the stream names model {header.model_id}")
        shape = (header.height, header.width, header.channels)
        if res["v"] in _ANY_DEPTH:
            return _ANY_DEPTH[res["v"]].decode(sections, shape, res["max_error"], *self.sample_depth(header.params))
        check_image_flags(header)
        stored = res["v"] == nearlossless_v2.VERSION_STORED
        return nearlossless_v2.decode(sections, shape, res["max_error"], stored=stored)

    @staticmethod
    def _decode_v1(header: Header, sections: list) -> np.ndarray:
        alpha, gray, sections = image_parts(header, sections)
        if len(sections) != 6:
            raise CorruptStreamError(f"near-lossless stream has {len(sections)} sections, expected 6")
        m, base = model_for(header), header.params["residual"]["base"]
        y = _BASE_LATENT.decode(m, header.params, sections[:2], latent_hw(header), base)
        x_hat = m.decode_latent(y, base, (header.height, header.width))
        return join_rgb(nearlossless_v1.decode(x_hat, header.params["residual"], sections[2:]), alpha, gray)
