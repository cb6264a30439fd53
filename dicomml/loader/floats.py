"""Metadata of volumes read from Float / Double Float Pixel Data (parametric maps).

Float pixel data (7FE0,0008) / (7FE0,0009) hold IEEE floats as stored (PS3.3 C.7.6.3: no Bits
Stored, no sign bit). Their meaning comes from the Real World Value Mapping Sequence
(0040,9096), top level or in the shared functional groups of an enhanced object such as a
Parametric Map (PS3.3 C.7.6.16.2.11);
a Modality LUT rescale in the header, where present, is applied instead (as
:mod:`dicomml.decode.info` does). NaN and infinities are kept (they mark voxels the fit did
not reach) and counted here.

:func:`float_notes` gives ``metadata["float_pixels"]``::

    {"element": "FloatPixelData" | "DoubleFloatPixelData", "dtype": "float32",
     "applied": None | "rescale" | "real_world_value_mapping",
     "real_world_value_mapping": [{"slope", "intercept", "first", "last", "label",
                                   "explanation", "units"}, ...] or [],
     "nonfinite": {"nan": int, "posinf": int, "neginf": int}}

Example
-------
>>> import numpy as np, pandas as pd
>>> planes = pd.DataFrame({"path": ["x.dcm"], "float_pixel_data": [None]})
>>> float_notes(planes, np.array([[0]]), np.zeros((1, 1, 2, 2)), "float32")
{}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml._columns import absent
from dicomml.errors import InvalidDicomError

__all__ = ["float_notes", "real_world_mappings"]


def float_notes(planes: pd.DataFrame, order: np.ndarray, data: np.ndarray, dtype) -> dict:
    """``{"float_pixels": {...}}`` (module docstring) when the planes used come from files
    the catalog marks as float pixel data; ``{}`` otherwise. ``data`` is the output array,
    ``dtype`` the caller's (None: stored values, nothing applied)."""
    if "float_pixel_data" not in planes.columns:
        return {}
    used = order.ravel()
    marks = planes["float_pixel_data"].to_numpy()[used].tolist()
    if all(absent(m) for m in marks):
        return {}
    path = str(planes["path"].to_numpy()[used[0]])
    header = _header(path)
    double = int(header.get("BitsAllocated", 32) or 32) == 64
    mappings = real_world_mappings(header)
    rescale = "RescaleSlope" in header or "RescaleIntercept" in header
    linear = len(mappings) == 1 and mappings[0]["slope"] is not None
    applied = None if dtype is None else "rescale" if rescale else \
        "real_world_value_mapping" if linear else None
    return {"float_pixels": {
        "element": "DoubleFloatPixelData" if double else "FloatPixelData",
        "dtype": str(data.dtype), "applied": applied, "real_world_value_mapping": mappings,
        "nonfinite": {"nan": int(np.isnan(data).sum()), "posinf": int(np.isposinf(data).sum()),
                      "neginf": int(np.isneginf(data).sum())}}}


def real_world_mappings(header) -> list[dict]:
    """The Real World Value Mapping items of a header (top level, else the shared functional
    groups: where :mod:`dicomml.decode.info` takes the one linear mapping it applies from):
    slope, intercept, the stored value range they map (``first`` / ``last``), label,
    explanation and units (the code meaning of the Measurement Units Code Sequence). Items
    given as a LUT (no slope) are listed with slope None."""
    items = header.get("RealWorldValueMappingSequence")
    if not items:
        shared = header.get("SharedFunctionalGroupsSequence")
        items = shared[0].get("RealWorldValueMappingSequence") if shared else None
    return [_mapping(item) for item in items or []]


def _mapping(item) -> dict:
    units = item.get("MeasurementUnitsCodeSequence")
    first = item.get("DoubleFloatRealWorldValueFirstValueMapped",
                     item.get("RealWorldValueFirstValueMapped"))
    last = item.get("DoubleFloatRealWorldValueLastValueMapped",
                    item.get("RealWorldValueLastValueMapped"))
    return {"slope": _number(item.get("RealWorldValueSlope")),
            "intercept": _number(item.get("RealWorldValueIntercept")),
            "first": _number(first), "last": _number(last),
            "label": str(item.get("LUTLabel", "")) or None,
            "explanation": str(item.get("LUTExplanation", "")) or None,
            "units": str(units[0].get("CodeMeaning", "")) or None if units else None}


def _number(found):
    return None if found is None or found == "" else float(found)


def _header(path: str):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure names the file
        raise InvalidDicomError(f"cannot read the header: {exc}", path=path) from exc
