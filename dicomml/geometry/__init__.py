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

# module -> the public names it defines
_MODULES = {
    "affine": ("affine_from_columns", "direction_from_affine", "in_plane_axes", "regular_affine",
               "series_affine", "spacing_from_affine"),
    "checks": ("DEFAULT_TOLERANCES", "Finding", "Tolerances", "check_consistency",
               "check_duplicates", "check_spacing", "check_stack", "check_tilt", "tilt_angle_deg"),
    "orientation": ("LPS_TO_RAS", "NIFTI_ORDER", "axis_codes", "axis_directions",
                    "direction_letter", "lps_to_nifti_affine", "lps_to_ras",
                    "nifti_to_lps_affine", "orientation_code", "parse_code", "ras_to_lps",
                    "reorientation", "row_col_cosines", "slice_normal"),
    "planes": ("plane_table",),
    "resample": ("deshear", "regularise_spacing"),
    "sorting": ("mean_step_vector", "project", "slice_spacing", "slice_steps", "sort_order"),
    "stack": ("Stack", "arrange"),
}
_EXPORTS = {name: f"{__name__}.{module}" for module, names in _MODULES.items() for name in names}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
