"""The learned presets that code one latent: each is a :class:`~.base.LatentPreset` with
its latent codec (:mod:`nkcodec.coding.latent_codecs`); ``context`` and ``paper`` add
what they do before the latent codec (refinement, a palette)."""

from __future__ import annotations

import numpy as np

from ..coding.latent_codecs import ClusterLatent, ContextLatent, PaperLatent, RleLatent, ScalarLatent
from ..errors import check_int
from .base import LatentPreset

__all__ = ["ScalarPreset", "ContextPreset", "ScalarRlePreset", "ClusterPreset", "PaperPreset"]


class ScalarPreset(LatentPreset):
    """Analysis net, scalar rounding, per-channel ANS coding with the model's integer
    frequency tables (escapes for out-of-table values), synthesis net."""

    name = "scalar"
    latent_codec = ScalarLatent()


class ContextPreset(LatentPreset):
    """The default: as ``scalar``, but each latent channel is coded with tables chosen by,
    and around a mean predicted from, the channels coded before it and (version 2) its
    decoded spatial neighbours; needs a model with context tables (nk64-3 on).
    ``effort=1`` refines the latent for rate-distortion first (:mod:`nkcodec.nets.refine`,
    the same stream format)."""

    name = "context"
    latent_codec = ContextLatent()

    def __init__(self, quality: int, model: str | None = None, effort: int = 0, adaptive_filter: bool = False):
        from ..nets.refine import EFFORTS

        super().__init__(quality, model, adaptive_filter)
        self.effort = check_int(effort, "effort", choices=(0, *EFFORTS))
        self.batched_analysis = not self.effort  # refinement runs per image

    def analyse(self, image: np.ndarray) -> np.ndarray:
        if not self.effort:
            return super().analyse(image)
        from ..nets.refine import refine

        return refine(self.model, self.model.context_tables(self.quality), self.analysis_input(image), self.quality, self.effort)


class ScalarRlePreset(LatentPreset):
    """Ablation: NK-RLE (key = run**2) over the channel-major latent, then ANS coding of
    the run values and run lengths with integer tables carried in the stream."""

    name = "scalar-rle"
    latent_codec = RleLatent()


class ClusterPreset(LatentPreset):
    """Ablation: "cluster-based reconstruction", FAISS k-means over the latent vectors
    (k = 2**(quality+3)); the decoder looks the centroids up."""

    name = "cluster"
    latent_codec = ClusterLatent()


class PaperPreset(LatentPreset):
    """The paper as written: palette (k-means) -> autoencoder -> NK-RLE (key = run**2)
    over the channel-major latent, pairs written as varints, no entropy coder."""

    name = "paper"
    latent_codec = PaperLatent()
    flat_blocks = False  # the paper's pipeline as written

    def __init__(self, quality: int, model: str | None = None, k: int = 256):
        super().__init__(quality, model)  # the paper as written: no adaptive filter
        self.k = k
        self.latent_codec = PaperLatent(k)

    def analysis_input(self, image: np.ndarray) -> np.ndarray:
        from ..coding import kmeans

        rgb = super().analysis_input(image)
        pal = kmeans.palette_fit(rgb, self.k)
        return pal[kmeans.palette_apply(rgb, pal)]
