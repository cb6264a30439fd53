"""The reference grid labels are placed on: plane positions, in-plane axes, pure numpy.

A :class:`ReferenceGrid` is what a label object needs from the image it annotates: the spatial
shape (slices, rows, columns), the affine (index (slice, row, column, 1) -> LPS mm), the LPS
position of voxel (k, 0, 0) of every plane (``origins``; for uneven slice spacing these are
the true positions, which the mean-step affine does not give), and, where known, the SOP
Instance UID of each plane (for SEG frames placed by their source image references).

Points are mapped to a plane by their distance along the plane normal
``n = cross(row direction, column direction)`` (never by z or SliceLocation), and within the
plane by their projections on the row / column directions — exact for oblique planes,
non-square pixels, uneven spacing and gantry tilt.

Example
-------
>>> import numpy as np
>>> affine = np.array([[0, 0, 0.5, 0], [0, 0.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
>>> grid = ReferenceGrid.from_affine((3, 4, 5), affine)
>>> grid.plane_of(np.array([[0.0, 0.0, 4.1]]))[0].tolist(), grid.plane_of(
...     np.array([[0.0, 0.0, 4.1]]))[1].round(3).tolist()
([2], [0.1])
>>> grid.in_plane(np.array([[1.0, 0.5, 4.0]]), np.array([2])).tolist()
[[1.0, 2.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dicomml.geometry.affine import spacing_from_affine


@dataclass(frozen=True)
class ReferenceGrid:
    """Geometry of the image a label is placed on (see the module docstring).

    ``shape`` (slices, rows, columns); ``affine`` 4x4 LPS; ``origins`` (slices, 3) LPS mm;
    ``sop_uids`` tuple of one SOP Instance UID per plane or None; ``frame_of_reference``
    and ``series_uid`` str or None; ``name`` what error messages call the reference.
    """

    shape: tuple
    affine: np.ndarray
    origins: np.ndarray
    sop_uids: tuple | None = None
    frame_of_reference: str | None = None
    series_uid: str | None = None
    name: str = "reference"

    @classmethod
    def from_affine(cls, shape, affine, **kwargs) -> ReferenceGrid:
        """A grid whose planes are where the affine puts them (even spacing)."""
        affine = np.asarray(affine, dtype=np.float64)
        k = np.arange(int(shape[0]))[:, None]
        origins = affine[:3, 3][None] + k * affine[:3, 0][None]
        return cls(tuple(int(v) for v in shape[-3:]), affine, origins, **kwargs)

    # --- axes ---
    @property
    def row_spacing(self) -> float:
        """mm between rows (along the column direction F_c)."""
        return float(spacing_from_affine(self.affine)[1])

    @property
    def col_spacing(self) -> float:
        """mm between columns (along the row direction F_r)."""
        return float(spacing_from_affine(self.affine)[2])

    @property
    def f_c(self) -> np.ndarray:
        """Unit direction of increasing row index (LPS)."""
        return self.affine[:3, 1] / self.row_spacing

    @property
    def f_r(self) -> np.ndarray:
        """Unit direction of increasing column index (LPS)."""
        return self.affine[:3, 2] / self.col_spacing

    @property
    def normal(self) -> np.ndarray:
        """Unit plane normal ``cross(F_r, F_c)``."""
        n = np.cross(self.f_r, self.f_c)
        return n / np.linalg.norm(n)

    @property
    def plane_offsets(self) -> np.ndarray:
        """Distance of each plane along :attr:`normal` (mm), in slice order."""
        return self.origins @ self.normal

    def half_gaps(self) -> np.ndarray:
        """Half the distance to the nearer neighbouring plane, per plane (mm)."""
        d = self.plane_offsets
        if len(d) < 2:
            return np.full(len(d), max(self.row_spacing, self.col_spacing) / 2)
        gaps = np.abs(np.diff(d))
        left = np.concatenate([gaps[:1], gaps])
        right = np.concatenate([gaps, gaps[-1:]])
        return np.minimum(left, right) / 2

    # --- mapping points ---
    def plane_of(self, points) -> tuple[np.ndarray, np.ndarray]:
        """``(plane index, signed distance from that plane in mm)`` of the nearest plane
        along the normal, for LPS points (n, 3)."""
        d = np.asarray(points, dtype=np.float64).reshape(-1, 3) @ self.normal
        offsets = self.plane_offsets
        order = np.argsort(offsets, kind="stable")
        sorted_offsets = offsets[order]
        pos = np.clip(np.searchsorted(sorted_offsets, d), 1, max(len(order) - 1, 1))
        lower = np.clip(pos - 1, 0, len(order) - 1)
        upper = np.clip(pos, 0, len(order) - 1)
        pick = np.where(np.abs(d - sorted_offsets[lower]) <= np.abs(d - sorted_offsets[upper]),
                        lower, upper)
        plane = order[pick]
        return plane, d - offsets[plane]

    def in_plane(self, points, planes) -> np.ndarray:
        """Continuous (row, column) indices (n, 2) of LPS points within their planes: pixel
        centres are at integers."""
        rel = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.origins[planes]
        return np.stack([rel @ self.f_c / self.row_spacing, rel @ self.f_r / self.col_spacing],
                        axis=1)
