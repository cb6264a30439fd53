"""RT Structure Sets (RTSTRUCT) -> masks on a reference grid, vectorised.

Rules (the documented ones):

- **Plane**: each CLOSED_PLANAR contour goes to the reference plane its centroid is nearest to
  along the plane normal ``cross(row direction, column direction)``, if every point lies within
  half the local slice spacing of that plane (never by z or SliceLocation, so oblique planes,
  uneven spacing and gantry tilt work); other contours are skipped and reported.
- **Fill (pixel-centre rule)**: a voxel is in the ROI when its centre lies inside the contours
  of its plane combined **even-odd** (a contour inside another is a hole), or exactly on a
  contour edge (within 1e-3 pixel): closed polygons, so an axis-aligned rectangle through pixel
  centres includes its border pixels — what ``cv2.fillPoly`` (rt-utils) and polygon tools
  that trace the border pixels' centres produce. Coordinates are never truncated.
- POINT and OPEN_PLANAR contours are skipped with a :class:`~dicomml.errors.LabelWarning`;
  a contour with NaN or fewer than 3 points raises :class:`~dicomml.errors.LabelGeometryError`
  naming the ROI.
- ``supersample=k``: each voxel is split into k x k sub-pixels; the mask is the fraction of
  sub-pixel centres inside (float32), thresholded at 0.5 for label maps.

The fill is a scan-line parity fill done for all contours of an ROI at once (crossings of every
edge with every pixel-centre row, toggles accumulated with ``np.bincount``, parity by a
cumulative sum over the ROI's bounding box), with no Python loop over contours or points.

Example
-------
>>> import numpy as np
>>> mask = fill_polygons([np.array([[1.0, 1], [1, 3], [3, 3], [3, 1]])], (5, 5))
>>> mask.astype(int).tolist()[1:4]
[[0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0]]
"""

from __future__ import annotations

import warnings

import numpy as np

from dicomml.catalog.label_objects import LabelInfo
from dicomml.errors import LabelGeometryError, LabelWarning

from .grid import ReferenceGrid

_EDGE_EPS = 1e-3  # pixels: a centre this close to an edge is on it


def _raw_contour_data(item):
    """ContourData as its raw DS bytes when pydicom has not converted it yet, else as
    float64 values (never converting: pydicom's per-value DS conversion is the slow part)."""
    if 0x30060050 not in item:
        return np.zeros(0)
    raw = item.get_item(0x30060050).value
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    return np.atleast_1d(np.asarray(item.ContourData if raw is not None else [], np.float64))


def _parse_ds(chunks: list) -> list:
    """Decimal-string byte chunks (backslash-separated) -> float64 arrays, parsed in one
    call of pandas' C parser (empty or non-numeric values become NaN)."""
    import io

    import pandas as pd

    counts = [c.count(b"\\") + 1 if c.strip() else 0 for c in chunks]
    text = b"\n".join(c.replace(b"\\", b"\n") for c in chunks if c.strip())
    if not text:
        return [np.zeros(0) for _ in chunks]
    values = pd.read_csv(io.BytesIO(text), header=None, names=["v"], dtype=np.float64,
                         skip_blank_lines=False, na_filter=True).to_numpy()[:, 0]
    if len(values) != sum(counts):  # blank values collapse; fall back to exact splitting
        return [np.array([float(v) if v.strip() else np.nan for v in c.split(b"\\")])
                if c.strip() else np.zeros(0) for c in chunks]
    return np.split(values, np.cumsum(counts)[:-1])


def roi_contours(ds, info: LabelInfo) -> tuple[dict, list]:
    """``({roi number: [(n, 3) LPS points of each CLOSED_PLANAR contour]}, skipped notes)``;
    raises for NaN / fewer than 3 points."""
    contours, skipped = {n: [] for n in info.segments}, []
    found = []  # (roi number, contour index, raw bytes or values)
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        for j, contour in enumerate(item.get("ContourSequence", [])):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            if kind != "CLOSED_PLANAR":
                skipped.append(f"{_roi_name(info, number)} contour {j + 1}: {kind} skipped")
                continue
            found.append((number, j, _raw_contour_data(contour)))
    raw = [i for i, f in enumerate(found) if isinstance(f[2], bytes)]
    parsed = dict(zip(raw, _parse_ds([found[i][2] for i in raw])))
    for i, (number, j, values) in enumerate(found):
        values = parsed.get(i, values)
        points = values.reshape(-1, 3) if values.size % 3 == 0 else np.full((1, 3), np.nan)
        if len(points) < 3 or not np.isfinite(points).all():
            problem = "NaN values" if len(points) >= 3 else "fewer than 3 points"
            raise LabelGeometryError(f"contour {j + 1} has {problem}", path=info.path,
                                     tag="ContourData", segment=_roi_name(info, number))
        contours.setdefault(number, []).append(points)
    return contours, skipped


def _roi_name(info: LabelInfo, number) -> str:
    return f"ROI {number} {info.segments.get(number, {}).get('name', '')!r}"


def assign_planes(grid: ReferenceGrid, contours: list) -> tuple[list, np.ndarray, np.ndarray]:
    """Per contour: in-plane (row, column) points, the plane index (-1: off every plane) and
    the largest distance of a point from that plane (mm). Vectorised over all points."""
    counts = np.array([len(c) for c in contours])
    points = np.concatenate(contours)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    centroids = np.add.reduceat(points, starts, axis=0) / counts[:, None]
    plane, _ = grid.plane_of(centroids)
    per_point = np.repeat(plane, counts)
    dist = np.abs(points @ grid.normal - grid.plane_offsets[per_point])
    worst = np.maximum.reduceat(dist, starts)
    plane = np.where(worst <= grid.half_gaps()[plane] + 1e-6, plane, -1)
    rc = grid.in_plane(points, per_point)
    return np.split(rc, starts[1:]), plane, worst


def fill_polygons(polygons: list, shape, planes=None, n_planes: int = 1, *,
                  crop: bool = False, align: int = 1):
    """Even-odd fill of polygons given as (n, 2) continuous (row, column) pixel indices
    (centres at integers) into a bool array ``(n_planes, rows, columns)`` (or ``(rows,
    columns)`` without ``planes``), by the pixel-centre rule of the module docstring.

    ``crop=True`` returns ``(array of the polygons' bounding box, (row0, column0))`` instead,
    the box's corner a multiple of ``align``."""
    rows, cols = int(shape[0]), int(shape[1])
    squeeze = planes is None
    planes = np.zeros(len(polygons), np.int64) if planes is None else np.asarray(planes)
    if not polygons:
        empty = np.zeros((n_planes, 0 if crop else rows, 0 if crop else cols), dtype=bool)
        return (empty, (0, 0)) if crop else (empty[0] if squeeze else empty)
    counts = np.array([len(p) for p in polygons])
    start = np.concatenate(polygons)
    nxt = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    edge_plane = np.repeat(planes, counts)
    y0, x0, y1, x1 = start[:, 0], start[:, 1], nxt[:, 0], nxt[:, 1]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    r0 = max(int(np.floor(lo.min())) - 1, 0)
    r1 = min(int(np.ceil(hi.max())) + 2, rows)
    c0 = max(int(np.floor(min(x0.min(), x1.min()))) - 1, 0)
    c1 = min(int(np.ceil(max(x0.max(), x1.max()))) + 2, cols)
    r0, c0 = r0 // align * align, c0 // align * align
    r1, c1 = min(-(-r1 // align) * align, rows), min(-(-c1 // align) * align, cols)
    if r1 <= r0 or c1 <= c0:
        r1, c1 = r0, c0
    h, w = r1 - r0, c1 - c0
    # crossings of every non-horizontal edge with the rows of pixel centres (half-open in y)
    first = np.ceil(lo - _EDGE_EPS)  # rows in [lo, hi) widened by eps against rounding noise
    n_cross = np.where(hi > lo, np.ceil(hi - _EDGE_EPS) - first, 0).astype(np.int64)
    edge = np.repeat(np.arange(len(y0)), n_cross)
    offsets = np.arange(n_cross.sum()) - np.repeat(np.cumsum(n_cross) - n_cross, n_cross)
    r = first[edge] + offsets
    x = x0[edge] + (r - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    p, r = edge_plane[edge], r.astype(np.int64)
    keep = (r >= r0) & (r < r1)
    p, r, x = p[keep], r[keep], x[keep]
    col = np.clip(np.ceil(x - _EDGE_EPS).astype(np.int64) - c0, 0, w)
    flat = (p * h + (r - r0)) * (w + 1) + col
    toggles = np.bincount(flat, minlength=n_planes * h * (w + 1)).reshape(n_planes, h, w + 1)
    inside = (np.cumsum(toggles[..., :w], axis=-1) & 1).astype(bool)
    _mark_edges(inside, p, r - r0, x - c0, edge_plane, y0, x0, y1, x1, (r0, c0))
    if crop:
        return inside, (r0, c0)
    out = np.zeros((n_planes, rows, cols), dtype=bool)
    out[:, r0:r1, c0:c1] = inside
    return out[0] if squeeze else out


def _mark_edges(inside, p, r, x, edge_plane, y0, x0, y1, x1, corner) -> None:
    """Set the pixels whose centres lie on an edge (closed polygons)."""
    _, h, w = inside.shape
    on = np.abs(x - np.rint(x)) < _EDGE_EPS
    c = np.rint(x[on]).astype(np.int64)
    ok = (c >= 0) & (c < w)
    inside[p[on][ok], r[on][ok], c[ok]] = True
    row, col = y0 - corner[0], x0 - corner[1]  # vertices on pixel centres
    at = (np.abs(row - np.rint(row)) < _EDGE_EPS) & (np.abs(col - np.rint(col)) < _EDGE_EPS)
    vr, vc = np.rint(row[at]).astype(np.int64), np.rint(col[at]).astype(np.int64)
    ok = (vr >= 0) & (vr < h) & (vc >= 0) & (vc < w)
    inside[edge_plane[at][ok], vr[ok], vc[ok]] = True
    flat = (np.abs(y0 - y1) < _EDGE_EPS) & (np.abs(row - np.rint(row)) < _EDGE_EPS)
    if not flat.any():
        return
    a = np.ceil(np.minimum(x0, x1)[flat] - corner[1] - _EDGE_EPS).astype(np.int64)
    b = np.floor(np.maximum(x0, x1)[flat] - corner[1] + _EDGE_EPS).astype(np.int64)
    a, b = np.clip(a, 0, w), np.clip(b, -1, w - 1)
    n = np.maximum(b - a + 1, 0)
    cols = np.repeat(a, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    rows = np.repeat(np.rint(row[flat]).astype(np.int64), n)
    planes = np.repeat(edge_plane[flat], n)
    ok = (rows >= 0) & (rows < h)
    inside[planes[ok], rows[ok], cols[ok]] = True


class PlaneMask:
    """A mask stored as its bounding box on its non-empty planes: ``values`` (n, h, w) at
    slice indices ``planes`` (n,), rows ``corner[0]:corner[0] + h``, columns
    ``corner[1]:corner[1] + w``; ``shape`` the full (slices, rows, columns);
    ``np.asarray(mask)`` the full array."""

    def __init__(self, shape, planes, values, corner=(0, 0)):
        self.shape, self.planes, self.values = tuple(shape), np.asarray(planes), values
        self.dtype, self.corner = values.dtype, tuple(int(v) for v in corner)

    def any(self) -> bool:
        return bool(self.values.any())

    @property
    def index(self) -> tuple:
        """Index of ``values`` in the full array (a slice for contiguous planes)."""
        planes = self.planes
        if len(planes) and np.array_equal(planes, np.arange(planes[0], planes[0] + len(planes))):
            planes = slice(int(planes[0]), int(planes[0]) + len(planes))
        (r0, c0), (_, h, w) = self.corner, self.values.shape
        return planes, slice(r0, r0 + h), slice(c0, c0 + w)

    def __array__(self, dtype=None, copy=None):
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.index] = self.values
        return out if dtype is None else out.astype(dtype)


def rasterise_roi(grid: ReferenceGrid, contours: list, *, supersample: int = 1,
                  name: str = "ROI", skipped: list | None = None) -> PlaneMask:
    """One ROI's contours -> a (slices, rows, columns) bool :class:`PlaneMask` on ``grid``
    (float32 coverage fractions when ``supersample > 1``); ``np.asarray`` gives the array."""
    shape = grid.shape
    dtype = np.float32 if supersample > 1 else bool
    if not contours:
        return PlaneMask(shape, np.zeros(0, np.int64), np.zeros((0, *shape[1:]), dtype))
    polygons, planes, worst = assign_planes(grid, contours)
    for j in np.flatnonzero(planes < 0):
        if skipped is not None:
            skipped.append(f"{name} contour {j + 1}: {worst[j]:.3g} mm off every plane")
    used = np.flatnonzero(planes >= 0)
    polys = [polygons[j] for j in used]
    unique, local = np.unique(planes[used], return_inverse=True)
    k = int(supersample)
    if k > 1:
        polys = [(poly + 0.5) * k - 0.5 for poly in polys]
    filled, (r0, c0) = fill_polygons(polys, (shape[1] * k, shape[2] * k), local, len(unique),
                                     crop=True, align=k)
    if k > 1:
        n, h, w = filled.shape
        filled = filled.reshape(n, h // k, k, w // k, k).mean(axis=(2, 4), dtype=np.float32)
    return PlaneMask(shape, unique, filled, (r0 // k, c0 // k))


def read_rtstruct_masks(ds, grid: ReferenceGrid, info: LabelInfo, *, supersample: int = 1,
                        numbers=None) -> tuple[dict, list]:
    """``({roi number: mask (slices, rows, columns)}, skipped notes)`` for the ROIs
    ``numbers`` (default all); warns for skipped contours and empty ROIs."""
    contours, skipped = roi_contours(ds, info)
    numbers = sorted(contours) if numbers is None else list(numbers)
    masks = {}
    for number in numbers:
        name = _roi_name(info, number)
        roi_for = info.segments.get(number, {}).get("frame_of_reference")
        if roi_for and grid.frame_of_reference and str(roi_for) != str(grid.frame_of_reference):
            raise LabelGeometryError(f"frame of reference {roi_for} differs from the "
                                     f"reference's {grid.frame_of_reference}", path=info.path,
                                     tag="ReferencedFrameOfReferenceUID", segment=name)
        masks[number] = rasterise_roi(grid, contours.get(number, []), supersample=supersample,
                                      name=name, skipped=skipped)
        if not masks[number].any():
            skipped.append(f"{name}: empty (no contour on the reference grid)")
    if skipped:
        warnings.warn(f"{info.path}: " + "; ".join(skipped[:20]) +
                      (f"; ... {len(skipped) - 20} more" if len(skipped) > 20 else ""),
                      LabelWarning, stacklevel=3)
    return masks, skipped
