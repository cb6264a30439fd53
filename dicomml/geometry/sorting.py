"""Sorting slices and slice spacing from positions (pure numpy).

Slices are ordered by the projection of Image Position (Patient) on the slice normal
(F_r x F_c), never by file name or Instance Number; spacing comes from those positions,
never from Slice Thickness or Spacing Between Slices.

Example
-------
>>> pos = np.array([[0, 0, 5.0], [0, 0, 0.0], [0, 0, 2.5]])
>>> order = sort_order(pos, (1, 0, 0, 0, 1, 0))
>>> order.tolist(), slice_steps(pos[order], (1, 0, 0, 0, 1, 0)).tolist()
([1, 2, 0], [2.5, 2.5])
"""

from __future__ import annotations

import numpy as np

from .orientation import slice_normal


def project(positions, iop) -> np.ndarray:
    """Distance of each position along the slice normal, mm: ``positions @ normal``, shape (n,)."""
    return np.asarray(positions, dtype=np.float64).reshape(-1, 3) @ slice_normal(iop)


def sort_order(positions, iop) -> np.ndarray:
    """Indices that sort slices by increasing projection on the normal (stable)."""
    return np.argsort(project(positions, iop), kind="stable")


def slice_steps(sorted_positions, iop) -> np.ndarray:
    """Distances along the normal between consecutive sorted slices, mm, shape (n-1,)."""
    return np.diff(project(sorted_positions, iop))


def slice_spacing(sorted_positions, iop) -> float:
    """Mean spacing along the normal between consecutive slices, mm (1.0 for one slice).

    The mean of the steps equals (last - first) / (n - 1), the spacing of the regular grid
    through the end slices.
    """
    steps = slice_steps(sorted_positions, iop)
    return float(steps.mean()) if steps.size else 1.0


def mean_step_vector(sorted_positions) -> np.ndarray:
    """Mean 3D step between consecutive slices, LPS mm ((last - first) / (n - 1))."""
    pos = np.asarray(sorted_positions, dtype=np.float64).reshape(-1, 3)
    if len(pos) < 2:
        return np.zeros(3)
    return (pos[-1] - pos[0]) / (len(pos) - 1)
