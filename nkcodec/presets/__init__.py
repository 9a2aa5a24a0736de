"""The presets: one class per preset, and this registry of them.

A preset is registered here once: its class in :data:`PRESETS`.  Its id in the stream
is the format's (:data:`nkcodec.format.container.PRESET_IDS`, forever), and the
parameters its streams carry are the class's own declaration (``stream_params``),
which the decoder checks every stream against (:func:`decoder_for`).  The two are
cross-checked when this module loads.  Adding a preset: ``docs/architecture.md``.

Examples
--------
>>> sorted(PRESETS)[:3]
['cluster', 'context', 'near-lossless']
>>> resolve("default")
'context'
"""

from __future__ import annotations

import inspect

import numpy as np

from ..config import QUALITIES
from ..errors import CorruptStreamError
from ..format.container import PRESET_IDS, Header, unpack_container
from ..format.schema import pick, validate
from .base import LatentPreset, Preset
from .learned import ClusterPreset, ContextPreset, PaperPreset, ScalarPreset, ScalarRlePreset
from .near_lossless import NearLosslessPreset
from .pixels import PalettePreset, RlePreset

__all__ = ["PRESETS", "ALIASES", "OPTIONS", "Preset", "LatentPreset", "resolve", "decoder_for", "check_decoded", "schema_for", "decode_stream"]

PRESETS = {cls.name: cls for cls in (RlePreset, PalettePreset, ScalarPreset, ContextPreset, PaperPreset, ScalarRlePreset, ClusterPreset, NearLosslessPreset)}
if set(PRESETS) != set(PRESET_IDS):  # pragma: no cover - a development error
    raise ImportError(f"presets {sorted(set(PRESETS) ^ set(PRESET_IDS))} lack a class or a format id")
if not all(cls.declared_params() for cls in PRESETS.values()):  # pragma: no cover - a development error
    raise ImportError("every preset declares the parameters its streams carry (stream_params)")
# "default" names the best preset measured so far; the learned codec takes it over.
ALIASES = {"default": "context"}
# Every option some preset takes (its constructor's keywords after the quality).
OPTIONS = tuple(sorted({p for cls in PRESETS.values() for p in list(inspect.signature(cls).parameters)[1:]}))


def resolve(preset: str) -> str:
    """The preset a name or alias stands for; ValueError naming the choices."""
    name = ALIASES.get(preset, preset)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(set(PRESETS) | set(ALIASES))}")
    return name


def schema_for(preset: str, params: dict) -> dict:
    """``{stage: {key: type}}`` that ``preset`` declares for these params (the version they name)."""
    if preset not in PRESETS:
        raise CorruptStreamError(f"preset {preset!r} is not supported by this build")
    return pick(PRESETS[preset].declared_params(), params)


def decoder_for(header: Header) -> Preset:
    """The preset that decodes ``header``'s stream, its parameters checked against the preset's declaration."""
    if header.preset not in PRESETS:
        raise CorruptStreamError(f"preset {header.preset!r} is not supported by this build")
    cls = PRESETS[header.preset]
    if header.channels > cls.max_channels:
        raise CorruptStreamError(f"preset {header.preset} streams carry at most {cls.max_channels} channels, this one names {header.channels}")
    validate(header, cls.declared_params())
    return cls(min(max(header.quality, QUALITIES[0]), QUALITIES[-1]))


def check_decoded(header: Header, image: np.ndarray) -> np.ndarray:
    """A preset's decoded image, checked against the header, in the stream's shape, and writable."""
    if image.shape[:2] != (header.height, header.width) or image.shape[-1] != header.channels:
        raise CorruptStreamError(f"decoded shape {image.shape} disagrees with the header")
    image = image.reshape(header.shape)
    return image if image.flags.writeable else image.copy()  # the nets' output may be a read-only view


def decode_stream(data) -> np.ndarray:
    """The image of ``.nkc`` bytes, any preset (:func:`nkcodec.decompress`)."""
    header, sections = unpack_container(data)
    return check_decoded(header, decoder_for(header).decode(header, sections))
