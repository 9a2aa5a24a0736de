"""Exception types of nkcodec, and the one check of an integer option.

Every malformed stream raises :class:`CorruptStreamError`, a subclass of both
:class:`NkcodecError` and :class:`ValueError`, so callers may catch either.  A bad
argument raises ValueError naming it and what is allowed (:func:`check_int`).

Examples
--------
>>> check_int(3, "quality", 1, 8)
3
>>> check_int(True, "quality", 1, 8)
Traceback (most recent call last):
...
ValueError: quality must be an integer in 1..8, got True
"""

from numbers import Integral

__all__ = ["NkcodecError", "CorruptStreamError", "RetiredModelError", "check_int"]


def check_int(value, name: str, lo: int | None = None, hi: int | None = None, *, choices=None, none: bool = False):
    """``value`` as an ``int`` if it is an integer (Python or NumPy, never a bool) in
    ``lo..hi`` (either end may be open) or among ``choices``; ``None`` passes when
    ``none`` is set.  Otherwise ValueError naming ``name`` and what it may be."""
    if none and value is None:
        return None
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if choices is not None:
        choices = list(choices)
        if not ok or value not in choices:
            raise ValueError(f"{name} must be {'None or ' if none else ''}one of {choices}, got {value!r}")
        return int(value)
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            allowed = f"an integer in {lo}..{hi}"
        elif lo == 1:
            allowed = "a positive integer"
        elif lo is not None:
            allowed = f"an integer >= {lo}"
        else:
            allowed = "an integer" if hi is None else f"an integer <= {hi}"
        raise ValueError(f"{name} must be {allowed}{' or None' if none else ''}, got {value!r}")
    return int(value)


class NkcodecError(Exception):
    """Base class of every error nkcodec raises on purpose."""


class CorruptStreamError(NkcodecError, ValueError):
    """A stream (``.nkc`` container, packed NK-RLE pairs, ...) is malformed.

    The message always starts with ``"corrupt stream: "`` followed by what is
    wrong, so tests and callers can match it.
    """

    def __init__(self, msg: str):
        super().__init__(f"corrupt stream: {msg}")


class RetiredModelError(NkcodecError):
    """A valid stream names a model that this build no longer ships.

    The message names the model and the last release of nkcodec that decodes it
    (``pip install "nkcodec==<release>"``).
    """
