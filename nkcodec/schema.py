"""The one check of a stream's parameters: every preset's params JSON, its
stages, keys, types and ranges, checked in one place before a preset reads
it (:func:`validate`, called by the decoder for every stream).

Anything the schema does not allow (a missing or unknown stage or key, a
wrong type, ``True`` where an integer belongs, a value out of range) raises
:class:`~nkcodec.errors.CorruptStreamError` naming the field.  Ranges that
depend on the image (an escape count against the number of values, a
cluster count against the latent size) are checked where those sizes are
known, in the presets.  The keys are those every release has written: the
format is forever, so a key may be added here but never removed.

Examples
--------
>>> from nkcodec.container import Header
>>> validate(Header(2, 2, 1, "rle", params={"rle": {"variant": "nk"}}))
>>> validate(Header(2, 2, 1, "rle", params={"rle": {"variant": "zz"}}))
Traceback (most recent call last):
...
nkcodec.errors.CorruptStreamError: corrupt stream: parameter rle.variant: expected one of ('nk', 'plain'), got 'zz'
"""

from __future__ import annotations

from .errors import CorruptStreamError

__all__ = ["Int", "Bool", "OneOf", "schemas", "validate"]


class Int:
    """An integer (not a bool) in ``lo..hi``."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def check(self, v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and self.lo <= v <= self.hi

    def __str__(self):
        return f"an integer in {self.lo}..{self.hi}"


class Bool:
    def check(self, v) -> bool:
        return isinstance(v, bool)

    def __str__(self):
        return "true or false"


class OneOf:
    def __init__(self, *choices):
        self.choices = choices

    def check(self, v) -> bool:
        return isinstance(v, (str, int)) and not isinstance(v, bool) and v in self.choices

    def __str__(self):
        return f"one of {self.choices}"


def _schemas() -> dict:
    from .container import MAX_PIXELS
    from .entropy import MAX_LATENT
    from .kmeans import MAX_K
    from .residual import MAX_ERROR
    from .rle import VARIANTS

    # a stage: {key: type}; a key ending in "?" may be absent
    values = Int(0, 4 * MAX_PIXELS)  # counts of coded values: checked against the image where it is known
    image = {"gray": Bool(), "alpha": Bool()}
    latent = {"escapes": values, "v?": Int(1, 2)}
    return {
        "rle": {"rle": {"variant": OneOf(*VARIANTS)}},
        "palette": {"palette": {"k": Int(1, MAX_K), "variant": OneOf(*VARIANTS)}},
        "scalar": {"latent": {"escapes": values}, "image": image},
        "context": {"latent": latent, "image": image},
        "paper": {"paper": {"k": Int(1, MAX_K)}, "image": image},
        "scalar-rle": {"rle": {"pairs": Int(1, 4 * MAX_PIXELS), "vmin": Int(-MAX_LATENT, MAX_LATENT)}, "image": image},
        "cluster": {"cluster": {"k": Int(1, MAX_PIXELS), "escapes": values}, "image": image},
        "near-lossless": Versions(
            ("residual", "v"),
            {
                None: {"latent": latent, "residual": {"base": Int(1, 8), "escapes": values, "max_error": Int(0, MAX_ERROR)}, "image": image},
                2: {"residual": {"v": Int(2, 2), "max_error": Int(0, MAX_ERROR)}, "image": image},
            },
        ),
    }


class Versions:
    """A preset whose params changed with a version: ``params[stage][key]`` (absent:
    None) picks the schema."""

    def __init__(self, where: tuple, schemas: dict):
        self.where, self.schemas = where, schemas

    def pick(self, params: dict) -> dict:
        stage, key = self.where
        if stage not in params:
            raise CorruptStreamError(f"missing parameter {stage}")
        given = params[stage]
        version = given.get(key) if isinstance(given, dict) else None  # absent: the first version
        if isinstance(given, dict) and key in given and (type(version) is not int or version not in self.schemas):
            raise CorruptStreamError(f"parameter {stage}.{key}: unknown version {version!r:.40}")
        return self.schemas[version]


_CACHE = {}


def schemas() -> dict:
    """preset name -> {stage: {key: type}} (built once)."""
    if not _CACHE:
        _CACHE.update(_schemas())
    return _CACHE


def schema_for(preset: str, params: dict) -> dict:
    """{stage: {key: type}} of ``preset`` for these params (the version they name)."""
    schema = schemas().get(preset)
    if schema is None:
        raise CorruptStreamError(f"preset {preset!r} is not supported by this build")
    return schema.pick(params) if isinstance(schema, Versions) else schema


def validate(header) -> None:
    """Check ``header.params`` against its preset's schema; CorruptStreamError naming the field."""
    params = header.params
    if not isinstance(params, dict):
        raise CorruptStreamError("parameters are not an object")
    schema = schema_for(header.preset, params)
    for stage in params:
        if stage not in schema:
            raise CorruptStreamError(f"unknown parameter {stage!r} for preset {header.preset}")
    for stage, keys in schema.items():
        if stage not in params:
            raise CorruptStreamError(f"missing parameter {stage}")
        given = params[stage]
        if not isinstance(given, dict):
            raise CorruptStreamError(f"parameter {stage} is not an object")
        names = {k.rstrip("?") for k in keys}
        for key in given:
            if key not in names:
                raise CorruptStreamError(f"unknown parameter {stage}.{key}")
        for key, typ in keys.items():
            name = key.rstrip("?")
            if name not in given:
                if key.endswith("?"):
                    continue
                raise CorruptStreamError(f"missing parameter {stage}.{name}")
            if not typ.check(given[name]):
                raise CorruptStreamError(f"parameter {stage}.{name}: expected {typ}, got {given[name]!r:.40}")
