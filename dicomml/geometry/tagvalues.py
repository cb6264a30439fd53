"""Checked numeric values of multi-valued DICOM tags (positions, cosines, spacings).

Example
-------
>>> tag_vector(["0.5", "0.5"], 2, "PixelSpacing", path="a.dcm")
array([0.5, 0.5])
"""

from __future__ import annotations

import math

import numpy as np

from dicomml.errors import InvalidTagError, MissingTagError


def tag_vector(value, length: int, tag: str, *, path, where: str = "") -> np.ndarray:
    """``value`` as ``length`` finite float64 numbers, else a typed error naming file and tag.

    ``where`` (e.g. ``"frame 3"``) prefixes the message when the value comes from inside a
    sequence item.
    """
    prefix = f"{where}: " if where else ""
    if value is None or value == "":
        raise MissingTagError(f"{prefix}{tag} is missing", path=path, tag=tag)
    try:
        vector = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidTagError(f"{prefix}{tag} is not numeric: {value!r}", path=path,
                              tag=tag) from err
    if vector.shape != (length,) or not np.isfinite(vector).all():
        raise InvalidTagError(f"{prefix}{tag} needs {length} finite values, got "
                              f"{vector.tolist()}", path=path, tag=tag)
    return vector


def tag_number(value, default: float = math.nan) -> float:
    """``value`` (or its first item, for a multi-valued element) as a finite float, else
    ``default`` (absent, empty, unparsable or non-finite values alike).

    >>> tag_number(["2.5", "3"]), tag_number(None, 1.0), tag_number("inf", 0.0)
    (2.5, 1.0, 0.0)
    """
    if not isinstance(value, str | bytes) and hasattr(value, "__len__"):
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default
