"""Sampling of true axial / coronal / sagittal planes through a (possibly oblique) volume.

Pure numpy, nearest neighbour; arrays are (slices, rows, columns) with an LPS affine (mm).

>>> image, origin, step = world_plane(np.ones((2, 3, 4)), np.eye(4), "coronal")
>>> image.shape, step            # identity: rows run I over 4 mm, columns L over 2 mm
((4, 2), 1.0)
"""

from __future__ import annotations

import itertools

import numpy as np

from dicomml.geometry.affine import spacing_from_affine
from dicomml.viz.orientation import _VIEW_DIRECTIONS


def world_plane(array, affine, plane: str, *, through=None, step: float | None = None,
                fill: float | None = None):
    """Sample the true axial / coronal / sagittal plane of a volume (nearest neighbour).

    The plane passes through ``through`` (LPS mm; default the volume centre) and is drawn
    radiologically (rows run toward P (axial) or I, columns toward L (axial, coronal) or P
    (sagittal)), covering the volume's extent, with square pixels of ``step`` mm (default the
    smallest spacing). Points outside the volume get ``fill`` (default the array minimum).
    Returns ``(image (rows, columns), origin_mm of pixel (0, 0), step_mm)``.

    >>> image, origin, step = world_plane(np.ones((2, 3, 4)), np.eye(4), "axial")
    >>> image.shape, origin.tolist(), step          # identity: axes run L, P, S
    ((3, 2), [0.0, 0.0, 1.5], 1.0)
    """
    array = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    down, right = (np.asarray(v, dtype=np.float64) for v in _VIEW_DIRECTIONS[plane])
    shape = np.array(array.shape[-3:])
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape])), dtype=float)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    if through is None:
        through = affine[:3, :3] @ ((shape - 1) / 2) + affine[:3, 3]
    through = np.asarray(through, dtype=np.float64)
    step = float(spacing_from_affine(affine).min()) if step is None else float(step)
    rows = _grid((world - through) @ down, step)
    cols = _grid((world - through) @ right, step)
    points = through + rows[:, None, None] * down + cols[None, :, None] * right
    index = np.linalg.solve(affine[:3, :3], (points.reshape(-1, 3) - affine[:3, 3]).T).T
    nearest = np.rint(index).astype(np.int64)
    inside = np.all((nearest >= 0) & (nearest < shape), axis=1)
    values = np.full(len(nearest), np.nanmin(array) if fill is None else fill, dtype=np.float64)
    values[inside] = array[tuple(nearest[inside].T)]
    origin = through + rows[0] * down + cols[0] * right
    return values.reshape(len(rows), len(cols)), origin, step


def _grid(offsets, step: float) -> np.ndarray:
    """Sample offsets (mm) every ``step`` mm from the smallest offset to the largest."""
    count = int(np.floor((offsets.max() - offsets.min()) / step + 1e-6)) + 1
    return offsets.min() + np.arange(count) * step
