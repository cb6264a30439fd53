"""Slice normals, LPS/RAS conversion and orientation codes (pure numpy).

Conventions: patient coordinates are DICOM's LPS (x to the patient's Left, y Posterior,
z Superior), in mm. Image Orientation (Patient) ``iop`` = (row cosines F_r, column cosines F_c):
F_r points along a row (increasing column index), F_c down a column (increasing row index).

Example
-------
>>> slice_normal((1, 0, 0, 0, 1, 0))
array([0., 0., 1.])
>>> orientation_code(np.diag([2.0, 1.0, 1.0, 1.0]))   # axes (slice, row, column) -> L, P, S
'LPS'
"""

from __future__ import annotations

import numpy as np

#: flips x and y: LPS <-> RAS (its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

_POSITIVE = "LPS"
_NEGATIVE = "RAI"


def row_col_cosines(iop) -> tuple[np.ndarray, np.ndarray]:
    """Split a 6-value orientation into unit row cosines F_r and column cosines F_c."""
    values = np.asarray(iop, dtype=np.float64).reshape(6)
    f_r, f_c = values[:3], values[3:]
    return f_r / np.linalg.norm(f_r), f_c / np.linalg.norm(f_c)


def slice_normal(iop) -> np.ndarray:
    """Unit slice normal F_r x F_c (LPS) from Image Orientation (Patient)."""
    f_r, f_c = row_col_cosines(iop)
    normal = np.cross(f_r, f_c)
    return normal / np.linalg.norm(normal)


def lps_to_ras(affine) -> np.ndarray:
    """Convert a 4x4 affine whose output is LPS mm into one whose output is RAS mm."""
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)


ras_to_lps = lps_to_ras  # the flip is its own inverse


def axis_codes(affine, labels: str = "LPS") -> tuple[str, ...]:
    """The patient direction each array axis points to most, as letters.

    ``labels`` names the positive x, y, z of the affine's output frame ("LPS" for our affines,
    "RAS" for NIfTI's). Each axis gets the letter of its dominant world component; axes are
    assigned greedily by largest absolute cosine so two axes never share a letter.
    Works like nibabel's ``aff2axcodes`` for any number of axes up to 3.
    """
    opposite = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
    rotation = np.asarray(affine, dtype=np.float64)[:3, :3]
    directions = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
    weights = np.abs(directions).copy()
    codes: list[str | None] = [None] * directions.shape[1]
    for _ in range(directions.shape[1]):
        world, axis = np.unravel_index(np.argmax(weights), weights.shape)
        sign = directions[world, axis]
        letter = labels[world]
        codes[axis] = letter if sign > 0 else opposite[letter]
        weights[world, :] = -1
        weights[:, axis] = -1
    return tuple(codes)


def orientation_code(affine, labels: str = "LPS") -> str:
    """Three-letter code of an affine's axes, e.g. ``"LPS"`` or ``"SPL"`` (see :func:`axis_codes`)."""
    return "".join(axis_codes(affine, labels))
