"""Affine builders: index (slice, row, column, 1) -> LPS mm.

Column 0 is the step between consecutive slices, column 1 F_c * (row spacing), column 2
F_r * (column spacing), column 3 the position of slice 0 (see docs/conventions.md).
For an untilted series column 0 is the normal times the slice spacing; for gantry tilt it is
the actual mean step between positions, which is not perpendicular to the plane — the exact
"sheared" (non-orthogonal) affine.

Example
-------
>>> a = regular_affine((1, 0, 0, 0, 1, 0), (0.5, 0.8), 2.0, (10, 20, 30))
>>> a[:3].tolist()
[[0.0, 0.0, 0.8, 10.0], [0.0, 0.5, 0.0, 20.0], [2.0, 0.0, 0.0, 30.0]]
"""

from __future__ import annotations

import numpy as np

from .orientation import row_col_cosines, slice_normal
from .sorting import mean_step_vector, slice_spacing


def in_plane_axes(iop, pixel_spacing) -> tuple[np.ndarray, np.ndarray]:
    """(row axis, column axis): LPS vectors in mm per index step, ``F_c * Δrow`` and
    ``F_r * Δcol`` (``pixel_spacing`` = (Δrow, Δcol), mm, as in Pixel Spacing).

    >>> [v.tolist() for v in in_plane_axes((1, 0, 0, 0, 1, 0), (0.5, 0.8))]
    [[0.0, 0.5, 0.0], [0.8, 0.0, 0.0]]
    """
    f_r, f_c = row_col_cosines(iop)
    row_spacing, col_spacing = (float(v) for v in pixel_spacing)
    return f_c * row_spacing, f_r * col_spacing


def affine_from_columns(slice_step, iop, pixel_spacing, origin) -> np.ndarray:
    """4x4 float64 affine from a 3D slice step vector (mm), IOP, pixel spacing and origin."""
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_step, dtype=np.float64)
    affine[:3, 1], affine[:3, 2] = in_plane_axes(iop, pixel_spacing)
    affine[:3, 3] = np.asarray(origin, dtype=np.float64)
    return affine


def regular_affine(iop, pixel_spacing, spacing: float, origin) -> np.ndarray:
    """Orthogonal affine: slice step = normal * ``spacing`` (mm, may be negative)."""
    return affine_from_columns(slice_normal(iop) * spacing, iop, pixel_spacing, origin)


def series_affine(sorted_positions, iop, pixel_spacing, *, sheared: bool) -> np.ndarray:
    """Affine of a sorted stack of slices.

    ``sheared=False``: the slice axis is the normal times the mean spacing along the normal
    (exact when positions move along the normal). ``sheared=True``: the slice axis is the mean
    3D step between positions (exact for gantry tilt; non-orthogonal).
    """
    pos = np.asarray(sorted_positions, dtype=np.float64).reshape(-1, 3)
    if sheared and len(pos) > 1:
        return affine_from_columns(mean_step_vector(pos), iop, pixel_spacing, pos[0])
    return regular_affine(iop, pixel_spacing, slice_spacing(pos, iop), pos[0])


def spacing_from_affine(affine) -> np.ndarray:
    """Voxel spacing (slice, row, column) in mm, float64 (3,), always positive: the lengths
    of the affine's first three columns (nibabel's ``voxel_sizes``). The one spacing rule:
    ``Volume.spacing``, the transforms' ``spacing`` key and the viz aspect ratios use it.

    >>> spacing_from_affine(np.diag([2.5, -0.7, 0.7, 1.0])).tolist()
    [2.5, 0.7, 0.7]
    """
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    return np.sqrt((rotation * rotation).sum(axis=0))  # np.linalg.norm(axis=0), minus checks


def direction_from_affine(affine) -> np.ndarray:
    """3x3 matrix of unit axis directions (columns: slice, row, column axes), LPS.

    >>> direction_from_affine(np.diag([2.0, -0.5, 0.5, 1.0])).diagonal().tolist()
    [1.0, -1.0, 1.0]
    """
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    return rotation / spacing_from_affine(affine)
