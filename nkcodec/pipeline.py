"""The two stages of the batched pipeline for the codec (:mod:`nkcodec.batch` runs them):
on encode, the nets in device batches and the entropy coding in a pool; on decode, the
entropy decoding in a pool and the synthesis in device batches.  Bytes and pixels are
those of one-at-a-time coding (tested)."""

from __future__ import annotations

import numpy as np

from .batch import chunks, done
from .format.container import unpack_container
from .presets import LatentPreset, check_decoded, decode_stream, decoder_for

__all__ = ["encode_batch", "entropy_stage", "synthesize"]


def encode_batch(codec, batch: list, pool, load) -> list:
    """Futures of the bytes of ``batch``'s items coded by ``codec`` (a
    :class:`~nkcodec.codec.Codec`): the nets run here (images of one padded size
    in device batches), the entropy coding in ``pool``."""
    impl = codec.impl
    out = [None] * len(batch)
    groups = {}  # analysis key -> [(index, image, net input)]
    for i, item in enumerate(batch):
        try:
            image = impl.check_image(load(item) if load is not None else item)
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


def _encode_entropy(codec, image: np.ndarray, y: np.ndarray) -> bytes:
    return codec.pack(image, *codec.impl.encode_entropy(image, y))


class _Latent:
    """What the entropy stage hands to the synthesis: a stream's header, latent and image parts."""

    __slots__ = ("header", "y", "alpha", "gray", "post")

    def __init__(self, header, y, alpha, gray, post):
        self.header, self.y, self.alpha, self.gray, self.post = header, y, alpha, gray, post

    @property
    def hw(self) -> tuple:
        return self.header.height, self.header.width

    def image(self, rgb) -> np.ndarray:
        """The decoded image, from the synthesis' RGB (None: none was needed)."""
        return check_decoded(self.header, LatentPreset.decode_finish(rgb, self.alpha, self.gray, self.post, self.hw))


def entropy_stage(data, whole: bool = True):
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


def synthesize(staged: list) -> list:
    """Futures of the images of ``staged`` ((stream bytes, future of its entropy
    stage) each; a thread pool's future gives (stream, result)), synthesized
    here in device batches of one model and padded latent size."""
    from .zoo import model_for_id

    out = [None] * len(staged)
    groups = {}  # (model id, synthesis key) -> [(index, _Latent)]
    for i, (data, f) in enumerate(staged):
        try:
            r = f.result()
            if data is None:
                data, r = r
            if r is None:  # a process worker left this preset to us
                out[i] = done(decode_stream(data))
            elif isinstance(r, np.ndarray):
                out[i] = done(r)
            elif r.y is None:  # a constant image: no synthesis
                out[i] = done(r.image(None))
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
                    out[i] = done(r.image(rgb))
                except Exception as e:
                    out[i] = done(error=e)
    return out
