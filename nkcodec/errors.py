"""Exception types of nkcodec.

Every malformed stream raises :class:`CorruptStreamError`, a subclass of both
:class:`NkcodecError` and :class:`ValueError`, so callers may catch either.
"""

__all__ = ["NkcodecError", "CorruptStreamError", "RetiredModelError"]


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
