"""The one reading of an Integer String (IS) value: NumberOfFrames, InstanceNumber, ...

PS3.5 6.2 allows digits with an optional sign and space padding. Like pydicom's ``IS``, a
decimal or exponent form that is exactly a whole number (``"2.0"``, ``"1e3"``) is taken;
a fraction (``"1.5"``), a non-finite or a non-numeric text is not. The catalog's header
parser, the decoder's header and the geometry code all read frame counts through it, so a
scan and a read of the same file agree on how many frames it declares.

Example
-------
>>> integer_string(" +3 "), integer_string("2.0"), integer_string("1e3")
(3, 2, 1000)
>>> integer_string("1.5")
Traceback (most recent call last):
...
ValueError: not a whole number: '1.5'
"""

from __future__ import annotations

import math


def integer_string(value) -> int:
    """``value`` (an int, a float or an IS text, padding allowed) as an ``int``; ValueError
    when it is not exactly a whole number."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = value.strip(" \x00")
        try:
            return int(value)
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def declared_frames(value) -> int:
    """The frame count a Number of Frames (0028,0008) value declares: 1 when absent or empty,
    and 1 for ``0`` (invalid, but written by some exporters for single-frame objects; pydicom
    reads it as 1 too); ValueError for a negative, fractional or non-numeric value.

    >>> declared_frames(None), declared_frames("0"), declared_frames(" 12 ")
    (1, 1, 12)
    """
    if value is None or value == "":
        return 1
    frames = integer_string(value)
    if frames < 0:
        raise ValueError(f"negative: {value!r}")
    return frames or 1
