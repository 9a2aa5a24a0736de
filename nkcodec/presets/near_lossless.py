"""The ``near-lossless`` preset: every sample within ``max_error`` of the original
(``max_error=0``: lossless).  The codec's ``quality`` is not used.

Version 2 (the default, ``base=None``) codes the image by prediction from the samples
already decoded around each one (:mod:`nkcodec.coding.nearlossless_v2`), with no model.
Version 1 (``base=q``) codes the ``context`` preset's image at quality ``q`` and then the
residual against it (:mod:`nkcodec.coding.nearlossless_v1`), as streams before version 2
did: it needs more bytes (``docs/lossless.md``).
"""

from __future__ import annotations

import numpy as np

from ..coding import nearlossless_v1, nearlossless_v2
from ..coding.latent_codecs import ContextLatent
from ..config import QUALITIES
from ..errors import CorruptStreamError, check_int
from ..format.container import Header
from ..format.schema import COUNT, IMAGE, Int, Versions
from .base import IMAGE_PARAMS, ModelOption, Preset, check_image_flags, image_parts, join_rgb, latent_hw, model_for, split_rgb, with_image

__all__ = ["NearLosslessPreset"]

_BASE_LATENT = ContextLatent()  # version 1's base image: the context preset's latent


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
        },
    )

    def __init__(self, quality: int, model: str | None = None, max_error: int = 1, base: int | None = None):
        super().__init__(quality, model)  # the model: version 1's base
        self.max_error = nearlossless_v1.check_max_error(max_error)
        self.base = check_int(base, "base (None: no learned base; else a quality)", choices=QUALITIES, none=True)

    @property
    def lossless(self) -> bool:
        return self.max_error == 0

    @property
    def model_id(self) -> int:
        return 0 if self.base is None else self.model.model_id

    def encode(self, image: np.ndarray):
        channels = 1 if image.ndim == 2 else image.shape[2]
        if self.base is None:
            parts, stored = nearlossless_v2.with_stored(image, nearlossless_v2.encode(image, self.max_error))
            version = nearlossless_v2.VERSION_STORED if stored else nearlossless_v2.VERSION  # unchanged bytes where nothing is stored
            params = {"residual": {"v": version, "max_error": self.max_error}, "image": {"gray": channels <= 2, "alpha": channels in (2, 4)}}
            return params, parts
        rgb, alpha, gray = split_rgb(image)
        m = self.model
        params, sections = _BASE_LATENT.encode(m, y := m.encode_latent(rgb, self.base), self.base)
        x_hat = m.decode_latent(y, self.base, rgb.shape[:2])  # the decoder's base image, exactly
        r_params, r_sections = nearlossless_v1.encode(rgb, x_hat, self.max_error)
        params["residual"] = {**r_params, "base": self.base}
        return with_image(params, sections + r_sections, alpha, gray)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        res = header.params["residual"]
        if res.get("v") is None:  # version 1: a learned base and its residual
            return self._decode_v1(header, sections)
        check_image_flags(header)
        if header.model_id != 0:
            raise CorruptStreamError(f"near-lossless version 2 uses no model, but the stream names model {header.model_id}")
        stored = res["v"] == nearlossless_v2.VERSION_STORED
        return nearlossless_v2.decode(sections, (header.height, header.width, header.channels), res["max_error"], stored=stored)

    @staticmethod
    def _decode_v1(header: Header, sections: list) -> np.ndarray:
        alpha, gray, sections = image_parts(header, sections)
        if len(sections) != 6:
            raise CorruptStreamError(f"near-lossless stream has {len(sections)} sections, expected 6")
        m, base = model_for(header), header.params["residual"]["base"]
        y = _BASE_LATENT.decode(m, header.params, sections[:2], latent_hw(header), base)
        x_hat = m.decode_latent(y, base, (header.height, header.width))
        return join_rgb(nearlossless_v1.decode(x_hat, header.params["residual"], sections[2:]), alpha, gray)
