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
from .container import PRESET_IDS, Header, pack_container, unpack_container
from .entropy import MAX_LATENT
from .config import LATENT_STRIDE, QUALITIES
from .errors import CorruptStreamError
from .imageio import check_image

__all__ = ["Codec", "compress", "compress_many", "compress_to_size", "decompress", "decompress_many", "PRESETS", "check_image", "check_decoded", "decoder_for", "LatentPreset"]



def _planes(image: np.ndarray) -> np.ndarray:
    """Channel-major view C x H x W."""
    return image[None] if image.ndim == 2 else np.moveaxis(image, 2, 0)


def _pack_plane(plane: np.ndarray, variant: str = "nk") -> bytes:
    return rle.pack(*rle.encode_image(plane, variant))


def _unpack_plane(data: bytes, hw: tuple, variant: str = "nk", dtype=np.uint8) -> np.ndarray:
    values, keys = rle.unpack(data, dtype, max_pairs=hw[0] * hw[1])
    return rle.decode_image(values, keys, hw, variant)


class RlePreset:
    """Lossless: each channel plane NK-RLE coded (row-major scan), then varint-packed."""

    name = "rle"
    lossless = True
    quality_ladder = False  # ignores the codec's quality (compress_to_size needs a ladder)

    def __init__(self, quality: int, variant: str = "nk"):
        self.variant = variant

    def encode(self, image: np.ndarray):
        sections = [_pack_plane(plane, self.variant) for plane in _planes(image)]
        return {"rle": {"variant": self.variant}}, sections

    def decode(self, header: Header, sections: list) -> np.ndarray:
        variant = header.params["rle"]["variant"]  # checked by schema.validate, as every param below
        if len(sections) != header.channels:
            raise CorruptStreamError(f"{len(sections)} sections for {header.channels} channels")
        hw = (header.height, header.width)
        return np.stack([_unpack_plane(s, hw, variant) for s in sections], axis=-1)


class PalettePreset:
    """The paper's clustering stage as a codec: k colours (FAISS k-means++) + NK-RLE-coded labels.

    Exact for images with at most ``k`` colours; otherwise each pixel becomes its
    nearest centroid (the paper's clustered image).
    """

    name = "palette"
    lossless = False
    quality_ladder = False

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
        from .kmeans import label_dtype

        k, variant = header.params["palette"]["k"], header.params["palette"]["variant"]
        if len(sections) != 2 or len(sections[0]) != k * header.channels:
            raise CorruptStreamError("palette sections have the wrong count or size")
        palette = np.frombuffer(sections[0], np.uint8).reshape(k, header.channels)
        dtype = label_dtype(k)
        values, keys = rle.unpack(sections[1], dtype, max_pairs=header.num_pixels)
        if values.size and int(values.max()) >= k:
            raise CorruptStreamError(f"palette label {int(values.max())} out of range for k={k}")
        labels = rle.decode_image(values, keys, (header.height, header.width), variant)
        return palette[labels]


def _split_rgb(image: np.ndarray):
    """(RGB uint8 HxWx3, alpha plane or None, was_gray): gray (HxW, HxWx1) and
    gray + alpha (HxWx2) go through the RGB nets as three equal channels."""
    if image.ndim == 2 or image.shape[2] <= 2:
        g = image.reshape(image.shape[0], image.shape[1], -1)
        alpha = g[..., 1] if g.shape[2] == 2 else None
        return np.repeat(g[..., :1], 3, axis=2), alpha, True
    if image.shape[2] == 4:
        return image[..., :3], image[..., 3], False
    return image, None, False


def _join_rgb(rgb: np.ndarray, alpha, gray: bool) -> np.ndarray:
    if gray:
        rgb = np.round(rgb.astype(np.float32).mean(axis=2, keepdims=True)).astype(np.uint8)
    if alpha is not None:
        return np.concatenate([rgb, alpha[..., None]], axis=2)
    return rgb


class _LearnedBase:
    """Shared by the learned presets: model loading, RGB/alpha/gray handling."""

    lossless = False
    quality_ladder = True  # quality 1..8 picks the model's rate-distortion trade-off

    def __init__(self, quality: int, model: str | None = None):
        from . import zoo

        self.quality = quality
        self.model_name = model or zoo.DEFAULT_MODEL
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from . import zoo

            self._model = zoo.load_model(self.model_name)
        return self._model

    @property
    def model_id(self) -> int:
        return self.model.model_id

    @staticmethod
    def _model_for(header: Header):
        from . import zoo

        return zoo.model_for_id(header.model_id)

    def encode(self, image: np.ndarray):
        rgb, alpha, gray = _split_rgb(image)
        params, sections = self._encode_rgb(rgb)
        return _with_image(params, sections, alpha, gray)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        alpha, gray, sections = _image_parts(header, sections)
        rgb = self._decode_rgb(header, sections, self._model_for(header))
        return _join_rgb(rgb, alpha, gray)


def _with_image(params: dict, sections: list, alpha, gray: bool):
    """A learned stream's (params, sections): the image flags added, and the alpha plane last."""
    params["image"] = {"gray": gray, "alpha": alpha is not None}
    if alpha is not None:
        sections.append(_pack_plane(alpha))
    return params, sections


def _check_image_flags(header: Header) -> tuple:
    """A learned stream's (gray, alpha) flags, which must agree with its channel count."""
    gray, has_alpha = header.params["image"]["gray"], header.params["image"]["alpha"]
    if has_alpha != (header.channels in (2, 4)) or gray != (header.channels <= 2):
        raise CorruptStreamError("image flags disagree with the channel count")
    return gray, has_alpha


def _image_parts(header: Header, sections: list):
    """Inverse of :func:`_with_image`: (alpha plane or None, gray, the other sections)."""
    if header.quality not in QUALITIES:
        raise CorruptStreamError(f"quality {header.quality} outside {QUALITIES[0]}..{QUALITIES[-1]}")
    gray, has_alpha = _check_image_flags(header)
    alpha = None
    if has_alpha:
        if not sections:
            raise CorruptStreamError("alpha section missing")
        alpha = _unpack_plane(sections[-1], (header.height, header.width))
        sections = sections[:-1]
    return alpha, gray, sections


class LatentPreset(_LearnedBase):
    """A learned preset that codes one latent, the analysis of the image's RGB
    (:meth:`analysis_input`), and decodes by the synthesis of that latent,
    with nothing else between.  Its coding splits into the nets and the
    entropy coding (:meth:`encode_entropy`, :meth:`decode_entropy`), which the
    batched pipeline (:mod:`nkcodec.batch`) runs in device batches and in a
    pool of CPU threads; :meth:`encode` and :meth:`decode` are the same two
    steps for one image, so both paths give the same bytes and pixels."""

    batched_analysis = True  # analyse() is the model's encode_latent of analysis_input(), so it batches

    def _code(self, y: np.ndarray):
        """The latent's entropy coding: (params, sections)."""
        raise NotImplementedError

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        """The decoded latent (h, w, M) from the sections (alpha removed)."""
        raise NotImplementedError

    def analysis_input(self, image: np.ndarray) -> np.ndarray:
        """The RGB image the analysis net sees."""
        return _split_rgb(image)[0]

    def analyse(self, image: np.ndarray) -> np.ndarray:
        """The latent to code (the nets' stage of encoding)."""
        return self.model.encode_latent(self.analysis_input(image), self.quality)

    def encode_entropy(self, image: np.ndarray, y: np.ndarray):
        """(params, sections) of ``image`` whose latent :meth:`analyse` gave ``y``."""
        _, alpha, gray = _split_rgb(image)
        params, sections = self._code(y)
        return _with_image(params, sections, alpha, gray)

    def encode(self, image: np.ndarray):
        return self.encode_entropy(image, self.analyse(image))

    def decode_entropy(self, header: Header, sections: list):
        """Everything of decoding but the synthesis: (latent (h, w, M), alpha, gray)."""
        alpha, gray, sections = _image_parts(header, sections)
        return self._latent(header, sections, self._model_for(header)), alpha, gray

    @staticmethod
    def decode_finish(rgb: np.ndarray, alpha, gray: bool) -> np.ndarray:
        """The image from the synthesis' RGB and what :meth:`decode_entropy` gave."""
        return _join_rgb(rgb, alpha, gray)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        y, alpha, gray = self.decode_entropy(header, sections)
        rgb = self._model_for(header).decode_latent(y, header.quality, (header.height, header.width))
        return self.decode_finish(rgb, alpha, gray)


def _code_latent(m, y: np.ndarray, quality: int):
    """ANS-code an int latent (..., M) channel by channel with the model's integer
    tables for ``quality``; out-of-table values escape.  Returns (params, [ans bytes, escape bytes])."""
    from .entropy import encode_symbols, pack_varints, to_symbols

    tables = m.tables_for(quality)
    lo = tables["lo"].astype(np.int64)[:, None]
    size = tables["size"].astype(np.int64)[:, None]
    vals = np.moveaxis(y.reshape(-1, y.shape[-1]), 1, 0).astype(np.int64)  # (M, n)
    idx, esc = to_symbols(vals, lo, size)
    data = encode_symbols(list(idx), m.int_tables(quality))
    return {"escapes": int(esc.sum())}, [data, pack_varints(vals[esc])]


def _decode_latent_syms(m, params: dict, sections: list, n: int, quality: int) -> np.ndarray:
    """Inverse of :func:`_code_latent`: (n, M) int32."""
    from .entropy import MAX_LATENT, check_length, decode_symbols, escape_count, from_symbols, unpack_varints

    n_esc = escape_count(params, n * m.latent_channels)
    check_length(len(sections[0]), n * float(m.int_tables(quality).min_bits().sum()), "latent section")
    idx = np.stack(decode_symbols(sections[0], m.int_tables(quality), [n] * m.latent_channels)).astype(np.int64)
    tables = m.tables_for(quality)
    y, esc = from_symbols(idx, tables["lo"].astype(np.int64)[:, None], tables["size"].astype(np.int64)[:, None])
    if int(esc.sum()) != n_esc:
        raise CorruptStreamError("escape count disagrees with the decoded symbols")
    if n_esc:
        y[esc] = unpack_varints(sections[1], n_esc)
    elif sections[1]:
        raise CorruptStreamError("unexpected escape data")
    if np.abs(y).max(initial=0) > MAX_LATENT:
        raise CorruptStreamError("latent value out of range")
    return np.ascontiguousarray(y.T).astype(np.int32)


def _latent_hw(header: Header) -> tuple:
    return -(-header.height // LATENT_STRIDE), -(-header.width // LATENT_STRIDE)


class ScalarPreset(LatentPreset):
    """Learned codec: analysis net, scalar rounding, per-channel ANS coding with the
    model's integer frequency tables (escapes for out-of-table values), synthesis net."""

    name = "scalar"

    def _code(self, y: np.ndarray):
        params, sections = _code_latent(self.model, y, self.quality)
        return {"latent": params}, sections

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        if len(sections) != 2:
            raise CorruptStreamError(f"scalar stream has {len(sections)} sections, expected 2")
        h, w = _latent_hw(header)
        y = _decode_latent_syms(m, header.params["latent"], sections, h * w, header.quality)
        return y.reshape(h, w, -1)


class ContextPreset(LatentPreset):
    """Learned codec, the default: as ``scalar``, but each latent channel is coded
    with tables chosen by, and around a mean predicted from, the channels coded
    before it and (version 2) its decoded spatial neighbours
    (:mod:`nkcodec.context`); needs a model with context tables (nk64-3 on).
    Streams name their context model version, so older ones keep decoding."""

    name = "context"

    def __init__(self, quality: int, model: str | None = None, effort: int = 0):
        from .refine import EFFORTS

        super().__init__(quality, model)
        if isinstance(effort, bool) or effort not in (0, *EFFORTS):
            raise ValueError(f"effort must be one of {[0, *EFFORTS]}, got {effort!r}")
        self.effort = int(effort)
        self.batched_analysis = not self.effort  # refinement runs per image

    def analyse(self, image: np.ndarray) -> np.ndarray:
        if not self.effort:
            return super().analyse(image)
        from .refine import refine

        return refine(self.model, self.model.context_tables(self.quality), self.analysis_input(image), self.quality, self.effort)

    def _code(self, y: np.ndarray):
        from .context import code_latent

        params, sections = code_latent(self.model.context_tables(self.quality), y)
        return {"latent": params}, sections

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        h, w = _latent_hw(header)
        return _context_latent(header, sections, m, header.quality).reshape(h, w, -1)


def encode_context(m, rgb: np.ndarray, quality: int, effort: int = 0):
    """The ``context`` preset's (params, sections, coded latent) at ``quality``;
    ``effort`` 1 refines the latent first (:mod:`nkcodec.refine`, same stream format)."""
    from .context import code_latent

    ct = m.context_tables(quality)
    if effort:
        from .refine import refine

        y = refine(m, ct, rgb, quality, effort)
    else:
        y = m.encode_latent(rgb, quality)
    params, sections = code_latent(ct, y)
    return params, sections, y


def _context_latent(header: Header, sections: list, m, quality: int) -> np.ndarray:
    """The latent (h*w, M) of the ``context`` preset's two sections, coded at ``quality``."""
    from .context import decode_latent, stream_version

    if len(sections) != 2:
        raise CorruptStreamError(f"context stream has {len(sections)} sections, expected 2")
    params = header.params["latent"]
    try:
        ct = m.context_tables(quality, stream_version(params))
    except ValueError as e:
        raise CorruptStreamError(str(e)) from None
    return decode_latent(ct, params, sections, _latent_hw(header))


def decode_context(header: Header, sections: list, m, quality: int) -> np.ndarray:
    """The ``context`` preset's image from its two sections, coded at ``quality``."""
    h, w = _latent_hw(header)
    y = _context_latent(header, sections, m, quality)
    return m.decode_latent(y.reshape(h, w, -1), quality, (header.height, header.width))


class NearLosslessPreset(_LearnedBase):
    """Bounded error: every sample within ``max_error`` of the original
    (``max_error=0``: lossless).  The codec's ``quality`` is not used.

    By default (``base=None``) the image is coded by prediction from the samples
    already decoded around each one (:mod:`nkcodec.lossless`, residual version 2),
    with no model.  ``base=q`` codes the ``context`` preset's image at quality ``q``
    and then the residual against it (:mod:`nkcodec.residual`, version 1), as
    streams before version 2 did: it needs more bytes (see ``docs/lossless.md``)."""

    name = "near-lossless"
    quality_ladder = False  # its error bound is the ``max_error`` option

    def __init__(self, quality: int, model: str | None = None, max_error: int = 1, base: int | None = None):
        from .residual import check_max_error

        super().__init__(quality, model)
        max_error = check_max_error(max_error)
        if base is not None and (isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base not in QUALITIES):
            raise ValueError(f"base must be None (no learned base) or a quality in 1..8, got {base!r}")
        self.max_error, self.base = int(max_error), None if base is None else int(base)

    @property
    def lossless(self) -> bool:
        return self.max_error == 0

    @property
    def model_id(self) -> int:
        return 0 if self.base is None else self.model.model_id

    def encode(self, image: np.ndarray):
        if self.base is not None:
            return super().encode(image)
        from . import lossless

        channels = 1 if image.ndim == 2 else image.shape[2]
        params = {"residual": {"v": lossless.VERSION, "max_error": self.max_error}, "image": {"gray": channels <= 2, "alpha": channels in (2, 4)}}
        return params, lossless.encode(image, self.max_error)

    def decode(self, header: Header, sections: list) -> np.ndarray:
        res = header.params["residual"]
        if res.get("v") is None:  # version 1: a learned base and its residual
            return super().decode(header, sections)
        from . import lossless

        _check_image_flags(header)
        if header.model_id != 0:
            raise CorruptStreamError(f"near-lossless version 2 uses no model, but the stream names model {header.model_id}")
        return lossless.decode(sections, (header.height, header.width, header.channels), res["max_error"])

    def _encode_rgb(self, rgb: np.ndarray):
        from . import residual

        params, sections, y = encode_context(self.model, rgb, self.base)
        x_hat = self.model.decode_latent(y, self.base, rgb.shape[:2])  # the decoder's base image, exactly
        r_params, r_sections = residual.encode(rgb, x_hat, self.max_error)
        return {"latent": params, "residual": {**r_params, "base": self.base}}, sections + r_sections

    def _decode_rgb(self, header: Header, sections: list, m) -> np.ndarray:
        from . import residual

        if len(sections) != 6:
            raise CorruptStreamError(f"near-lossless stream has {len(sections)} sections, expected 6")
        base = header.params["residual"]["base"]
        x_hat = decode_context(header, sections[:2], m, base)
        return residual.decode(x_hat, header.params["residual"], sections[2:])


_RUN_CAP = 64  # run lengths 1..63 get a symbol each; 64 means "64 or more" (+ varint)


class ScalarRlePreset(LatentPreset):
    """Ablation: NK-RLE (key = run**2) over the channel-major latent, then ANS coding of
    the run values and run lengths with integer tables carried in the stream."""

    name = "scalar-rle"

    def _code(self, y: np.ndarray):
        from .entropy import encode_adaptive, pack_varints

        sym = np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(-1)
        values, keys = rle.encode(sym)
        lengths = np.sqrt(keys.astype(np.float64)).astype(np.int64)  # exact: keys are squares < 2**52
        vmin, vmax = int(values.min()), int(values.max())
        if vmax - vmin >= 1 << 16:
            raise ValueError("latent range too wide for the scalar-rle preset")
        lsym = np.minimum(lengths, _RUN_CAP) - 1
        data = encode_adaptive([values.astype(np.int64) - vmin, lsym], [vmax - vmin + 1, _RUN_CAP])
        params = {"rle": {"pairs": int(values.size), "vmin": vmin}}
        return params, [data, pack_varints(lengths[lengths >= _RUN_CAP] - _RUN_CAP)]

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        from .entropy import decode_adaptive, unpack_varints

        if len(sections) != 2:
            raise CorruptStreamError(f"scalar-rle stream has {len(sections)} sections, expected 2")
        h, w = _latent_hw(header)
        n = h * w * m.latent_channels
        pairs, vmin = header.params["rle"]["pairs"], header.params["rle"]["vmin"]
        if pairs > n:
            raise CorruptStreamError(f"{pairs} NK-RLE pairs for a latent of {n} values")
        vsym, lsym = decode_adaptive(sections[0], [pairs, pairs])
        lengths = lsym.astype(np.int64) + 1
        long_runs = lengths == _RUN_CAP
        lengths[long_runs] += unpack_varints(sections[1], int(long_runs.sum()))
        if np.any(lengths < 1):
            raise CorruptStreamError("negative run length")
        values = (vsym.astype(np.int64) + vmin).astype(np.int32)
        keys = (lengths.astype(np.uint64)) ** np.uint64(2)
        sym = rle.decode(values, keys, cap=n)
        if sym.size != n:
            raise CorruptStreamError(f"latent has {sym.size} symbols, expected {n}")
        return np.moveaxis(sym.reshape(m.latent_channels, h, w), 0, 2)


class ClusterPreset(LatentPreset):
    """Ablation: "cluster-based reconstruction".  The latent vectors (one per 16x16
    block) are clustered with FAISS k-means (k = 2**(quality+3)); the integer
    centroids are ANS-coded with the model's tables and the labels with an in-stream
    table; the decoder looks the centroids up."""

    name = "cluster"

    def _code(self, y: np.ndarray):
        from . import kmeans
        from .entropy import encode_adaptive

        vecs = y.reshape(-1, y.shape[2]).astype(np.float32)
        k = min(vecs.shape[0], 2 ** (self.quality + 3))
        cent = np.round(kmeans.fit(vecs, k, seed=0)).astype(np.int32)
        cent = np.unique(cent, axis=0)
        labels = kmeans.assign(vecs, cent.astype(np.float32))
        cparams, csections = _code_latent(self.model, cent, self.quality)
        lab = encode_adaptive([labels], [cent.shape[0]])
        return {"cluster": {"k": int(cent.shape[0]), **cparams}}, [*csections, lab]

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        from .entropy import decode_adaptive

        if len(sections) != 3:
            raise CorruptStreamError(f"cluster stream has {len(sections)} sections, expected 3")
        h, w = _latent_hw(header)
        params = header.params["cluster"]
        k = params["k"]
        if k > h * w:
            raise CorruptStreamError(f"{k} clusters for a latent of {h * w} positions")
        cent = _decode_latent_syms(m, params, sections[:2], k, header.quality)
        (labels,) = decode_adaptive(sections[2], [h * w])
        if labels.size and int(labels.max()) >= k:
            raise CorruptStreamError("cluster label out of range")
        return cent[labels].reshape(h, w, -1)


class PaperPreset(LatentPreset):
    """The paper as written: palette (k-means) -> autoencoder -> NK-RLE (key = run**2)
    over the channel-major latent, pairs written as varints, no entropy coder."""

    name = "paper"

    def __init__(self, quality: int, model: str | None = None, k: int = 256):
        super().__init__(quality, model)
        self.k = k

    def analysis_input(self, image: np.ndarray) -> np.ndarray:
        from . import kmeans

        rgb = super().analysis_input(image)
        pal = kmeans.palette_fit(rgb, self.k)
        return pal[kmeans.palette_apply(rgb, pal)]

    def _code(self, y: np.ndarray):
        sym = np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(-1)
        return {"paper": {"k": self.k}}, [rle.pack(*rle.encode(sym))]

    def _latent(self, header: Header, sections: list, m) -> np.ndarray:
        if len(sections) != 1:
            raise CorruptStreamError(f"paper stream has {len(sections)} sections, expected 1")
        h, w = _latent_hw(header)
        n = h * w * m.latent_channels
        values, keys = rle.unpack(sections[0], np.int32, max_pairs=n)
        sym = rle.decode(values, keys, cap=n)
        if sym.size != n:
            raise CorruptStreamError(f"latent has {sym.size} symbols, expected {n}")
        if np.abs(sym).max(initial=0) > MAX_LATENT:
            raise CorruptStreamError("latent value out of range")
        return np.moveaxis(sym.reshape(m.latent_channels, h, w), 0, 2)


# One class per preset, keyed by its name; the name's id in the stream is the
# format's (container.PRESET_IDS): a new preset is its class here and its id there.
PRESETS = {
    cls.name: cls
    for cls in (RlePreset, PalettePreset, ScalarPreset, ContextPreset, PaperPreset, ScalarRlePreset, ClusterPreset, NearLosslessPreset)
}
if set(PRESETS) != set(PRESET_IDS):  # pragma: no cover - a development error
    raise ImportError(f"presets {sorted(set(PRESETS) ^ set(PRESET_IDS))} lack a class or a format id")
# "default" names the best preset measured so far; the learned codec takes it over.
ALIASES = {"default": "context"}


def _resolve(preset: str) -> str:
    name = ALIASES.get(preset, preset)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(set(PRESETS) | set(ALIASES))}")
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
        import inspect

        self.quality = int(quality)
        self.preset = _resolve(preset)
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
        """The preset object that does the coding (a :class:`LatentPreset` for the
        learned presets that code one latent, which the batched pipeline splits)."""
        return self._impl

    @property
    def codec_id(self) -> str:
        return f"nkcodec.{self.preset}"

    def get_config(self) -> dict:
        """JSON-able configuration (numcodecs style): ``{"id", "quality", **options}``."""
        return {"id": self.codec_id, "quality": self.quality, **self.options}

    @classmethod
    def from_config(cls, config: dict) -> "Codec":
        """Rebuild a codec from :meth:`get_config` output."""
        config = dict(config)
        cid = str(config.pop("id", ""))
        if not cid.startswith("nkcodec."):
            raise ValueError(f"not an nkcodec config id: {cid!r}")
        return cls(config.pop("quality", 4), cid[len("nkcodec.") :], **config)

    def encode(self, image) -> bytes:
        """Compress a uint8 image to ``.nkc`` bytes."""
        image = check_image(image)
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

        batch_size, lanes, workers, depth, _ = batch.check_options(batch_size, lanes, workers, depth, errors)

        def nets(items, pool):
            return _encode_batch(self, items, pool, load)

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
    header, sections = unpack_container(data)
    return check_decoded(header, decoder_for(header).decode(header, sections))


def check_decoded(header: Header, image: np.ndarray) -> np.ndarray:
    """A preset's decoded image, checked against the header and in the stream's shape."""
    if image.shape[:2] != (header.height, header.width) or image.shape[-1] != header.channels:
        raise CorruptStreamError(f"decoded shape {image.shape} disagrees with the header")
    return image.reshape(header.shape)


def decoder_for(header: Header):
    """The preset that decodes ``header``'s stream, its parameters checked (:mod:`nkcodec.schema`)."""
    from .schema import validate

    if header.preset not in PRESETS:
        raise CorruptStreamError(f"preset {header.preset!r} is not supported by this build")
    validate(header)
    return PRESETS[header.preset](min(max(header.quality, QUALITIES[0]), QUALITIES[-1]))


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


def compress_many(images, quality: int = 4, preset: str = "default", *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise", **options):
    """Compress many images (any iterable): an iterator of ``.nkc`` bytes in input
    order, each the bytes :func:`compress` gives; the nets run in device batches
    while a pool of threads does the entropy coding (:meth:`Codec.encode_many`).

    Examples
    --------
    >>> import numpy as np
    >>> [d[:3] for d in compress_many([np.zeros((2, 2), np.uint8)] * 2, preset="rle")]
    [b'NKC', b'NKC']
    """
    return Codec(quality, preset, **options).encode_many(
        images, batch_size=batch_size, lanes=lanes, workers=workers, depth=depth, load=load, errors=errors
    )


def decompress_many(streams, *, batch_size=None, lanes=None, workers=None, depth=None, load=None, errors="raise", pool="auto"):
    """Decompress ``.nkc`` streams (bytes; presets, models and sizes may mix): an
    iterator of uint8 images in input order, each the image :func:`decompress`
    gives.  The entropy decoding runs in a pool (``pool``: ``"thread"``,
    ``"process"``, or ``"auto"``: threads on the CPU backend, processes on an
    accelerator, where the entropy decoding is the limit and threads would
    share one GIL), the synthesis in device batches on ``lanes`` threads
    (:mod:`nkcodec.batch`; the other options: :data:`nkcodec.batch.OPTIONS_DOC`).

    Examples
    --------
    >>> import numpy as np
    >>> streams = compress_many([np.full((8, 8), v, np.uint8) for v in range(3)], preset="rle")
    >>> [int(im[0, 0]) for im in decompress_many(streams)]
    [0, 1, 2]
    """
    from . import batch

    batch_size, lanes, workers, depth, pool = batch.check_options(batch_size, lanes, workers, depth, errors, pool)
    return batch.decode_pipeline(
        streams, _entropy_stage, _synthesize, batch_size=batch_size, lanes=lanes, workers=workers, depth=depth, errors=errors, pool=pool, load=load
    )


# --- the two stages of the batched pipeline (nkcodec.batch runs them) ---------------------


def _encode_batch(codec: Codec, batch: list, pool, load) -> list:
    """Futures of the bytes of ``batch``'s items: the nets run here (images of
    one padded size in device batches), the entropy coding in ``pool``."""
    from .batch import chunks, done

    impl = codec.impl
    out = [None] * len(batch)
    groups = {}  # analysis key -> [(index, image, net input)]
    for i, item in enumerate(batch):
        try:
            image = check_image(load(item) if load is not None else item)
            if not isinstance(impl, LatentPreset):
                out[i] = pool.submit(codec.encode, image)
                continue
            rgb = impl.analysis_input(image)
            key = impl.model.analysis_key(rgb.shape) if impl.batched_analysis else None
            groups.setdefault(key, []).append((i, image, rgb))
        except Exception as e:
            out[i] = done(error=e)
    for key, members in groups.items():
        for chunk in chunks(members, 1 if key is None else len(members)):
            try:
                if key is None:
                    ys = [impl.analyse(chunk[0][1])]
                else:
                    ys = impl.model.encode_latents([rgb for _, _, rgb in chunk], impl.quality)
            except Exception as e:
                for i, _, _ in chunk:
                    out[i] = done(error=e)
                continue
            for (i, image, _), y in zip(chunk, ys):
                out[i] = pool.submit(_encode_entropy, codec, image, y)
    return out


def _encode_entropy(codec: Codec, image: np.ndarray, y: np.ndarray) -> bytes:
    return codec.pack(image, *codec.impl.encode_entropy(image, y))


class _Latent:
    """What the entropy stage hands to the synthesis: a stream's header, latent and image parts."""

    __slots__ = ("header", "y", "alpha", "gray")

    def __init__(self, header, y, alpha, gray):
        self.header, self.y, self.alpha, self.gray = header, y, alpha, gray


def _entropy_stage(data, whole: bool = True):
    """Parse a stream and decode all but its synthesis (a :class:`_Latent`), or,
    for a preset that is not one latent, the whole image (``whole=False``: the
    ``None`` instead, so a process worker never runs the nets)."""
    header, sections = unpack_container(data)
    impl = decoder_for(header)
    if isinstance(impl, LatentPreset):
        return _Latent(header, *impl.decode_entropy(header, sections))
    if not whole:
        return None
    return check_decoded(header, impl.decode(header, sections))


def _synthesize(staged: list) -> list:
    """Futures of the images of ``staged`` ((stream bytes, future of its entropy
    stage) each; a thread pool's future gives (stream, result)), synthesized
    here in device batches of one model and padded latent size."""
    from .batch import chunks, done
    from .zoo import model_for_id

    out = [None] * len(staged)
    groups = {}  # (model id, synthesis key) -> [(index, _Latent)]
    for i, (data, f) in enumerate(staged):
        try:
            r = f.result()
            if data is None:
                data, r = r
            if r is None:  # a process worker left this preset to us
                out[i] = done(decompress(data))
            elif isinstance(r, np.ndarray):
                out[i] = done(r)
            else:
                m = model_for_id(r.header.model_id)
                groups.setdefault((r.header.model_id, m.synthesis_key(r.y.shape)), []).append((i, r))
        except Exception as e:
            out[i] = done(error=e)
    for (model_id, key), members in groups.items():
        m = model_for_id(model_id)
        for chunk in chunks(members, 1 if key is None else len(members)):
            try:
                hs = [r.header for _, r in chunk]
                if key is None:
                    rgbs = [m.decode_latent(chunk[0][1].y, hs[0].quality, (hs[0].height, hs[0].width))]
                else:
                    rgbs = m.decode_latents([r.y for _, r in chunk], [h.quality for h in hs], [(h.height, h.width) for h in hs])
            except Exception as e:
                for i, _ in chunk:
                    out[i] = done(error=e)
                continue
            for (i, r), rgb in zip(chunk, rgbs):
                try:
                    out[i] = done(check_decoded(r.header, LatentPreset.decode_finish(rgb, r.alpha, r.gray)))
                except Exception as e:
                    out[i] = done(error=e)
    return out


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
    name = _resolve(preset)
    if not PRESETS[name].quality_ladder:
        raise ValueError(f"preset {preset!r} has no quality ladder; compress_to_size needs a learned lossy preset")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
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
