"""Slice positions along the slice normal, from a Catalog, a Volume or raw positions.

Pure numpy; positions are Image Position (Patient) in LPS mm, one row per slice.

>>> slice_position_table([[0, 0, 0], [0, 0, 3]], (1, 0, 0, 0, 1, 0))["step"].tolist()
[3.0]
"""

from __future__ import annotations

import numpy as np

from dicomml.geometry.affine import direction_from_affine
from dicomml.geometry.sorting import project
from dicomml.viz.inputs import _volume_parts


def slice_position_table(positions, orientation) -> dict[str, np.ndarray]:
    """Sorted distances along the slice normal (mm), their steps, and flagged irregular steps.

    ``positions`` (n, 3) Image Position (Patient) in LPS mm, ``orientation`` the 6 IOP values.
    A step is flagged when it differs from the median step by more than 10 % (a gap shows as
    a step near a multiple of the median).

    >>> pos = [[0, 0, 0], [0, 0, 2], [0, 0, 4], [0, 0, 8]]
    >>> t = slice_position_table(pos, (1, 0, 0, 0, 1, 0))
    >>> t["distance"].tolist(), t["step"].tolist(), t["irregular"].tolist()
    ([0.0, 2.0, 4.0, 8.0], [2.0, 2.0, 4.0], [False, False, True])
    """
    distance = np.sort(project(positions, orientation))
    step = np.diff(distance)
    median = np.median(step) if step.size else 0.0
    irregular = np.abs(step - median) > 0.1 * max(abs(median), 1e-6)
    return {"distance": distance, "step": step, "irregular": irregular}


def positions_of(source, key=None):
    """Slice positions ``(n, 3)`` LPS mm and orientation ``(6,)`` from a Catalog and series
    ``key`` (one row per file), a Volume, or a ``(positions, orientation)`` pair.

    >>> pos, iop = positions_of(([[0, 0, 0], [0, 0, 2.0]], (1, 0, 0, 0, 1, 0)))
    >>> pos.shape, iop.tolist()
    ((2, 3), [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    """
    if isinstance(source, tuple) and len(source) == 2:
        return np.asarray(source[0], float), np.asarray(source[1], float)
    if hasattr(source, "instances") and key is not None:
        return _catalog_positions(source, key)
    if hasattr(source, "affine"):
        return _volume_positions(source)
    raise TypeError("show_slice_positions needs a Catalog and key, a Volume, or "
                    "(positions, orientation)")


def _volume_positions(vol):
    array, affine, metadata = _volume_parts(vol)
    direction = direction_from_affine(affine)
    iop = np.concatenate([direction[:, 2], direction[:, 1]])
    positions = metadata.get("positions")
    if positions is None:
        k = np.arange(array.shape[0])
        positions = affine[:3, 3] + k[:, None] * affine[:3, 0]
    return np.asarray(positions, float).reshape(-1, 3), iop


def _catalog_positions(catalog, key):
    rows = catalog.instances
    rows = rows[rows["series_key"] == key]
    if rows.empty:
        from dicomml.errors import SeriesNotFoundError
        raise SeriesNotFoundError(f"no series {key!r} in the catalog", path=str(key))
    positions = np.stack([_floats(v, 3) for v in rows["ImagePositionPatient"]])
    orientation = _floats(rows["ImageOrientationPatient"].iloc[0], 6)
    return positions, orientation


def _floats(value, count: int) -> np.ndarray:
    """A tag value stored as a list/array or a backslash-separated string -> float array."""
    if isinstance(value, str):
        value = value.replace("[", "").replace("]", "").replace(",", "\\").split("\\")
    out = np.asarray([float(v) for v in value], dtype=np.float64)
    if out.shape != (count,):
        raise ValueError(f"expected {count} numbers, got {value!r}")
    return out
