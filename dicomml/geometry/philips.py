"""Philips MR private scale slope / intercept in pydicom headers: (2005,xx0E) / (2005,xx0D) of
the private creator "Philips MR Imaging DD 001", at the top level of classic files and, in
enhanced MR, inside each frame's private functional group (2005,xx0F) of "Philips MR Imaging
DD 005" (Philips MR DICOM conformance statements; dcm2niix reads the same values). How they
scale pixel values: :mod:`dicomml.loader.philips`.

Example
-------
>>> from pydicom.dataset import Dataset
>>> ds = Dataset()
>>> block = ds.private_block(0x2005, CREATOR, create=True)
>>> block.add_new(0x0E, "FL", 0.25)
>>> scale_of(ds)
(0.25, nan)
"""

from __future__ import annotations

import math

import numpy as np

CREATOR = "Philips MR Imaging DD 001"
PER_FRAME_CREATOR = "Philips MR Imaging DD 005"
SCALE_SLOPE, SCALE_INTERCEPT, PER_FRAME_GROUP = 0x0E, 0x0D, 0x0F


def is_philips(ds) -> bool:
    """True when the header's Manufacturer names Philips."""
    return "PHILIPS" in str(ds.get("Manufacturer", "")).upper()


def frame_scales(ds) -> list[tuple[float, float]]:
    """Per frame (scale slope, scale intercept) of a multi-frame header: from each frame's
    private functional group, else the top-level values for every frame (NaN when absent)."""
    top = scale_of(ds)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if not len(per_frame):
        return [top] * int(ds.get("NumberOfFrames") or 1)
    return [found if math.isfinite(found[0]) else top
            for found in (frame_scale(item) for item in per_frame)]


def scale_of(item) -> tuple[float, float]:
    """(scale slope, scale intercept) of a pydicom data set or sequence item: (2005,xx0E) /
    (2005,xx0D) of the block whose creator is :data:`CREATOR`, else of block 0x10 when that
    block has no creator at all (files whose creators were stripped; dcm2niix reads the fixed
    tags); NaN when absent or not a finite number."""
    block = _block(item, CREATOR)
    if block is None:
        return math.nan, math.nan
    return (_float(item.get((0x2005, block << 8 | SCALE_SLOPE))),
            _float(item.get((0x2005, block << 8 | SCALE_INTERCEPT))))


def frame_scale(frame_item) -> tuple[float, float]:
    """(scale slope, scale intercept) of one PerFrameFunctionalGroupsSequence item, from its
    private group (2005,xx0F) of :data:`PER_FRAME_CREATOR`; NaN when absent."""
    block = _block(frame_item, PER_FRAME_CREATOR, fallback=0x14)
    if block is None:
        return math.nan, math.nan
    group = frame_item.get((0x2005, block << 8 | PER_FRAME_GROUP))
    items = getattr(group, "value", None)
    if not items or not hasattr(items[0], "get"):
        return math.nan, math.nan
    return scale_of(items[0])


def _block(item, creator: str, fallback: int = 0x10) -> int | None:
    """The private block (0x10..0xFF) of group 2005 whose creator is ``creator``; ``fallback``
    when that block has no creator element; None otherwise."""
    creators = [tag for tag in item.keys() if tag >> 16 == 0x2005 and 0x10 <= tag & 0xFFFF < 0x100]
    for tag in creators:
        if str(item[tag].value).strip(" \x00") == creator:
            return tag & 0xFF
    return fallback if (0x2005 << 16 | fallback) not in creators else None


def _float(element) -> float:
    found = getattr(element, "value", None)
    if isinstance(found, bytes | bytearray) and len(found) == 4:  # UN (implicit VR) FL
        found = float(np.frombuffer(found, "<f4")[0])
    try:
        number = float(found[0] if isinstance(found, list | tuple) else found)
    except (TypeError, ValueError, IndexError):
        return math.nan
    return number if math.isfinite(number) else math.nan
