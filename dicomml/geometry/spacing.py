"""Pixel spacing of an image plane, per PS3.3 10.7.1.1 (Pixel Spacing), the DX Detector
module (Imager Pixel Spacing, Estimated Radiographic Magnification Factor) and the SC
Image module (Nominal Scanned Pixel Spacing): which value holds in the patient, which at
the detector. One rule for ``load_series`` (images without patient geometry) and
``DicomImageDataset``.

Example
-------
>>> pixel_spacing({"ImagerPixelSpacing": [0.1, 0.1],
...                "EstimatedRadiographicMagnificationFactor": 1.25})
([0.08, 0.08], 'ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: where :func:`pixel_spacing` measures: in the patient (magnification undone) or at the
#: detector
SPACING_PLANES = ("patient", "detector")
#: the attributes :func:`pixel_spacing` reads
SPACING_TAGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing",
                "PixelSpacingCalibrationType", "EstimatedRadiographicMagnificationFactor")


def _pair(value):
    """A catalog spacing value as (row, column) floats > 0, or None."""
    if value is None or isinstance(value, float) and value != value:
        return None
    values = [float(v) for v in list(value)[:2]]
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        return None
    return values


def pixel_spacing(row: Mapping, plane: str = "patient") -> tuple[list[float], str]:
    """``([row spacing, column spacing] mm, rule)`` of an image from its catalog values, per
    PS3.3 10.7.1.1 and the DX Detector module:

    - Pixel Spacing that differs from Imager (or Nominal Scanned) Pixel Spacing, or with a
      Pixel Spacing Calibration Type, is calibrated in the patient: ``"PixelSpacing
      (calibrated)"``;
    - Imager Pixel Spacing (or Pixel Spacing equal to it) is at the detector: with
      ``plane="patient"`` and an Estimated Radiographic Magnification Factor it is divided by
      that factor (``"ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"``), else
      used as it is (``"ImagerPixelSpacing (detector)"``);
    - Pixel Spacing alone: ``"PixelSpacing"`` (cross-sectional images: in the patient;
      projection images: the standard cannot tell whether it was calibrated);
    - Nominal Scanned Pixel Spacing alone (scanned film): ``"NominalScannedPixelSpacing"``;
    - none: ``[1.0, 1.0]`` and ``"none (pixel units)"``.

    >>> pixel_spacing({"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.1, 0.1],
    ...                "EstimatedRadiographicMagnificationFactor": 1.25})
    ([0.08, 0.08], 'ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor')
    >>> pixel_spacing({"PixelSpacing": [0.08, 0.08], "ImagerPixelSpacing": [0.1, 0.1]})
    ([0.08, 0.08], 'PixelSpacing (calibrated)')
    """
    if plane not in SPACING_PLANES:
        raise ValueError(f"spacing must be one of {SPACING_PLANES}, got {plane!r}")
    pixel = _pair(row.get("PixelSpacing"))
    imager = _pair(row.get("ImagerPixelSpacing"))
    nominal = _pair(row.get("NominalScannedPixelSpacing"))
    calibration = row.get("PixelSpacingCalibrationType")
    detector = imager or nominal
    calibrated = pixel is not None and (
        (isinstance(calibration, str) and calibration.strip() != "")
        or (detector is not None and not np.allclose(pixel, detector, rtol=1e-6, atol=0)))
    if calibrated and plane == "patient":
        return pixel, "PixelSpacing (calibrated)"
    if imager is not None:
        factor = row.get("EstimatedRadiographicMagnificationFactor")
        if plane == "patient" and factor is not None and factor == factor and factor > 0:
            return ([v / float(factor) for v in imager],
                    "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor")
        return imager, "ImagerPixelSpacing (detector)"
    if pixel is not None:
        return pixel, "PixelSpacing"
    if nominal is not None:
        return nominal, "NominalScannedPixelSpacing"
    return [1.0, 1.0], "none (pixel units)"
