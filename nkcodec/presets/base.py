"""What every preset is, and what the learned ones share.

A preset is one class: its ``name`` (its id in the stream is the format's,
:data:`nkcodec.format.container.PRESET_IDS`), the parameters its streams carry
(``stream_params``, checked by :func:`nkcodec.format.schema.validate` before
:meth:`Preset.decode` reads them), and ``encode(image) -> (params, sections)`` /
``decode(header, sections) -> image``.  :class:`~nkcodec.codec.Codec` adds the input
checks and the container around it.

:class:`LatentPreset` is a learned preset that codes one latent: the analysis net, a
latent codec (:mod:`nkcodec.coding.latent_codecs`), the synthesis net.  The batched
pipeline (:mod:`nkcodec.pipeline`) splits it into the nets' stage and the entropy stage.
"""

from __future__ import annotations

import json

import numpy as np

from ..coding import adaptive_filter, flat_blocks, rle
from ..config import LAMBDAS, LATENT_STRIDE, QUALITIES
from ..errors import CorruptStreamError
from ..format.container import Header
from ..format.limits import MAX_CHANNELS, check_image
from ..format.schema import IMAGE, Int

__all__ = ["Preset", "LatentPreset", "split_rgb", "join_rgb", "with_image", "image_parts", "check_image_flags", "latent_hw", "model_for", "ModelOption"]


class Preset:
    """The interface every preset class follows (see the module docstring)."""

    name: str = ""
    stream_params: dict = {}  # {stage: {key: type}}, or a schema.Versions
    lossless = False
    quality_ladder = False  # True: quality 1..8 is a rate-distortion ladder (compress_to_size needs one)
    model_id = 0  # the model a stream names (0: none)
    max_channels = MAX_CHANNELS  # the most channels its streams carry

    def __init__(self, quality: int):
        self.quality = quality

    def check_image(self, image) -> np.ndarray:
        """The image, checked as this preset takes it (uint8, 1 to 4 channels; see
        :func:`~nkcodec.format.limits.check_image`), or ValueError naming the problem."""
        return check_image(image)

    @classmethod
    def declared_params(cls):
        """The ``{stage: {key: type}}`` (or :class:`~nkcodec.format.schema.Versions`) its streams carry."""
        return cls.stream_params

    def encode(self, image: np.ndarray):
        """``(params, sections)`` of a checked image."""
        raise NotImplementedError

    def decode(self, header: Header, sections: list) -> np.ndarray:
        """The image of a stream whose params the schema has checked."""
        raise NotImplementedError


def planes(image: np.ndarray) -> np.ndarray:
    """Channel-major view C x H x W."""
    return image[None] if image.ndim == 2 else np.moveaxis(image, 2, 0)


def pack_plane(plane: np.ndarray, variant: str = "nk") -> bytes:
    """One uint8 (or uint16) plane, NK-RLE coded and varint-packed."""
    return rle.pack(*rle.encode_image(plane, variant))


def unpack_plane(data: bytes, hw: tuple, variant: str = "nk", dtype=np.uint8) -> np.ndarray:
    """Inverse of :func:`pack_plane`."""
    values, keys = rle.unpack(data, dtype, max_pairs=hw[0] * hw[1])
    return rle.decode_image(values, keys, hw, variant)


def split_rgb(image: np.ndarray):
    """(RGB uint8 HxWx3, alpha plane or None, was_gray): gray (HxW, HxWx1) and
    gray + alpha (HxWx2) go through the RGB nets as three equal channels."""
    if image.ndim == 2 or image.shape[2] <= 2:
        g = image.reshape(image.shape[0], image.shape[1], -1)
        alpha = g[..., 1] if g.shape[2] == 2 else None
        return np.repeat(g[..., :1], 3, axis=2), alpha, True
    if image.shape[2] == 4:
        return image[..., :3], image[..., 3], False
    return image, None, False


def join_rgb(rgb: np.ndarray, alpha, gray: bool) -> np.ndarray:
    """Inverse of :func:`split_rgb`."""
    if gray:
        rgb = np.round(rgb.astype(np.float32).mean(axis=2, keepdims=True)).astype(np.uint8)
    if alpha is not None:
        return np.concatenate([rgb, alpha[..., None]], axis=2)
    return rgb


# A learned stream's image flags; "alpha_v": how its alpha plane is coded (absent: 1, NK-RLE
# of the plane, one section; 2: the lossless predictive coder, one section per tile of it).
IMAGE_PARAMS = {**IMAGE, "alpha_v?": Int(2, 2)}


def with_image(params: dict, sections: list, alpha, gray: bool):
    """A learned stream's (params, sections): the image flags added, and the alpha plane
    last, losslessly, by whichever of its two coders gives fewer bytes."""
    params["image"] = {"gray": gray, "alpha": alpha is not None}
    if alpha is not None:
        from ..coding import nearlossless_v2

        runs = pack_plane(alpha)
        predicted = nearlossless_v2.encode(alpha, 0) if len(runs) > 64 else None  # a flat alpha: runs are the least
        if predicted is not None and sum(len(p) for p in predicted) < len(runs):
            params["image"]["alpha_v"] = 2
            sections.extend(predicted)
        else:
            sections.append(runs)
    return params, sections


def check_image_flags(header: Header) -> tuple:
    """A stream's (gray, alpha) image flags, which must agree with its channel count."""
    gray, has_alpha = header.params["image"]["gray"], header.params["image"]["alpha"]
    if has_alpha != (header.channels in (2, 4)) or gray != (header.channels <= 2):
        raise CorruptStreamError("image flags disagree with the channel count")
    return gray, has_alpha


def image_parts(header: Header, sections: list):
    """Inverse of :func:`with_image`: (alpha plane or None, gray, the other sections)."""
    if header.quality not in QUALITIES:
        raise CorruptStreamError(f"quality {header.quality} outside {QUALITIES[0]}..{QUALITIES[-1]}")
    gray, has_alpha = check_image_flags(header)
    alpha = None
    version = header.params["image"].get("alpha_v")
    if version is not None and not has_alpha:
        raise CorruptStreamError("an alpha coder named for an image with no alpha")
    if has_alpha:
        hw = (header.height, header.width)
        if version == 2:
            from ..coding import nearlossless_v2

            n = len(nearlossless_v2.tiles(*hw))
            if len(sections) < n:
                raise CorruptStreamError(f"{len(sections)} sections for an alpha plane of {n} tiles")
            alpha = nearlossless_v2.decode(sections[-n:], (*hw, 1), 0)[..., 0]
            sections = sections[:-n]
        else:
            if not sections:
                raise CorruptStreamError("alpha section missing")
            alpha = unpack_plane(sections[-1], hw)
            sections = sections[:-1]
    return alpha, gray, sections


def latent_hw(header: Header) -> tuple:
    """The latent's (h, w) for the stream's image size."""
    return -(-header.height // LATENT_STRIDE), -(-header.width // LATENT_STRIDE)


def model_for(header: Header):
    """The shipped model a stream names (RetiredModelError, CorruptStreamError)."""
    from .. import zoo

    return zoo.model_for_id(header.model_id)


FLAT_TOLERANCE = 1  # largest error a decoded constant 8x8 block may have; one further off is signalled


class ModelOption:
    """The ``model`` option of the presets that use a learned model: a shipped model's
    name (default: ``zoo.DEFAULT_MODEL``), loaded on first use (a codec that never
    codes needs no weights)."""

    def __init__(self, quality: int, model: str | None = None):
        from .. import zoo

        super().__init__(quality)
        self.model_name = model or zoo.DEFAULT_MODEL
        self._model = None

    @property
    def model(self):
        """The loaded model (:class:`~nkcodec.nets.runtime.ModelRuntime`)."""
        if self._model is None:
            from .. import zoo

            self._model = zoo.load_model(self.model_name)
        return self._model


class LatentPreset(ModelOption, Preset):
    """A learned preset that codes one latent, the analysis of the image's RGB
    (:meth:`analysis_input`), with its ``latent_codec``, and decodes by the synthesis
    of that latent.  Its coding splits into the nets and the entropy coding
    (:meth:`encode_entropy`, :meth:`decode_entropy`), which the batched pipeline runs
    in device batches and in a pool of CPU threads; :meth:`encode` and :meth:`decode`
    are the same two steps for one image, so both paths give the same bytes and pixels.

    With ``flat_blocks`` (all but ``paper``), a constant image is coded as its colour
    alone, with no latent, and every constant 8x8 block that the synthesis would bring
    back more than :data:`FLAT_TOLERANCE` off is signalled and put back exactly
    (:mod:`nkcodec.coding.flat_blocks`, the optional ``flat`` stage).  Streams without
    such blocks are the bytes they always were.

    ``adaptive_filter=True`` (all but ``paper``) also fits, per image, an exact integer
    filter after the synthesis (:mod:`nkcodec.coding.adaptive_filter`, the optional
    ``filter`` stage), sent only where it pays by the nets' own objective."""

    quality_ladder = True
    latent_codec = None  # a LatentCodec instance: set by each subclass
    batched_analysis = True  # analyse() is the model's encode_latent of analysis_input(), so it batches
    flat_blocks = True

    @classmethod
    def declared_params(cls) -> dict:
        latent = cls.latent_codec.stream_params
        if not cls.flat_blocks:
            return {**latent, "image": IMAGE_PARAMS}
        # the latent's stages are absent from a constant image's stream (decode_entropy checks which go together)
        optional_latent = {f"{stage}?": keys for stage, keys in latent.items()}
        return {**optional_latent, "image": IMAGE_PARAMS, "filter?": adaptive_filter.STREAM_PARAMS, "flat?": flat_blocks.STREAM_PARAMS}

    def __init__(self, quality: int, model: str | None = None, adaptive_filter: bool = False):
        super().__init__(quality, model)
        if not isinstance(adaptive_filter, bool) or (adaptive_filter and not self.flat_blocks):
            raise ValueError(f"adaptive_filter must be True or False (and the {self.name} preset takes none), got {adaptive_filter!r}")
        self.adaptive_filter = adaptive_filter

    @property
    def model_id(self) -> int:
        return self.model.model_id

    def analysis_input(self, image: np.ndarray) -> np.ndarray:
        """The RGB image the analysis net sees."""
        return split_rgb(image)[0]

    def analyse(self, image: np.ndarray) -> np.ndarray:
        """The latent to code (the nets' stage of encoding)."""
        return self.model.encode_latent(self.analysis_input(image), self.quality)

    def encode_entropy(self, image: np.ndarray, y: np.ndarray | None):
        """(params, sections) of ``image`` whose latent :meth:`analyse` gave ``y``
        (None: not needed, as for a constant image)."""
        rgb, alpha, gray = split_rgb(image)
        if self.flat_blocks:
            colour = flat_blocks.constant_colour(rgb)
            if colour is not None:  # one colour: no latent at all
                return with_image({"flat": {"rgb": colour}}, [], alpha, gray)
        params, sections = self.latent_codec.encode(self.model, y, self.quality)
        x_hat = None  # the decoder's image, exactly: computed where a decision needs it
        if self.adaptive_filter:
            x_hat = self.model.decode_latent(y, self.quality, rgb.shape[:2])
            coefs = adaptive_filter.fit(x_hat, rgb)
            filtered = adaptive_filter.apply(x_hat, coefs)
            filter_params, extra = adaptive_filter.encode(coefs)
            if self._pays(rgb, x_hat, filtered, 8 * (len(json.dumps({"filter": filter_params})) + 4 + len(extra[0]))):
                params["filter"] = filter_params
                sections = sections + extra
                x_hat = filtered
        if self.flat_blocks:
            labels, palette = flat_blocks.find(rgb)
            if palette.shape[0]:
                # a constant block the decoder already brings back within FLAT_TOLERANCE costs
                # nothing; the others are signalled and put back exactly
                if x_hat is None:
                    x_hat = self.model.decode_latent(y, self.quality, rgb.shape[:2])
                labels, palette = flat_blocks.keep(labels, palette, flat_blocks.block_errors(x_hat, rgb) > FLAT_TOLERANCE)
            if palette.shape[0]:
                params["flat"], extra = flat_blocks.encode(labels, palette)
                sections = sections + extra
        return with_image(params, sections, alpha, gray)

    def _pays(self, rgb: np.ndarray, before: np.ndarray, after: np.ndarray, bits: int) -> bool:
        """Whether ``after`` is worth ``bits`` more than ``before`` by the nets' own objective:
        ``lambda * MSE + bpp``, with MSE of 0..255 samples, at this quality's lambda."""
        target = rgb.astype(np.int64)
        gain = float(((before.astype(np.int64) - target) ** 2).sum() - ((after.astype(np.int64) - target) ** 2).sum())
        pixels = rgb.shape[0] * rgb.shape[1]
        return LAMBDAS[self.quality - 1] * gain / (3 * pixels) > bits / pixels

    def encode(self, image: np.ndarray):
        constant = self.flat_blocks and flat_blocks.constant_colour(split_rgb(image)[0]) is not None
        return self.encode_entropy(image, None if constant else self.analyse(image))

    def decode_entropy(self, header: Header, sections: list):
        """Everything of decoding but the synthesis: (latent (h, w, M), alpha, gray, post),
        where ``post`` is (filter coefficients or None, flat blocks or None), what is done
        after the synthesis; a constant image has no latent (None) and its colour as ``post``."""
        alpha, gray, sections = image_parts(header, sections)
        params = header.params
        flat = params.get("flat")
        if flat is not None and "rgb" in flat:
            if set(flat) != {"rgb"} or any(stage in params for stage in [*self.latent_codec.stream_params, "filter"]) or sections:
                raise CorruptStreamError("a constant image's stream has more than its colour")
            return None, alpha, gray, flat["rgb"]
        for stage in self.latent_codec.stream_params:
            if stage not in params:
                raise CorruptStreamError(f"missing parameter {stage}")
        blocks = None
        if flat is not None:
            for key in ("blocks", "size"):
                if key not in flat:
                    raise CorruptStreamError(f"missing parameter flat.{key}")
            if len(sections) < 2:
                raise CorruptStreamError("flat-block sections missing")
            blocks = flat_blocks.decode(flat, sections[-2:], (header.height, header.width))
            sections = sections[:-2]
        coefs = None
        if "filter" in params:
            if not sections:
                raise CorruptStreamError("filter section missing")
            coefs = adaptive_filter.decode(params["filter"], sections[-1:])
            sections = sections[:-1]
        y = self.latent_codec.decode(model_for(header), params, sections, latent_hw(header), header.quality)
        return y, alpha, gray, (coefs, blocks)

    @staticmethod
    def decode_finish(rgb: np.ndarray | None, alpha, gray: bool, post, hw: tuple) -> np.ndarray:
        """The image (h, w) from the synthesis' RGB (None: none ran) and what :meth:`decode_entropy` gave."""
        if rgb is None:  # a constant image: post is its colour
            rgb = np.empty((*hw, 3), np.uint8)
            rgb[...] = np.asarray(post, np.uint8)
        else:
            coefs, blocks = post
            if coefs is not None:
                rgb = adaptive_filter.apply(rgb, coefs)
            if blocks is not None:
                rgb = flat_blocks.apply(rgb, *blocks)
        return join_rgb(rgb, alpha, gray)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        y, alpha, gray, post = self.decode_entropy(header, sections)
        hw = (header.height, header.width)
        rgb = None if y is None else model_for(header).decode_latent(y, header.quality, hw)
        return self.decode_finish(rgb, alpha, gray, post, hw)
