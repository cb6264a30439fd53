"""Pure-numpy geometry: plane tables, sorting, spacing, checks, affines, orientation codes.

Conventions (docs/conventions.md): arrays are (slices, rows, columns); affines map the index
vector (slice, row, column, 1) to DICOM LPS patient coordinates in mm. This package is the one
home of those conventions: spacing and directions of an affine (``affine``), orientation codes,
reorientation, LPS <-> RAS and the NIfTI axis order (``orientation``). Callers holding torch
tensors convert the 4x4 matrix to numpy and call these functions.

``mosaic`` and ``enhanced`` (Siemens mosaic and enhanced multi-frame plane tables) are imported
on demand by the loader, not here. The names below are imported on first access, so
``dicomml.geometry.affine`` or ``.orientation`` cost only numpy (no pandas, no torch).
"""

from __future__ import annotations

from dicomml._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS = {
    "affine_from_columns": "dicomml.geometry.affine",
    "direction_from_affine": "dicomml.geometry.affine",
    "in_plane_axes": "dicomml.geometry.affine",
    "regular_affine": "dicomml.geometry.affine",
    "series_affine": "dicomml.geometry.affine",
    "spacing_from_affine": "dicomml.geometry.affine",
    "DEFAULT_TOLERANCES": "dicomml.geometry.checks",
    "Finding": "dicomml.geometry.checks",
    "Tolerances": "dicomml.geometry.checks",
    "check_consistency": "dicomml.geometry.checks",
    "check_duplicates": "dicomml.geometry.checks",
    "check_spacing": "dicomml.geometry.checks",
    "check_stack": "dicomml.geometry.checks",
    "check_tilt": "dicomml.geometry.checks",
    "tilt_angle_deg": "dicomml.geometry.checks",
    "LPS_TO_RAS": "dicomml.geometry.orientation",
    "NIFTI_ORDER": "dicomml.geometry.orientation",
    "axis_codes": "dicomml.geometry.orientation",
    "axis_directions": "dicomml.geometry.orientation",
    "direction_letter": "dicomml.geometry.orientation",
    "lps_to_nifti_affine": "dicomml.geometry.orientation",
    "lps_to_ras": "dicomml.geometry.orientation",
    "nifti_to_lps_affine": "dicomml.geometry.orientation",
    "orientation_code": "dicomml.geometry.orientation",
    "parse_code": "dicomml.geometry.orientation",
    "ras_to_lps": "dicomml.geometry.orientation",
    "reorientation": "dicomml.geometry.orientation",
    "row_col_cosines": "dicomml.geometry.orientation",
    "slice_normal": "dicomml.geometry.orientation",
    "plane_table": "dicomml.geometry.planes",
    "deshear": "dicomml.geometry.resample",
    "regularise_spacing": "dicomml.geometry.resample",
    "mean_step_vector": "dicomml.geometry.sorting",
    "project": "dicomml.geometry.sorting",
    "slice_spacing": "dicomml.geometry.sorting",
    "slice_steps": "dicomml.geometry.sorting",
    "sort_order": "dicomml.geometry.sorting",
    "Stack": "dicomml.geometry.stack",
    "arrange": "dicomml.geometry.stack",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
