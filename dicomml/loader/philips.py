"""Philips MR value scaling: the private scale slope (2005,xx0E) and scale intercept
(2005,xx0D) of the private creator "Philips MR Imaging DD 001" (top level in classic files;
in each frame's private functional group (2005,xx0F) of "Philips MR Imaging DD 005" in
enhanced MR).

Philips stores pixel values ``SV`` with two scalings (PMC3998685, Chenevert et al.):

- *display* values ``DV = SV * RS + RI`` (Rescale Slope / Intercept (0028,1053)/(0028,1052),
  the DICOM Modality LUT);
- *floating-point* values ``FP = DV / (RS * SS)`` with ``SS`` the private scale slope, i.e.
  ``FP = SV / SS + RI / (RS * SS)``: the quantity the scanner computed, comparable across
  scans (for quantitative maps, ASL, diffusion...).

dcm2niix writes FP by default (``-p y``: its NIfTI ``scl_slope = 1/SS``,
``scl_inter = RI/(RS*SS)``; JSON ``UsePhilipsFloatNotDisplayScaling: 1``), and so does
:func:`dicomml.load_series` by default (``values="default"`` or ``"philips_float"``);
``values="display"`` gives DV. Like dcm2niix, the scale intercept (2005,xx0D) is recorded but
not used. The scale slope is taken per plane: per frame in enhanced files; in classic files one
file is read per distinct (Rescale Slope, Rescale Intercept) of the series (Philips writes one
scale slope per rescale; dcm2niix reads the first file only).

``metadata["scaling"]`` records what was applied: ``applied`` = ``"philips_float"``,
``"modality_lut"`` (DV, or any other series) or ``"none"`` (``dtype=None``: stored values), the
``formula``, and for Philips the distinct ``rescale_slope``, ``rescale_intercept``,
``scale_slope`` and ``scale_intercept`` values.

Example
-------
>>> import pandas as pd
>>> planes = pd.DataFrame({"slope": [2.0], "intercept": [4.0], "philips_scale_slope": [0.5],
...                        "path": ["a"]})
>>> float_scaling(planes)[["slope", "intercept"]].values.tolist()
[[2.0, 4.0]]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dicomml.errors import InvalidDicomError

from ._util import column

#: accepted ``values=``: "default" (= "philips_float" where a Philips scale slope exists),
#: "philips_float", "display" (the Modality LUT only)
VALUES = ("default", "philips_float", "display")
CREATOR = "Philips MR Imaging DD 001"
PER_FRAME_CREATOR = "Philips MR Imaging DD 005"
SCALE_SLOPE, SCALE_INTERCEPT, PER_FRAME_GROUP = 0x0E, 0x0D, 0x0F
LUT_FORMULA = "stored * RescaleSlope + RescaleIntercept"
DOSE_FORMULA = "stored * DoseGridScaling (3004,000E)"
FLOAT_FORMULA = ("(stored * RescaleSlope + RescaleIntercept) / (RescaleSlope * ScaleSlope), "
                 "ScaleSlope = Philips private (2005,xx0E)")


def check_values(values: str) -> str:
    if values not in VALUES:
        raise ValueError(f"values must be one of {', '.join(map(repr, VALUES))}, got {values!r}")
    return values


def is_philips_mr(instances: pd.DataFrame) -> bool:
    """True when every file says Manufacturer Philips and Modality MR."""
    makers = [str(v).upper() for v in column(instances, "Manufacturer", "").tolist()]
    modalities = [str(v).upper() for v in column(instances, "Modality", "").tolist()]
    return bool(makers) and all("PHILIPS" in m for m in makers) and \
        all(m == "MR" for m in modalities)


def apply(planes: pd.DataFrame, instances: pd.DataFrame, values: str = "default",
          dtype="float32") -> tuple[pd.DataFrame, dict]:
    """The planes with ``slope`` / ``intercept`` giving the chosen values, and the record for
    ``metadata["scaling"]`` (see the module docstring)."""
    check_values(values)
    if dtype is None:
        return planes, {"applied": "none", "formula": "stored values (dtype=None)"}
    if not is_philips_mr(instances):
        modalities = {str(v).upper() for v in column(instances, "Modality", "").tolist()}
        if modalities == {"RTDOSE"}:
            return planes, {"applied": "dose_grid_scaling", "formula": DOSE_FORMULA}
        return planes, {"applied": "modality_lut", "formula": LUT_FORMULA}
    planes = with_scale_slopes(planes)
    record = {"rescale_slope": _distinct(planes["slope"]),
              "rescale_intercept": _distinct(planes["intercept"]),
              "scale_slope": _distinct(planes["philips_scale_slope"]),
              "scale_intercept": _distinct(planes["philips_scale_intercept"])}
    usable = _usable(planes)
    if values == "display" or not usable.any():
        return planes, {"applied": "modality_lut", "formula": LUT_FORMULA, **record}
    if not usable.all():
        record["unscaled_planes"] = int((~usable).sum())
    return float_scaling(planes), {"applied": "philips_float", "formula": FLOAT_FORMULA,
                                   **record}


def float_scaling(planes: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``slope = 1/SS`` and ``intercept = RI/(RS*SS)`` where the plane's scale
    slope SS and Rescale Slope RS are finite and non-zero (other planes unchanged)."""
    usable = _usable(planes)
    scale = planes["philips_scale_slope"].to_numpy(dtype=np.float64)
    slope = planes["slope"].to_numpy(dtype=np.float64)
    intercept = planes["intercept"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        new_slope = np.where(usable, 1.0 / scale, slope)
        new_intercept = np.where(usable, intercept / (slope * scale), intercept)
    planes = planes.copy()
    planes["slope"], planes["intercept"] = new_slope, new_intercept
    return planes


def _usable(planes: pd.DataFrame) -> np.ndarray:
    if "philips_scale_slope" not in planes.columns:
        return np.zeros(len(planes), dtype=bool)
    scale = planes["philips_scale_slope"].to_numpy(dtype=np.float64)
    slope = planes["slope"].to_numpy(dtype=np.float64)
    return np.isfinite(scale) & (scale != 0) & np.isfinite(slope) & (slope != 0)


def with_scale_slopes(planes: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``philips_scale_slope`` / ``philips_scale_intercept`` per plane: per frame
    for multi-frame files (one header read per file), else one header read per distinct
    (slope, intercept) of the single-frame files."""
    planes = planes.copy()
    slopes = np.full(len(planes), np.nan)
    intercepts = np.full(len(planes), np.nan)
    frames = pd.to_numeric(planes.get("number_of_frames", pd.Series(1, index=planes.index)),
                           errors="coerce").fillna(1).to_numpy()
    multi = frames > 1
    for path, index in planes.index[multi].groupby(planes["path"][multi]).items():
        found = read_frame_scales(str(path))
        for i in index:
            frame = int(planes.at[i, "frame"])
            if frame < len(found):
                slopes[i], intercepts[i] = found[frame]
    single = planes.loc[~multi]
    for _, group in single.groupby(["slope", "intercept"], sort=False):
        slopes[group.index], intercepts[group.index] = read_scale(str(group["path"].iloc[0]))
    planes["philips_scale_slope"], planes["philips_scale_intercept"] = slopes, intercepts
    return planes


def read_scale(path: str) -> tuple[float, float]:
    """(scale slope, scale intercept) at the top level of one file (NaN when absent)."""
    return scale_of(_header(path))


def read_frame_scales(path: str) -> list[tuple[float, float]]:
    """Per frame (scale slope, scale intercept) of a multi-frame file: from each frame's
    private functional group, else the top-level values for every frame."""
    ds = _header(path)
    top = scale_of(ds)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    frames = [frame_scale(item) for item in per_frame]
    if not frames:
        return [top] * int(ds.get("NumberOfFrames") or 1)
    return [found if math.isfinite(found[0]) else top for found in frames]


def _header(path: str):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a typed error
        raise InvalidDicomError(f"header unreadable: {exc}", path=path) from exc


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


def _distinct(values: pd.Series) -> list:
    found = pd.to_numeric(values, errors="coerce").dropna().unique().tolist()
    return sorted(float(v) for v in found)[:16]
