"""Arrange a plane table into sorted 3D or 4D stacks, with findings and the affine.

One path for every source (single-frame files, enhanced frames, mosaic tiles):

1. check that orientation, pixel spacing and matrix size agree (``inconsistent``);
2. group planes by position into *locations* (planes closer than ``duplicate_mm``), sorted by
   the projection of their position on the slice normal;
3. if every location holds the same number ``n > 1`` of planes and the dimension columns
   (stack, temporal, echo, b-value, gradient, acquisition) tell them apart, the series is 4D
   with ``n`` volumes in the order :func:`volume_order` gives (an enhanced object's Dimension
   Index Values, first dimension slowest; else :data:`VOLUME_ORDER`); otherwise repeated
   positions are ``duplicate`` and the first plane of each location is kept;
4. check spacing and tilt of the sorted locations and build the affine — sheared (exact) when
   the positions are tilted.

Example
-------
>>> from dicomml.geometry.planes import plane_table
>>> rows = [dict(path=f"{z}.dcm", position=(0, 0, z), orientation=(1, 0, 0, 0, 1, 0),
...              pixel_spacing=(1, 1), rows=2, columns=2) for z in (3.0, 0.0, 1.5)]
>>> st = arrange(plane_table(rows))
>>> st.order.tolist(), float(st.affine[2, 0])
([[1, 2, 0]], 1.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .affine import series_affine
from .checks import DEFAULT_TOLERANCES, Finding, Tolerances, check_consistency, check_stack
from .planes import DIMENSIONS, orientations, pixel_spacings, positions
from .sorting import project


@dataclass
class Stack:
    """Result of :func:`arrange`.

    ``order``: (volumes, slices) row indices into the plane table, sorted along the normal;
    ``positions``: (slices, 3) LPS mm of the sorted locations (from volume 0);
    ``affine``: 4x4 LPS; ``findings``; ``volume_values``: per volume, the dimension values that
    differ between volumes (empty dicts for 3D).
    """

    order: np.ndarray
    positions: np.ndarray
    orientation: np.ndarray
    pixel_spacing: np.ndarray
    affine: np.ndarray
    findings: list[Finding] = field(default_factory=list)
    volume_values: list[dict] = field(default_factory=list)

    @property
    def is_4d(self) -> bool:
        return self.order.shape[0] > 1

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


def _locations(pos: np.ndarray, d: np.ndarray, tol: Tolerances) -> list[np.ndarray]:
    """Group plane indices by position (sorted along the normal)."""
    order = np.argsort(d, kind="stable")
    if len(order) > 1:  # every neighbour clearly apart: one plane per location
        gaps = np.linalg.norm(np.diff(pos[order], axis=0), axis=1)
        if gaps.min() > tol.duplicate_mm * (1 + 1e-9):
            return [order[i:i + 1] for i in range(len(order))]
    return _group_sorted(pos, order, tol)


def _group_sorted(pos: np.ndarray, order: np.ndarray, tol: Tolerances) -> list[np.ndarray]:
    """Walk the sorted planes: a plane closer than ``duplicate_mm`` to the first plane of
    the current location joins it, otherwise it starts the next location (Python floats:
    one ``math.dist`` per plane, no numpy call per plane)."""
    points = pos.tolist()
    groups: list[list[int]] = []
    first = None
    for index in order.tolist():
        if first is not None and math.dist(points[index], first) < tol.duplicate_mm:
            groups[-1].append(index)
        else:
            groups.append([index])
            first = points[index]
    return [np.asarray(g) for g in groups]


#: volumes of a 4D series are ordered by these columns (acquisition order; a diffusion series
#: keeps its scanner order, like dcm2niix's .bval/.bvec), then by path, frame and tile
VOLUME_ORDER = ("stack", "temporal", "echo", "complex_component", "acquisition", "instance",
                "b_value", "gradient", "volume_key")
#: optional plane-table columns (from dicomml.geometry.enhanced) that also tell volumes apart
EXTRA_DIMENSIONS = ("complex_component", "volume_key")


def volume_order(planes: pd.DataFrame) -> list[str]:
    """The plane-table columns that order the volumes of ``planes``, most significant first.

    One enhanced object with a Dimension Index Sequence (every plane of one file carries a
    ``volume_key``: its non-spatial Dimension Index Values, in the order of the sequence's
    items): ``volume_key`` first, compared value by value, so the first non-spatial item of
    the Dimension Index Sequence varies slowest, as PS3.3 Section 7.5.2 "Dimension
    Organization" requires of the creator ("The first Item of the Dimension Index Sequence
    shall be the slowest varying index", CP-567). Otherwise :data:`VOLUME_ORDER`. The rest
    of :data:`VOLUME_ORDER` breaks ties.

    Example
    -------
    >>> t = pd.DataFrame({"path": ["a.dcm"] * 2, "temporal": [2.0, 1.0],
    ...                   "volume_key": [(1, 2), (2, 1)]})
    >>> volume_order(t)[:2]
    ['volume_key', 'temporal']
    """
    names = [n for n in VOLUME_ORDER if n in planes.columns]
    if "volume_key" in names and _dimension_indexed(planes):
        names.remove("volume_key")
        names.insert(0, "volume_key")
    return names


def _dimension_indexed(planes: pd.DataFrame) -> bool:
    """True when every plane comes from one file and carries a Dimension Index tuple."""
    keys = planes["volume_key"].tolist()
    return planes["path"].nunique() == 1 and all(isinstance(k, tuple) for k in keys)


def _dimensions(planes: pd.DataFrame) -> list[str]:
    return list(DIMENSIONS) + [c for c in EXTRA_DIMENSIONS if c in planes.columns]


def _dimension_keys(planes: pd.DataFrame) -> np.ndarray:
    """Sort rank of each plane by :func:`volume_order`, then path, frame, tile."""
    names = volume_order(planes) + ["path", "frame", "tile"]
    keys = [_sort_key(planes[name], name in VOLUME_ORDER) for name in names]
    if any(key is None for key in keys):  # an unusual column type: the pandas sort
        return _dimension_keys_pandas(planes)
    ranked = np.lexsort(keys[::-1])  # stable; the first name is the primary key
    rank = np.empty(len(planes), dtype=np.int64)
    rank[ranked] = np.arange(len(planes))
    return rank


def _sort_key(column: pd.Series, dimension: bool) -> np.ndarray | None:
    """``column`` as an array that sorts like :func:`_dimension_keys_pandas` sorts it
    (None where only pandas can say): numbers with NaN first (-inf), object values as their
    ``str`` (None as ""), strings as themselves; tuples of numbers (Dimension Index Values)
    by their rank in tuple order, so (2,) sorts before (10,)."""
    if column.dtype.kind in "fiu":
        values = column.to_numpy(dtype=np.float64)
        return np.where(np.isnan(values), -np.inf, values) if dimension else values
    if column.dtype == object and dimension and _number_tuples(column.tolist()):
        values = column.tolist()
        ranks = {v: i for i, v in enumerate(sorted(set(values)))}
        return np.asarray([ranks[v] for v in values], dtype=np.int64)
    if column.dtype == object and dimension:
        texts = ["" if v is None else str(v) for v in column.tolist()]
    elif column.isna().any():
        return None
    else:
        texts = column.tolist()
    if not all(type(t) is str for t in texts):
        return None
    return np.unique(np.asarray(texts, dtype=object), return_inverse=True)[1].ravel()


def _number_tuples(values: list) -> bool:
    return bool(values) and all(
        isinstance(v, tuple) and all(isinstance(x, (int, float, np.integer, np.floating))
                                     for x in v) for v in values)


def _dimension_keys_pandas(planes: pd.DataFrame) -> np.ndarray:
    """:func:`_dimension_keys` with a pandas multi-column stable sort (any column type)."""
    keys = pd.DataFrame(index=planes.index)
    for name in volume_order(planes):
        column = planes[name]
        if column.dtype == object:
            keys[name] = column.map(lambda v: "" if v is None else str(v))
        else:
            keys[name] = column.fillna(-np.inf)
    keys["path"], keys["frame"], keys["tile"] = planes["path"], planes["frame"], planes["tile"]
    ranked = keys.sort_values(list(keys.columns), kind="stable").index.to_numpy()
    rank = np.empty(len(planes), dtype=np.int64)
    rank[ranked] = np.arange(len(planes))
    return rank


def _dimension_codes(planes: pd.DataFrame) -> np.ndarray:
    """Per plane: one integer that is equal for two planes exactly when all their dimension
    values are (None and NaN count as one value, numbers by value, other values by their
    text), to tell volumes apart."""
    codes = [_codes(planes[name]) for name in _dimensions(planes)]
    if not codes:
        return np.zeros(len(planes), dtype=np.int64)
    return np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)[1].ravel()


def _codes(column: pd.Series) -> np.ndarray:
    """Integer codes of one column's values (-1 for None / NaN)."""
    if column.dtype.kind in "fiub":
        return pd.factorize(column.to_numpy(), use_na_sentinel=True)[0]
    texts = [None if (v is None or (isinstance(v, float) and v != v)) else str(v)
             for v in column.tolist()]
    return pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=True)[0]


def _distinct_in_groups(codes: np.ndarray, groups: list[np.ndarray], n: int) -> bool:
    """True when the ``n`` planes of every group carry ``n`` different codes."""
    table = np.sort(codes[np.stack(groups)], axis=1)  # (locations, n)
    return bool((np.diff(table, axis=1) != 0).all())


def _volume_values(planes: pd.DataFrame, order: np.ndarray) -> list[dict]:
    if order.shape[0] == 1:
        return [{}]
    first = planes.loc[order[:, 0]]
    values = [{} for _ in range(order.shape[0])]
    for name in _dimensions(planes) + ["instance"]:
        column = first[name].tolist()
        if len({repr(v) for v in column}) > 1:
            for v, value in enumerate(column):
                values[v][name] = value.item() if hasattr(value, "item") else value
    return values


def arrange(planes: pd.DataFrame, tol: Tolerances = DEFAULT_TOLERANCES) -> Stack:
    """Sort a (normalised) plane table into a 3D or 4D stack; see the module docstring."""
    iops, spacings = orientations(planes), pixel_spacings(planes)
    shapes = planes[["rows", "columns"]].to_numpy()
    findings = check_consistency(iops, spacings, shapes, tol)
    iop, pixel_spacing = iops[0], spacings[0]
    pos = positions(planes)
    groups = _locations(pos, project(pos, iop), tol)
    counts = {len(g) for g in groups}
    if counts != {1}:  # several planes share a position: order them by the dimensions
        rank = _dimension_keys(planes)
        groups = [g[np.argsort(rank[g])] for g in groups]
    n = counts.pop() if len(counts) == 1 else 0
    distinct = n > 1 and _distinct_in_groups(_dimension_codes(planes), groups, n)
    if n == 1 or distinct:
        order = np.stack(groups, axis=1)
    else:
        repeated = [i for i, g in enumerate(groups) if len(g) > 1]
        findings.append(Finding(
            "duplicate", f"{len(repeated)} position(s) hold more than one plane and no "
            "dimension (temporal, echo, b-value, ...) tells them apart",
            {"locations": repeated[:20], "planes_per_location": sorted({len(g) for g in groups})}))
        order = np.asarray([[g[0] for g in groups]])
    sorted_pos = pos[order[0]]
    findings += check_stack(sorted_pos, iop, tol)
    sheared = any(f.kind == "tilt" for f in findings)
    affine = series_affine(sorted_pos, iop, pixel_spacing, sheared=sheared)
    return Stack(order=order, positions=sorted_pos, orientation=iop,
                 pixel_spacing=pixel_spacing, affine=affine, findings=findings,
                 volume_values=_volume_values(planes, order))
