"""Resampling an uneven or tilted stack onto a regular orthogonal grid (numpy + torch).

Used only on request (``load_series(..., resample=True)``). Linear interpolation; voxels
whose source point lies outside the source slice get ``fill`` (default: the array's minimum).

1. :func:`regularise_spacing` — linear interpolation along the slice axis onto evenly spaced
   positions between the first and last slice (step ~ the median step), exact for gaps and
   uneven spacing of positions on one line.
2. :func:`deshear` — for gantry tilt: every slice is shifted in-plane so that the slice axis
   becomes the normal (the output affine is orthogonal); bilinear via ``torch.grid_sample``.

Example
-------
>>> arr = np.stack([np.full((2, 2), v, np.float32) for v in (0, 1, 3)])
>>> pos = np.array([[0, 0, 0.0], [0, 0, 1.0], [0, 0, 3.0]])
>>> out, new_pos = regularise_spacing(arr, pos, (1, 0, 0, 0, 1, 0))
>>> out[:, 0, 0].tolist(), new_pos[:, 2].tolist()
([0.0, 1.5, 3.0], [0.0, 1.5, 3.0])
"""

from __future__ import annotations

import numpy as np

from .affine import in_plane_axes
from .orientation import slice_normal
from .sorting import project, slice_steps


def regularise_spacing(array, sorted_positions, iop):
    """Interpolate ``array`` (slices, rows, columns) onto evenly spaced slices.

    Returns ``(new_array, new_positions)``; the new step along the normal is
    ``span / round(span / median_step)``.
    """
    pos = np.asarray(sorted_positions, dtype=np.float64).reshape(-1, 3)
    d = project(pos, iop)
    steps = slice_steps(pos, iop)
    if steps.size == 0:
        return np.asarray(array), pos
    span = d[-1] - d[0]
    count = int(round(span / float(np.median(steps)))) + 1
    targets = np.linspace(d[0], d[-1], count)
    upper = np.clip(np.searchsorted(d, targets, side="right"), 1, len(d) - 1)
    lower = upper - 1
    weight = ((targets - d[lower]) / (d[upper] - d[lower]))[:, None, None]
    src = np.asarray(array, dtype=np.float32)
    out = src[lower] * (1 - weight) + src[upper] * weight
    new_pos = pos[lower] + (pos[upper] - pos[lower]) * weight[:, :, 0]
    return out.astype(np.float32), new_pos


def deshear(array, affine, fill: float | None = None):
    """Resample a sheared stack (slice axis not along the normal) onto an orthogonal grid.

    ``affine`` is the sheared LPS affine (index (slice, row, column, 1) -> mm). Returns
    ``(new_array, new_affine)`` with the same shape, origin and in-plane axes, and slice axis
    ``normal * (step . normal)``.
    """
    import torch

    affine = np.asarray(affine, dtype=np.float64)
    src = np.asarray(array, dtype=np.float32)
    step = affine[:3, 0]
    col_axis, row_axis = affine[:3, 2], affine[:3, 1]
    normal = np.cross(col_axis, row_axis)
    normal /= np.linalg.norm(normal)
    along = float(step @ normal)
    shift = step - along * normal                        # in-plane drift per slice, mm
    drift_rows = shift @ row_axis / (row_axis @ row_axis)  # in row indices per slice
    drift_cols = shift @ col_axis / (col_axis @ col_axis)
    slices, rows, cols = src.shape
    k = np.arange(slices, dtype=np.float64)[:, None, None]
    r = np.arange(rows, dtype=np.float64)[None, :, None] - k * drift_rows
    c = np.arange(cols, dtype=np.float64)[None, None, :] - k * drift_cols
    r, c = np.broadcast_arrays(r, c)
    grid = np.stack([2 * c / max(cols - 1, 1) - 1, 2 * r / max(rows - 1, 1) - 1], axis=-1)
    fill = float(src.min()) if fill is None else float(fill)
    eps = 1e-6
    outside = (r < -eps) | (r > rows - 1 + eps) | (c < -eps) | (c > cols - 1 + eps)
    sampled = torch.nn.functional.grid_sample(
        torch.from_numpy(src)[:, None], torch.from_numpy(grid.astype(np.float32)),
        mode="bilinear", padding_mode="border", align_corners=True)[:, 0].numpy()
    sampled[outside] = fill
    new_affine = affine.copy()
    new_affine[:3, 0] = normal * along
    return sampled, new_affine


__all__ = ["regularise_spacing", "deshear", "in_plane_axes", "slice_normal"]
