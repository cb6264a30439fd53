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
:func:`dicomml.load_series` by default (``scaling="default"`` or ``"philips_float"``);
``scaling="display"`` gives DV. Like dcm2niix, the scale intercept (2005,xx0D) is recorded but
not used. The scale slope is taken per plane: per frame in enhanced files; in classic files one
file is read per distinct (Rescale Slope, Rescale Intercept) of the series (assumed: files with
the same rescale share the scale slope; dcm2niix reads the first file's values only, so where
they vary between slices its values may differ from these per-plane ones).

``metadata["scaling"]`` records what was applied: ``applied`` = ``"philips_float"``,
``"modality_lut"`` (DV, or any other series), ``"dose_grid_scaling"`` (RT Dose: stored value x
Dose Grid Scaling, in Dose Units) or ``"none"`` (``dtype=None``: stored values), the
``formula``, and for Philips the distinct ``rescale_slope``, ``rescale_intercept``,
``scale_slope`` and ``scale_intercept`` values.

Example
-------
>>> import pandas as pd
>>> planes = pd.DataFrame({"slope": [2.0], "intercept": [4.0], "philips_scale_slope": [0.25],
...                        "path": ["a"]})
>>> float_scaling(planes)[["slope", "intercept"]].values.tolist()  # 1/SS, RI/(RS*SS)
[[4.0, 8.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml.errors import InvalidDicomError
from dicomml.geometry.philips import frame_scales, scale_of

from ._util import column

#: accepted ``scaling=`` of load_series: "default" (= "philips_float" where a Philips scale
#: slope exists),
#: "philips_float", "display" (the Modality LUT only)
VALUES = ("default", "philips_float", "display")
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
    """A copy with ``philips_scale_slope`` / ``philips_scale_intercept`` per plane: kept
    where the plane table has them (enhanced frames, :func:`dicomml.geometry.enhanced.frame_rows`),
    else per frame for multi-frame files (one header read per file) and one header read per
    distinct (slope, intercept) of the single-frame files."""
    planes = planes.copy()
    known = planes.columns.intersection(["philips_scale_slope", "philips_scale_intercept"])
    slopes = pd.to_numeric(planes.get("philips_scale_slope", np.nan), errors="coerce")
    intercepts = pd.to_numeric(planes.get("philips_scale_intercept", np.nan), errors="coerce")
    slopes = np.broadcast_to(np.asarray(slopes, np.float64), len(planes)).copy()
    intercepts = np.broadcast_to(np.asarray(intercepts, np.float64), len(planes)).copy()
    todo = np.isnan(slopes) if len(known) else np.ones(len(planes), dtype=bool)
    frames = pd.to_numeric(planes.get("number_of_frames", pd.Series(1, index=planes.index)),
                           errors="coerce").fillna(1).to_numpy()
    multi = todo & (frames > 1)
    for path, index in planes.index[multi].groupby(planes["path"][multi]).items():
        found = read_frame_scales(str(path))
        for i in index:
            frame = int(planes.at[i, "frame"])
            if frame < len(found):
                slopes[i], intercepts[i] = found[frame]
    single = planes.loc[todo & ~multi]
    for _, group in single.groupby(["slope", "intercept"], sort=False):
        slopes[group.index], intercepts[group.index] = read_scale(str(group["path"].iloc[0]))
    planes["philips_scale_slope"], planes["philips_scale_intercept"] = slopes, intercepts
    return planes


def read_scale(path: str) -> tuple[float, float]:
    """(scale slope, scale intercept) at the top level of one file (NaN when absent)."""
    return scale_of(_header(path))


def read_frame_scales(path: str) -> list[tuple[float, float]]:
    """Per frame (scale slope, scale intercept) of a multi-frame file (see
    :func:`dicomml.geometry.philips.frame_scales`)."""
    return frame_scales(_header(path))


def _header(path: str):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a typed error
        raise InvalidDicomError(f"header unreadable: {exc}", path=path) from exc


def _distinct(values: pd.Series) -> list:
    found = pd.to_numeric(values, errors="coerce").dropna().unique().tolist()
    return sorted(float(v) for v in found)[:16]
