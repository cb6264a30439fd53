"""Resolve the ``reference`` of :func:`dicomml.load_labels` into a :class:`ReferenceGrid`.

``reference`` may be a :class:`~dicomml.volume.Volume`, a ``(catalog, series_key)`` pair, or
None: the series the label object refers to (ReferencedSeriesSequence / RT Referenced Series),
found in the catalog given, else in a scan of the folder the label file lies in.

Example::

    grid, volume = resolve_reference((cat, key), info)      # info: a parsed SEG/RTSTRUCT
"""

from __future__ import annotations

import os

import numpy as np

from dicomml.errors import LabelGeometryError

from .grid import ReferenceGrid


def grid_from_volume(volume, *, sop_uids=None, origins=None) -> ReferenceGrid:
    """The grid of a loaded Volume: planes where its affine puts them, unless ``origins``
    ((slices, 3) LPS mm, e.g. the true positions of an uneven series) say otherwise."""
    meta = volume.metadata
    grid = ReferenceGrid.from_affine(
        volume.spatial_shape, volume.affine, sop_uids=sop_uids,
        frame_of_reference=meta.get("FrameOfReferenceUID"),
        series_uid=meta.get("SeriesInstanceUID"),
        name=str(meta.get("series_key") or meta.get("SeriesInstanceUID") or "reference"))
    if origins is not None and len(origins) == grid.shape[0]:
        grid = ReferenceGrid(grid.shape, grid.affine, np.asarray(origins, float),
                             grid.sop_uids, grid.frame_of_reference, grid.series_uid, grid.name)
    return grid


def grid_from_catalog(catalog, key: str):
    """``(grid, volume)`` of one image series of a catalog: the volume as ``load_series``
    gives it, with the true plane positions and SOP Instance UIDs of a single-frame series."""
    from dicomml.loader import load_series

    volume = load_series(catalog, key, policy="warn")
    rows = catalog.series_instances(key)
    origins = sop_uids = None
    n = volume.spatial_shape[0]
    if len(rows) == n and volume.array.ndim == 3 and rows["ImagePositionPatient"].notna().all():
        positions = np.array(rows["ImagePositionPatient"].tolist(), dtype=np.float64)
        draft = ReferenceGrid.from_affine(volume.spatial_shape, volume.affine)
        d = positions @ draft.normal
        order = np.argsort(d, kind="stable")
        if np.sign(draft.affine[:3, 0] @ draft.normal) < 0:
            order = order[::-1]
        if np.allclose(positions[order[0]], volume.affine[:3, 3], atol=1e-3):
            origins = positions[order]
            sop_uids = tuple(rows["SOPInstanceUID"].iloc[order].tolist())
    return grid_from_volume(volume, sop_uids=sop_uids, origins=origins), volume


def resolve_reference(reference, info, *, catalog=None):
    """``(grid, volume or None)`` for a parsed label object ``info`` (``path``,
    ``series_uids``, ``frame_of_reference``); raises :class:`LabelGeometryError` when the
    referenced series cannot be found."""
    from dicomml.volume import Volume

    if isinstance(reference, Volume):
        return grid_from_volume(reference), reference
    if isinstance(reference, tuple) and len(reference) == 2:
        return grid_from_catalog(*reference)
    if reference is not None:
        raise TypeError("reference must be a Volume, a (catalog, series_key) pair or None, "
                        f"got {type(reference).__name__}")
    if catalog is None:
        from dicomml.catalog import Catalog

        catalog = Catalog.open(os.path.dirname(os.path.abspath(info.path)))
    key = find_series(catalog, info)
    return grid_from_catalog(catalog, key)


def find_series(catalog, info) -> str:
    """The series key of the image series ``info`` refers to (by SeriesInstanceUID; when it
    names none, the only image series in its frame of reference), or raise
    :class:`LabelGeometryError` listing the referenced UIDs."""
    series = catalog.series
    uids = [u for u in info.series_uids if u]
    hits = series[series["SeriesInstanceUID"].isin(uids)]
    if hits.empty and not uids and info.frame_of_reference and "FrameOfReferenceUID" in series:
        # no series named (some RTSTRUCT exporters): the one image series in its frame
        same = series[series["FrameOfReferenceUID"] == str(info.frame_of_reference)]
        hits = same if same["SeriesInstanceUID"].nunique() == 1 else hits
    if hits.empty:
        raise LabelGeometryError(
            "refers to series not in the catalog: " + (", ".join(uids) or "(none named)"),
            path=info.path, tag="SeriesInstanceUID")
    return str(hits["series_key"].iloc[0])


def check_frame_of_reference(grid: ReferenceGrid, info) -> None:
    """Raise when the label's FrameOfReferenceUID differs from the reference's (both known)."""
    ours, theirs = info.frame_of_reference, grid.frame_of_reference
    if ours and theirs and str(ours) != str(theirs):
        raise LabelGeometryError(
            f"frame of reference {ours} differs from the reference's {theirs} ({grid.name})",
            path=info.path, tag="FrameOfReferenceUID")
