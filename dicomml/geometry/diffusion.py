"""Diffusion encoding: vendor gradient frames to the LPS patient frame, and FSL ``.bval``/``.bvec``.

Conventions
-----------
- A gradient is a unit 3-vector in DICOM's **LPS patient frame** (x to the patient's Left,
  y Posterior, z Superior), or None for a b=0 volume (or where no direction is known).
  b-values are in s/mm^2.
- FSL's ``.bvec`` holds one column per volume (3 rows: x, y, z) in the *voxel* frame of the
  NIfTI image it belongs to: ``v = R.T @ g_ras`` with ``R`` the unit columns of the image's
  (i, j, k) -> RAS affine and ``g_ras = (-g_x, -g_y, g_z)``; when ``det(R) > 0`` (a
  "neurological" storage order) FSL expects the x component negated. This is what dcm2niix
  writes; tools read it back with ``g_ras = R @ (flip_x(v) if det > 0 else v)``.

Vendor frames (what dcm2niix documents and does, see its ``nii_dicom.cpp``):

- **Standard** (0018,9089) Diffusion Gradient Orientation and the enhanced MR Diffusion
  Sequence, Siemens CSA ``DiffusionGradientDirection``, Philips (2005,10B0-10B2) and GE
  (0019,10BB-10BD) on DV24+ (``in_image_frame=False``): patient frame, LPS.
- **GE** (0019,10BB-10BD) are given in the image (logical) frame: ``(x, y, z)`` along the row
  direction, the column direction and the slice normal (``F_r``, ``F_c``, ``F_r x F_c``);
  dcm2niix treats them so for every GE software version (it then flips what needs flipping
  for its own row order). :func:`image_to_patient` applies that rotation.
- **Canon/Toshiba** Image Comments ``b=1500(0.445,0.000,0.895)`` likewise hold the direction
  in the image frame (:func:`image_to_patient`).

Example
-------
>>> import numpy as np
>>> iop = (1, 0, 0, 0, 1, 0)                        # axial, rows along x, columns along y
>>> image_to_patient((0.0, 0.0, 1.0), iop)          # the slice normal, LPS
(0.0, 0.0, 1.0)
>>> ras_affine = np.diag([-2.0, 2.0, 3.0, 1.0])     # (i, j, k) -> RAS, det < 0
>>> fsl_bvecs([None, (1.0, 0.0, 0.0)], ras_affine).tolist()
[[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["unit_or_none", "image_to_patient", "fsl_bvecs", "bvecs_to_ras", "format_fsl"]


def unit_or_none(vector) -> tuple[float, float, float] | None:
    """``vector`` scaled to unit length as a 3-tuple of floats; None when it is absent, not 3
    finite numbers, or shorter than 1e-6 (a b=0 or isotropic "direction" of (0, 0, 0))."""
    if vector is None:
        return None
    try:
        v = np.asarray([float(x) for x in vector], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if v.shape != (3,) or not np.isfinite(v).all():
        return None
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:
        return None
    return tuple(float(x) for x in v / norm)


def image_to_patient(vector, orientation: Sequence[float]) -> tuple[float, float, float] | None:
    """A direction given in the image frame (row direction, column direction, slice normal) as
    a unit LPS vector; ``orientation`` is Image Orientation (Patient) (row cosines F_r, then
    column cosines F_c). None when ``vector`` is not usable (see :func:`unit_or_none`)."""
    v = unit_or_none(vector)
    if v is None:
        return None
    cosines = np.asarray(orientation, dtype=np.float64)
    row, column = cosines[:3], cosines[3:]
    normal = np.cross(row, column)
    lps = v[0] * row + v[1] * column + v[2] * normal
    return unit_or_none(lps)


def fsl_bvecs(gradients: Sequence, ras_affine: np.ndarray) -> np.ndarray:
    """FSL ``.bvec`` columns ``(3, volumes)`` for LPS unit gradients (None -> 0, 0, 0) of a
    NIfTI image whose (i, j, k) -> RAS affine is ``ras_affine`` (see the module docstring)."""
    linear = np.asarray(ras_affine, dtype=np.float64)[:3, :3]
    unit = linear / np.linalg.norm(linear, axis=0)
    flip_x = np.linalg.det(unit) > 0
    out = np.zeros((3, len(gradients)))
    for index, gradient in enumerate(gradients):
        g = unit_or_none(gradient)
        if g is None:
            continue
        ras = np.array([-g[0], -g[1], g[2]])
        v = np.linalg.solve(unit, ras)  # = unit.T @ ras for an orthonormal affine
        if flip_x:
            v[0] = -v[0]
        out[:, index] = v / np.linalg.norm(v)
    return out


def bvecs_to_ras(bvecs: np.ndarray, ras_affine: np.ndarray) -> np.ndarray:
    """The inverse of :func:`fsl_bvecs`: ``(3, volumes)`` FSL columns to RAS unit vectors
    (zero columns stay zero)."""
    linear = np.asarray(ras_affine, dtype=np.float64)[:3, :3]
    unit = linear / np.linalg.norm(linear, axis=0)
    v = np.array(bvecs, dtype=np.float64).reshape(3, -1)
    if np.linalg.det(unit) > 0:
        v[0] = -v[0]
    ras = unit @ v
    norms = np.linalg.norm(ras, axis=0)
    return np.where(norms > 1e-6, ras / np.where(norms > 1e-6, norms, 1.0), 0.0)


def format_fsl(rows: np.ndarray, *, integers: bool = False) -> str:
    """Text of an FSL ``.bval`` (one row, ``integers=True``) or ``.bvec`` (three rows) file:
    space-separated values, one line per row."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    lines = []
    for row in rows:
        if integers:
            lines.append(" ".join(str(int(round(v))) if math.isfinite(v) else "0" for v in row))
        else:
            lines.append(" ".join(f"{0.0 if abs(v) < 5e-7 else v:.6g}" for v in row))
    return "\n".join(lines) + "\n"
