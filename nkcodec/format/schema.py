"""The one check of a stream's parameters: a preset's params JSON, its stages,
keys, types and ranges, checked against what the preset class declares
(``stream_params``) before the preset reads it (:func:`validate`, called by the
decoder for every stream).  This module holds the types a declaration is made of.

Anything the schema does not allow (a missing or unknown stage or key, a
wrong type, ``True`` where an integer belongs, a value out of range) raises
:class:`~nkcodec.errors.CorruptStreamError` naming the field.  Ranges that
depend on the image (an escape count against the number of values, a
cluster count against the latent size) are checked where those sizes are
known, in the presets.  The keys are those every release has written: the
format is forever, so a key may be added to a declaration but never removed.

Examples
--------
>>> from nkcodec.format.container import Header
>>> declared = {"rle": {"variant": OneOf("nk", "plain")}}
>>> validate(Header(2, 2, 1, "rle", params={"rle": {"variant": "nk"}}), declared)
>>> validate(Header(2, 2, 1, "rle", params={"rle": {"variant": "zz"}}), declared)
Traceback (most recent call last):
...
nkcodec.errors.CorruptStreamError: corrupt stream: parameter rle.variant: expected one of ('nk', 'plain'), got 'zz'
"""

from __future__ import annotations

from ..errors import CorruptStreamError
from .limits import MAX_PIXELS

__all__ = ["Int", "Bool", "OneOf", "IntList", "Versions", "COUNT", "IMAGE", "pick", "validate"]


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


COUNT = Int(0, 4 * MAX_PIXELS)  # a count of coded values: checked against the image where it is known
IMAGE = {"gray": Bool(), "alpha": Bool()}  # the learned presets' image flags


class IntList:
    """A list of ``n`` integers (not bools), each in ``lo..hi``."""

    def __init__(self, n: int, lo: int, hi: int):
        self.n, self.item = n, Int(lo, hi)

    def check(self, v) -> bool:
        return isinstance(v, list) and len(v) == self.n and all(self.item.check(x) for x in v)

    def __str__(self):
        return f"a list of {self.n} integers in {self.item.lo}..{self.item.hi}"


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


def pick(declared, params: dict) -> dict:
    """The ``{stage: {key: type}}`` that ``declared`` (a dict, or :class:`Versions`) gives for these params."""
    return declared.pick(params) if isinstance(declared, Versions) else declared


def validate(header, declared) -> None:
    """Check ``header.params`` against ``declared``, the parameters its preset declares
    (``Preset.declared_params()``): ``{stage: {key: type}}``, where a stage or a key
    ending in ``?`` may be absent; CorruptStreamError naming the field."""
    params = header.params
    if not isinstance(params, dict):
        raise CorruptStreamError("parameters are not an object")
    schema = pick(declared, params)
    for stage, keys in _present(schema, params, "", f" for preset {header.preset}"):
        given = params[stage]
        if not isinstance(given, dict):
            raise CorruptStreamError(f"parameter {stage} is not an object")
        for key, typ in _present(keys, given, f"{stage}."):
            if not typ.check(given[key]):
                raise CorruptStreamError(f"parameter {stage}.{key}: expected {typ}, got {given[key]!r:.40}")


def _present(declared: dict, given: dict, prefix: str, suffix: str = "") -> list:
    """(name, spec) of each declared field that ``given`` has, after checking that it has
    no unknown field and every required one (a name ending in ``?`` may be absent); the
    messages name a field as ``prefix + name``."""
    names = {k.rstrip("?"): k for k in declared}
    for name in given:
        if name not in names:
            raise CorruptStreamError(f"unknown parameter {prefix}{name}{suffix}")
    for name, key in names.items():
        if name not in given and not key.endswith("?"):
            raise CorruptStreamError(f"missing parameter {prefix}{name}")
    return [(name, declared[key]) for name, key in names.items() if name in given]
