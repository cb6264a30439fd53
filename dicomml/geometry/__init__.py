"""Pure-numpy geometry: plane tables, sorting, spacing, checks, affines, orientation codes.

Conventions (docs/conventions.md): arrays are (slices, rows, columns); affines map the index
vector (slice, row, column, 1) to DICOM LPS patient coordinates in mm.

``mosaic`` and ``enhanced`` (Siemens mosaic and enhanced multi-frame plane tables) are imported
on demand by the loader, not here.
"""

from .affine import (
    affine_from_columns,
    direction_from_affine,
    regular_affine,
    series_affine,
    spacing_from_affine,
)
from .checks import (
    DEFAULT_TOLERANCES,
    Finding,
    Tolerances,
    check_consistency,
    check_duplicates,
    check_spacing,
    check_stack,
    check_tilt,
    tilt_angle_deg,
)
from .orientation import (
    LPS_TO_RAS,
    axis_codes,
    lps_to_ras,
    orientation_code,
    ras_to_lps,
    row_col_cosines,
    slice_normal,
)
from .planes import plane_table
from .resample import deshear, regularise_spacing
from .sorting import mean_step_vector, project, slice_spacing, slice_steps, sort_order
from .stack import Stack, arrange

__all__ = [
    "DEFAULT_TOLERANCES", "Finding", "LPS_TO_RAS", "Stack", "Tolerances", "affine_from_columns",
    "arrange",
    "axis_codes", "check_consistency", "check_duplicates", "check_spacing", "check_stack",
    "check_tilt", "deshear", "direction_from_affine", "lps_to_ras", "mean_step_vector",
    "orientation_code", "plane_table", "project", "ras_to_lps", "regular_affine",
    "regularise_spacing", "row_col_cosines", "series_affine", "slice_normal", "slice_spacing",
    "slice_steps", "sort_order", "spacing_from_affine", "tilt_angle_deg",
]
