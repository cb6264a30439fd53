"""Geometry of synthetic series: orientations, slice positions, the ground-truth affine.

Conventions (docs/conventions.md): IOP = (F_r, F_c), F_r is the direction of increasing column
index, F_c of increasing row index; the slice normal is ``cross(F_r, F_c)``; the affine maps
(slice, row, column, 1) to LPS millimetres.

Values are rounded to what the DICOM decimal strings hold, so the ground truth equals what a
reader parses from the written files.

Example
-------
>>> iop = orientation_cosines("sagittal")
>>> [float(v) for v in iop]
[0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
"""

from __future__ import annotations

import numpy as np
from pydicom.valuerep import format_number_as_ds

# (F_r, F_c) for a head-first-supine patient, in LPS
_BASE_ORIENTATIONS = {
    "axial": ((1, 0, 0), (0, 1, 0)),
    "coronal": ((1, 0, 0), (0, 0, -1)),
    "sagittal": ((0, 1, 0), (0, 0, -1)),
}

# patient position -> rotation taking gantry (HFS-equivalent) directions to patient LPS;
# columns are where the gantry's x (row) and y (column) axes point on the patient.
_PATIENT_POSITIONS = {
    "HFS": ((1, 0, 0), (0, 1, 0)),
    "HFP": ((-1, 0, 0), (0, -1, 0)),
    "FFS": ((-1, 0, 0), (0, 1, 0)),
    "FFP": ((1, 0, 0), (0, -1, 0)),
    "HFDR": ((0, 1, 0), (-1, 0, 0)),
    "HFDL": ((0, -1, 0), (1, 0, 0)),
    "FFDR": ((0, -1, 0), (-1, 0, 0)),
    "FFDL": ((0, 1, 0), (1, 0, 0)),
}

PATIENT_POSITIONS = tuple(_PATIENT_POSITIONS)
ORIENTATIONS = (*_BASE_ORIENTATIONS, "oblique")


def ds_round(values) -> np.ndarray:
    """Round each value to what a 16-character DICOM decimal string (DS) keeps."""
    flat = [0.0 if abs(v) < 1e-9 else float(format_number_as_ds(float(v)))
            for v in np.ravel(values)]
    return np.asarray(flat, dtype=np.float64).reshape(np.shape(values))


def ds_strings(values) -> list[str]:
    """The DS strings for ``values`` (consistent with :func:`ds_round`)."""
    return [format_number_as_ds(float(v)) for v in ds_round(values).ravel()]


def patient_rotation(patient_position: str) -> np.ndarray:
    """3x3 rotation taking head-first-supine directions to ``patient_position`` (e.g. "FFP")."""
    try:
        gx, gy = _PATIENT_POSITIONS[patient_position]
    except KeyError:
        raise ValueError(f"unknown patient position {patient_position!r}; "
                         f"use one of {', '.join(PATIENT_POSITIONS)}") from None
    gx, gy = np.asarray(gx, float), np.asarray(gy, float)
    return np.column_stack([gx, gy, np.cross(gx, gy)])


def random_rotation(seed: int) -> np.ndarray:
    """A rotation matrix drawn from ``seed`` (30-60 degrees about a random axis)."""
    rng = np.random.default_rng([seed, 4242])
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(30.0, 60.0)) * rng.choice([-1.0, 1.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def orientation_cosines(orientation="axial", *, patient_position: str = "HFS",
                        seed: int = 0) -> np.ndarray:
    """Image Orientation (Patient), 6 floats rounded as written.

    ``orientation`` is "axial", "coronal", "sagittal", "oblique" (an axial plane rotated by
    :func:`random_rotation` of ``seed``) or 6 direction cosines, which are orthonormalised
    and used as they are (``patient_position`` then does not rotate them).
    """
    if isinstance(orientation, str):
        name = orientation.lower()
        if name == "oblique":
            row, col = (random_rotation(seed) @ np.eye(3)[:, :2]).T
        elif name in _BASE_ORIENTATIONS:
            row, col = (np.asarray(v, float) for v in _BASE_ORIENTATIONS[name])
        else:
            raise ValueError(f"unknown orientation {orientation!r}; use one of "
                             f"{', '.join(ORIENTATIONS)} or 6 direction cosines")
        rot = patient_rotation(patient_position)
        row, col = rot @ row, rot @ col
    else:
        row, col = _orthonormal_pair(orientation)
    return ds_round(np.concatenate([row, col]))


def _orthonormal_pair(iop):
    values = np.asarray(iop, dtype=np.float64).ravel()
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        raise ValueError(f"orientation needs 6 finite direction cosines, got {iop!r}")
    row = values[:3] / np.linalg.norm(values[:3])
    col = values[3:] - row * np.dot(row, values[3:])
    norm = np.linalg.norm(col)
    if norm < 1e-6:
        raise ValueError(f"orientation cosines are parallel: {iop!r}")
    return row, col / norm


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """cross(F_r, F_c): the direction in which the ground-truth slices ascend."""
    return np.cross(iop[:3], iop[3:])


def slice_positions(iop, origin, offsets, *, gantry_tilt: float = 0.0) -> np.ndarray:
    """IPP of each slice, (n, 3) LPS mm, rounded as written.

    Slice ``k`` sits at ``origin + offsets[k] * normal``; a gantry tilt of ``t`` degrees adds
    ``offsets[k] * tan(t)`` mm along the column direction F_c (the slices stay parallel).
    """
    iop = np.asarray(iop, float)
    offsets = np.asarray(offsets, float)[:, None]
    shear = np.tan(np.deg2rad(gantry_tilt)) * iop[3:]
    return ds_round(np.asarray(origin, float) + offsets * slice_normal(iop) + offsets * shear)


def ground_truth_affine(iop, positions, pixel_spacing, nominal_step: float) -> np.ndarray:
    """4x4 affine (slice, row, column, 1) -> LPS mm.

    Column 0 is the mean step between sorted slices (``nominal_step`` along the normal for a
    single slice); columns 1, 2 are F_c * row spacing and F_r * column spacing; column 3 the
    IPP of slice 0.
    """
    iop = np.asarray(iop, float)
    positions = np.asarray(positions, float)
    if len(positions) > 1:
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
    else:
        step = slice_normal(iop) * nominal_step
    affine = np.eye(4)
    affine[:3, 0] = step
    affine[:3, 1] = iop[3:] * pixel_spacing[0]
    affine[:3, 2] = iop[:3] * pixel_spacing[1]
    affine[:3, 3] = positions[0]
    return affine
