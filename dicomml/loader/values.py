"""Stored pixel values -> output values: Modality LUT rescale, MONOCHROME1 inversion (DICOM
PS3.3 C.7.6.3).

- The stored values come from :func:`dicomml.decode.stored.fill` with the Bits Stored corrections
  already applied (only the ``BitsStored`` low bits count: unsigned values masked, signed values
  sign-extended from bit ``BitsStored - 1``, PS3.5 8.1.1; :func:`dicomml.decode.pipeline.correct_bits`).
- ``dtype`` float: ``value = stored * slope + intercept`` per plane; ``dtype=None`` keeps the
  stored integers.
- MONOCHROME1 is mirrored over the stored range ``[s_min, s_max]`` allowed by Bits Stored and
  Pixel Representation (after rescale: ``(slope*s_min + b) + (slope*s_max + b) - value``), so
  that higher values are brighter everywhere, independently of the image content.

Example
-------
>>> import numpy as np
>>> slot = np.empty((1, 2), np.float32)
>>> store(np.array([[0, 4095]], np.uint16), {"bits_allocated": 16, "bits_stored": 12,
...       "slope": 2.0, "intercept": -1.0, "photometric": "MONOCHROME2"}, slot, "float32")
>>> slot.tolist()
[[-1.0, 8189.0]]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dicomml.decode.info import FrameInfo
from dicomml.errors import InvalidTagError

from ._util import value


def stored_range(bits_stored: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest stored integer that ``bits_stored`` bits can hold."""
    if signed:
        return -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return 0, (1 << bits_stored) - 1


def plane_format(plane) -> tuple[int, int, bool]:
    """(Bits Allocated, Bits Stored, signed) of a plane record (checked by
    :func:`dicomml.loader.planes.check_planes`)."""
    allocated = int(value(plane, "bits_allocated", 16))
    stored = int(value(plane, "bits_stored", allocated))
    signed = int(value(plane, "pixel_representation", 0)) == 1
    return allocated, stored, signed


def output_dtype(infos: list[FrameInfo], dtype) -> np.dtype:
    """The volume's dtype: ``dtype``, or (None) the stored integer type shared by all files
    (``infos``, in plane order; int32 / uint32 when their Bits Allocated, Bits Stored or sign
    differ); for float pixel data the stored float type (float64 when mixed with others)."""
    if dtype is not None:
        return np.dtype(dtype)
    floats = [info.dtype for info in infos if info.float_data]  # float pixel data: as stored
    if floats:
        return np.result_type(*floats) if len(floats) == len(infos) else np.dtype(np.float64)
    formats = {}  # stored format -> the first file's description
    for info in infos:
        formats.setdefault((info.bits_allocated, info.bits_stored, info.pixel_representation),
                           info)
    for (allocated, _, _), info in formats.items():
        if allocated not in (8, 16, 32):
            raise InvalidTagError(f"dtype=None keeps stored integers of 8, 16 or 32 bits only, "
                                  f"not {allocated}; use a float dtype", path=info.path,
                                  tag="BitsAllocated")
    if len(formats) == 1:
        return next(iter(formats.values())).dtype
    return np.dtype(np.int32) if any(f[2] for f in formats) else np.dtype(np.uint32)


class StoreValues(NamedTuple):
    """What :func:`store` reads from a plane record, worked out once per format
    (:func:`store_values`): Bits Stored, signed, MONOCHROME1, Rescale Slope / Intercept
    (None when not rescaling)."""

    bits_stored: int
    signed: bool
    mono1: bool
    slope: float | None
    intercept: float | None


def store_values(plane, rescale: bool = True) -> StoreValues:
    """The :class:`StoreValues` of a plane record (slope / intercept only when
    ``rescale``: ``dtype=None`` never reads them)."""
    _, bits_stored, signed = plane_format(plane)
    mono1 = str(value(plane, "photometric", "")).strip().upper() == "MONOCHROME1"
    if not rescale:
        return StoreValues(bits_stored, signed, mono1, None, None)
    return StoreValues(bits_stored, signed, mono1, float(plane["slope"]),
                       float(plane["intercept"]))


def store(image: np.ndarray, plane, slot: np.ndarray, dtype,
          values: StoreValues | None = None) -> None:
    """Rescale (unless dtype is None), invert MONOCHROME1, write into ``slot`` (``image``:
    stored values, bits corrected, and ``slot``: (rows, columns)); ``values``: the plane's
    :func:`store_values`, when the caller has them already."""
    known = values if values is not None else store_values(plane, dtype is not None)
    mono1 = known.mono1
    s_min, s_max = stored_range(known.bits_stored, known.signed)
    if dtype is None:
        if mono1:
            np.subtract(s_min + s_max, image, out=slot, casting="unsafe")
        elif image is not slot:
            slot[...] = image
        return
    slope, intercept = known.slope, known.intercept
    kind = slot.dtype.type
    if slope == 1.0 and intercept == 0.0:  # identity Modality LUT: one casting copy
        np.copyto(slot, image, casting="unsafe")
    elif slope == 1.0:  # one pass: stored + intercept, computed in the output dtype
        np.add(image, kind(intercept), out=slot, casting="unsafe")
    else:
        np.multiply(image, kind(slope), out=slot, casting="unsafe")
        slot += kind(intercept)
    if mono1:
        mirror = slope * (s_min + s_max) + 2 * intercept
        np.subtract(slot.dtype.type(mirror), slot, out=slot)
