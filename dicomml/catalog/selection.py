"""Acquisition filters, the localizer rule and duplicates: selection on header values.

``Catalog.filter`` takes these criteria besides plain columns (each is computed per series
from the catalog; only ``contrast`` reads files):

- ``image_type="ORIGINAL"`` / ``["DERIVED", "SECONDARY"]``: every listed value is one of the
  series' ImageType values (``ORIGINAL\\PRIMARY\\AXIAL`` has ``ORIGINAL``, ``PRIMARY``,
  ``AXIAL``); ``exclude_image_type="LOCALIZER"``: none of them is.
- ``orientation="axial"`` (or a list of ``"axial"``, ``"sagittal"``, ``"coronal"``,
  ``"oblique"``, ``"unknown"``): the orientation class of the slice plane
  (:func:`orientation_class`); ``orientation_tolerance``: the largest angle in degrees between
  the slice normal and the nearest patient axis for a plane to count as that axis's plane
  (default :data:`ORIENTATION_TOLERANCE_DEG`; beyond it the plane is ``"oblique"``).
- ``spacing=(lo, hi)``: in-plane pixel spacing (both row and column spacing) in mm;
  ``slice_spacing=(lo, hi)``: distance between adjacent slice positions in mm (median of the
  sorted positions along the normal; a multi-frame file uses SpacingBetweenSlices);
  ``thickness=(lo, hi)``: SliceThickness in mm. Ranges are inclusive; ``None`` leaves a side
  open; a series without the value does not match.
- ``matrix=(rows, columns)`` (or a list of them): one slice's matrix.
- ``contrast=True`` / ``False``: ContrastBolusAgent (0018,0010) present and not empty; read
  from the first file of each series with pydicom (headers only, that one tag).
- ``description="t1|mprage"``: a regular expression searched, case-insensitively, in
  SeriesDescription.

Slice counts are plain columns: ``min_slices=20`` (``n_slices``). ``Catalog.query("...")``
evaluates a pandas expression over the series columns and these values
(:func:`acquisition_table`).

**Localizers** (:data:`LOCALIZER_RULE`, ``Catalog.exclude_localizers``): a series is a
localizer when (1) its ImageType holds ``LOCALIZER``; or (2) it is a single image (one slice,
one volume) whose plane is more than :data:`LOCALIZER_ANGLE_DEG` degrees from the plane of
the study's series with the most slices (a scout orthogonal to the rest of the study); or (3)
its Series Instance UID was split by orientation into sub-series of at most
:data:`LOCALIZER_MAX_SLICES` slices each (a three-plane scout).

Example
-------
>>> from dicomml.catalog.selection import orientation_class
>>> orientation_class([1, 0, 0, 0, 1, 0]), orientation_class([1, 0, 0, 0, 0, -1])
(('axial', 0.0), ('coronal', 0.0))
>>> orientation_class([0.139173, 0.990268, 0, 0, 0, -1])  # 8 degrees off sagittal
('sagittal', 7.99...)
>>> orientation_class([0.139173, 0.990268, 0, 0, 0, -1], tolerance=5, angle=False)
'oblique'
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

#: Largest angle (degrees) between a slice normal and a patient axis for the plane to be
#: called axial / sagittal / coronal rather than oblique.
ORIENTATION_TOLERANCE_DEG = 10.0
#: Rule (2) of the localizer rule: a single image this far (degrees) from the study's plane.
LOCALIZER_ANGLE_DEG = 45.0
#: Rule (3): sub-series of an orientation-split UID with at most this many slices each.
LOCALIZER_MAX_SLICES = 5
LOCALIZER_RULE = (
    "a series is a localizer when (1) ImageType holds LOCALIZER, or (2) it is a single image "
    f"more than {LOCALIZER_ANGLE_DEG:g} degrees from the plane of the study's series with the "
    "most slices, or (3) its SeriesInstanceUID was split by orientation into sub-series of at "
    f"most {LOCALIZER_MAX_SLICES} slices each (a three-plane scout)")
ORIENTATIONS = ("axial", "sagittal", "coronal", "oblique", "unknown")
_AXIS_PLANE = ("sagittal", "coronal", "axial")  # normal along L (x), P (y), S (z)
#: ``Catalog.filter`` criteria this module handles.
CRITERIA = ("image_type", "exclude_image_type", "orientation", "orientation_tolerance",
            "spacing", "slice_spacing", "thickness", "matrix", "contrast", "description")


def orientation_class(iop, tolerance: float = ORIENTATION_TOLERANCE_DEG, *,
                      angle: bool = True):
    """``(class, angle)`` of a plane from its 6 direction cosines (ImageOrientationPatient):
    the class is the plane of the patient axis nearest the slice normal (``"axial"``: normal
    along S, ``"sagittal"``: L, ``"coronal"``: P), or ``"oblique"`` when the angle (degrees)
    between the normal and that axis exceeds ``tolerance``; ``("unknown", nan)`` without a
    usable orientation. ``angle=False`` returns the class alone.

    >>> orientation_class([1, 0, 0, 0, 0.9, 0.44], angle=False)
    'oblique'
    """
    normal = _normal(iop)
    if normal is None:
        return "unknown" if not angle else ("unknown", math.nan)
    axis = int(np.argmax(np.abs(normal)))
    degrees = float(np.degrees(np.arccos(min(1.0, abs(normal[axis])))))
    name = _AXIS_PLANE[axis] if degrees <= tolerance + 1e-9 else "oblique"
    return (name, round(degrees, 6)) if angle else name


def _normal(iop) -> np.ndarray | None:
    try:
        v = np.asarray(iop, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if v.size != 6 or not np.all(np.isfinite(v)):
        return None
    n = np.cross(v[:3], v[3:])
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 1e-6 else None


def image_types(value) -> frozenset:
    """The ImageType values of a catalog cell (``"ORIGINAL\\\\PRIMARY\\\\AXIAL"``), upper case.

    >>> sorted(image_types("DERIVED\\\\secondary"))
    ['DERIVED', 'SECONDARY']
    """
    if not isinstance(value, str):
        return frozenset()
    return frozenset(v.strip().upper() for v in value.split("\\") if v.strip())


# --- filter criteria ------------------------------------------------------------------------
def apply_criteria(catalog, criteria: dict) -> tuple[dict, pd.Series | None]:
    """Split ``criteria`` into those of this module and the rest: ``(rest, mask)``, ``mask``
    a boolean Series over ``catalog.objects`` (None when no criterion here was given)."""
    mine = {k: criteria[k] for k in CRITERIA if k in criteria}
    rest = {k: v for k, v in criteria.items() if k not in CRITERIA}
    if not mine:
        return rest, None
    tolerance = float(mine.pop("orientation_tolerance", ORIENTATION_TOLERANCE_DEG))
    objects = catalog.objects
    mask = pd.Series(True, index=objects.index)
    for name, value in mine.items():
        mask &= _CRITERION[name](catalog, objects, value, tolerance)
    return rest, mask


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def _image_type(catalog, objects, value, tolerance):
    wanted = {str(v).upper() for v in _as_list(value)}
    return objects["ImageType"].map(lambda v: wanted <= image_types(v)).astype(bool)


def _exclude_image_type(catalog, objects, value, tolerance):
    unwanted = {str(v).upper() for v in _as_list(value)}
    return objects["ImageType"].map(lambda v: not (unwanted & image_types(v))).astype(bool)


def _orientation(catalog, objects, value, tolerance):
    wanted = {str(v).lower() for v in _as_list(value)}
    unknown = wanted - set(ORIENTATIONS)
    if unknown:
        raise ValueError(f"orientation: {sorted(unknown)} not among {ORIENTATIONS}")
    classes = objects["ImageOrientationPatient"].map(
        lambda iop: orientation_class(iop, tolerance, angle=False))
    return classes.isin(wanted)


def _in_range(values: pd.Series, bounds, name: str) -> pd.Series:
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"{name}: give a (low, high) range in mm, None for an open side; "
                         f"got {bounds!r}")
    lo, hi = bounds
    values = pd.to_numeric(values, errors="coerce")
    mask = values.notna()
    if lo is not None:
        mask &= values >= lo
    if hi is not None:
        mask &= values <= hi
    return mask.fillna(False).astype(bool)


def _spacing(catalog, objects, value, tolerance):
    spacing = objects["PixelSpacing"].map(
        lambda s: s if isinstance(s, (list, tuple, np.ndarray)) and len(s) == 2 else None)
    row = spacing.map(lambda s: np.nan if s is None else float(s[0]))
    col = spacing.map(lambda s: np.nan if s is None else float(s[1]))
    return _in_range(row, value, "spacing") & _in_range(col, value, "spacing")


def _slice_spacing(catalog, objects, value, tolerance):
    return _in_range(objects["series_key"].map(slice_spacings(catalog)), value, "slice_spacing")


def _thickness(catalog, objects, value, tolerance):
    return _in_range(objects["SliceThickness"], value, "thickness")


def _matrix(catalog, objects, value, tolerance):
    pairs = value if isinstance(value, list) else [value]
    wanted = {(int(r), int(c)) for r, c in pairs}
    got = zip(pd.to_numeric(objects["Rows"], errors="coerce").tolist(),
              pd.to_numeric(objects["Columns"], errors="coerce").tolist())
    return pd.Series([(r == r and c == c and (int(r), int(c)) in wanted) for r, c in got],
                     index=objects.index, dtype=bool)


def _contrast(catalog, objects, value, tolerance):
    agents = series_tags(catalog, ("ContrastBolusAgent",))["ContrastBolusAgent"]
    present = objects["series_key"].map(agents).map(lambda v: isinstance(v, str) and bool(v))
    return present.astype(bool) == bool(value)


def _description(catalog, objects, value, tolerance):
    pattern = re.compile(value, re.IGNORECASE) if isinstance(value, str) else value
    return objects["SeriesDescription"].map(
        lambda d: isinstance(d, str) and pattern.search(d) is not None).astype(bool)


_CRITERION = {"image_type": _image_type, "exclude_image_type": _exclude_image_type,
              "orientation": _orientation, "spacing": _spacing,
              "slice_spacing": _slice_spacing, "thickness": _thickness, "matrix": _matrix,
              "contrast": _contrast, "description": _description}


# --- per-series values ----------------------------------------------------------------------
def acquisition_table(catalog, tolerance: float = ORIENTATION_TOLERANCE_DEG) -> pd.DataFrame:
    """One row per object of ``catalog`` (``series_key``) with the values the acquisition
    criteria use: ``orientation`` (class), ``obliquity_deg`` (angle between the slice normal
    and the nearest patient axis), ``row_spacing`` / ``column_spacing`` / ``slice_spacing``
    (mm), ``image_type`` (the set of ImageType values), ``localizer`` (bool, by
    :data:`LOCALIZER_RULE`). ``Catalog.query`` evaluates expressions over these columns and
    those of ``series``.

    >>> from dicomml.catalog.partition import demo_catalog
    >>> acquisition_table(demo_catalog(1, 1)).orientation.tolist()
    ['unknown']
    """
    objects = catalog.objects
    classes = [orientation_class(iop, tolerance) for iop in objects["ImageOrientationPatient"]]
    spacing = objects["PixelSpacing"].map(
        lambda s: list(s) if isinstance(s, (list, tuple, np.ndarray)) and len(s) == 2
        else [math.nan, math.nan])
    scouts = set(localizers(catalog).series_key)
    return pd.DataFrame({
        "series_key": objects["series_key"].tolist(),
        "orientation": [c for c, _ in classes], "obliquity_deg": [a for _, a in classes],
        "row_spacing": [float(s[0]) for s in spacing],
        "column_spacing": [float(s[1]) for s in spacing],
        "slice_spacing": objects["series_key"].map(slice_spacings(catalog)).tolist(),
        "image_type": objects["ImageType"].map(image_types).tolist(),
        "localizer": objects["series_key"].isin(scouts).tolist()})


def query_keys(catalog, expression: str, tolerance: float = ORIENTATION_TOLERANCE_DEG) -> list:
    """Series keys of the objects for which ``expression`` (``pandas.DataFrame.query``
    syntax) holds, over the columns of ``objects`` and of :func:`acquisition_table`."""
    table = acquisition_table(catalog, tolerance)
    columns = [c for c in catalog.objects.columns if c not in table.columns]
    frame = pd.concat([catalog.objects[columns].reset_index(drop=True), table], axis=1)
    return frame.query(expression, engine="python")["series_key"].tolist()


def slice_spacings(catalog) -> dict:
    """``{series_key: mm}``: the median distance between adjacent distinct slice positions
    along the normal (positions rounded to 0.01 mm), SpacingBetweenSlices for a series of one
    position (a multi-frame file), NaN when unknown."""
    inst = catalog.instances
    out = {}
    spacing_tag = catalog.objects.set_index("series_key")["SpacingBetweenSlices"] \
        if "SpacingBetweenSlices" in catalog.objects else pd.Series(dtype=float)
    for key, rows in inst.groupby("series_key", sort=False):
        normal = next((n for n in map(_normal, rows["ImageOrientationPatient"]) if n is not None),
                      None)
        value = math.nan
        if normal is not None:
            ipp = [p for p in rows["ImagePositionPatient"]
                   if isinstance(p, (list, tuple, np.ndarray)) and len(p) == 3]
            positions = np.unique(np.round(np.asarray(ipp, dtype=np.float64) @ normal, 2)) \
                if ipp else np.zeros(0)
            if positions.size > 1:
                value = float(np.median(np.diff(positions)))
        if value != value:
            value = float(spacing_tag.get(key, math.nan))
        out[key] = value
    return out


def series_tags(catalog, keywords) -> pd.DataFrame:
    """Tags the catalog does not collect, read from the first file of each series with
    pydicom (``stop_before_pixels``, ``specific_tags``): one row per series key, text values
    (``None`` when absent or unreadable). Nothing is written."""
    import pydicom

    keywords = list(keywords)
    rows = {}
    for key, path in _first_files(catalog).items():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=keywords,
                                 force=True)
        except Exception:  # an unreadable file: its tags are unknown  # noqa: BLE001
            rows[key] = dict.fromkeys(keywords)
            continue
        rows[key] = {k: _text(ds.get(k)) for k in keywords}
    return pd.DataFrame.from_dict(rows, orient="index", columns=keywords)


def _first_files(catalog) -> dict:
    inst = catalog.instances.sort_values(["series_key", "InstanceNumber", "path"],
                                         na_position="last")
    return inst.groupby("series_key", sort=False)["path"].first().to_dict()


def _text(element) -> str | None:
    if element is None:
        return None
    value = element.value if hasattr(element, "value") else element
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


# --- localizers -----------------------------------------------------------------------------
def localizers(catalog) -> pd.DataFrame:
    """The image series that :data:`LOCALIZER_RULE` calls localizers: ``series_key``,
    ``SeriesDescription``, ``reason`` (``"ImageType LOCALIZER"``, ``"single image N degrees
    from the study plane"``, ``"three-plane scout"``)."""
    s = catalog.series
    flagged = s.ImageType.map(lambda v: "LOCALIZER" in image_types(v)).astype(bool)
    reasons = dict.fromkeys(s.series_key[flagged], "ImageType LOCALIZER")
    reasons.update({k: v for k, v in _orthogonal_singles(s).items() if k not in reasons})
    reasons.update({k: v for k, v in _multi_plane_scouts(s).items() if k not in reasons})
    out = s[s.series_key.isin(reasons)][["series_key", "SeriesDescription"]].copy()
    out["reason"] = out.series_key.map(reasons)
    return out.reset_index(drop=True)


def _orthogonal_singles(s: pd.DataFrame) -> dict:
    found = {}
    single = (s.n_slices == 1) & (s.n_volumes == 1)
    s = s[s.StudyInstanceUID.isin(set(s.StudyInstanceUID[single]))]
    for _, study in s.groupby("StudyInstanceUID", sort=False):
        main = study.sort_values("n_slices", ascending=False, kind="stable").iloc[0]
        reference = _normal(main.ImageOrientationPatient)
        if reference is None or main.n_slices < 2:
            continue
        singles = study[(study.n_slices == 1) & (study.n_volumes == 1)]
        for row in singles.itertuples(index=False):
            normal = _normal(row.ImageOrientationPatient)
            if normal is None:
                continue
            degrees = float(np.degrees(np.arccos(min(1.0, abs(float(normal @ reference))))))
            if degrees > LOCALIZER_ANGLE_DEG:
                found[row.series_key] = f"single image {degrees:.0f} degrees from the study plane"
    return found


def _multi_plane_scouts(s: pd.DataFrame) -> dict:
    split = s[s.split_reason.fillna("").str.contains("orientation")]
    found = {}
    for _, parts in split.groupby("SeriesInstanceUID", sort=False):
        if len(parts) > 1 and (parts.n_slices <= LOCALIZER_MAX_SLICES).all():
            found.update(dict.fromkeys(parts.series_key, "three-plane scout"))
    return found


# --- duplicates -----------------------------------------------------------------------------
def duplicates(catalog, pixels: bool = False) -> pd.DataFrame:
    """Duplicated data, one row per extra copy: ``kind`` (``"file"``: two files with one
    SOPInstanceUID; ``"series"``: two series with the same set of SOPInstanceUIDs;
    ``"pixels"``, only with ``pixels=True``: files whose stored Pixel Data bytes are identical
    under different SOPInstanceUIDs), ``key`` (the shared UID, or the pixel hash), ``keep``
    (the path or series key kept) and ``duplicate`` (the copy to drop). The rule keeps the copy with
    the shortest path (then the first in sorted order); a series duplicate keeps the series
    key that sorts first. ``pixels=True`` reads each image file's Pixel Data value (bytes as
    stored: a re-encoded copy is not found)."""
    inst = catalog.instances
    rows = []
    for uid, group in inst[inst.SOPInstanceUID.duplicated(keep=False)].groupby(
            "SOPInstanceUID", sort=True):
        paths = sorted(group.path, key=lambda p: (len(p), p))
        rows += [("file", uid, paths[0], p) for p in paths[1:]]
    sets = inst.groupby("series_key", sort=True)["SOPInstanceUID"].agg(
        lambda v: tuple(sorted(set(v))))
    for _, keys in sets.groupby(sets, sort=False):
        keys = sorted(keys.index)
        rows += [("series", keys[0], keys[0], k) for k in keys[1:]]
    if pixels:
        rows += _pixel_duplicates(inst)
    return pd.DataFrame(rows, columns=["kind", "key", "keep", "duplicate"])


def _pixel_duplicates(inst: pd.DataFrame) -> list:
    import hashlib

    digests = {}
    for row in inst[inst.has_pixels].itertuples(index=False):
        data = _stored_pixels(row)
        if data is not None:
            digests.setdefault(hashlib.sha256(data).hexdigest(), []).append(
                (row.path, row.SOPInstanceUID))
    rows = []
    for digest, files in sorted(digests.items()):
        if len({uid for _, uid in files}) < 2:
            continue
        paths = sorted({p for p, _ in files}, key=lambda p: (len(p), p))
        uids = dict(files)
        kept = uids[paths[0]]
        rows += [("pixels", digest[:16], paths[0], p) for p in paths[1:] if uids[p] != kept]
    return rows


def _stored_pixels(row) -> bytes | None:
    """The Pixel Data value as stored: the catalog's offset and length, or pydicom's bytes
    (deflated files, undefined length)."""
    offset, length = int(row.pixel_data_offset), int(row.pixel_data_length)
    try:
        if offset >= 0 and length > 0:
            with open(row.path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        import pydicom

        ds = pydicom.dcmread(row.path, force=True)
        return bytes(ds.PixelData) if "PixelData" in ds else None
    except (OSError, ValueError, AttributeError):
        return None


def drop_duplicates(catalog, pixels: bool = False):
    """``catalog`` without the ``duplicate`` side of :func:`duplicates` (files, series, and with
    ``pixels=True`` pixel copies); a new Catalog."""
    found = duplicates(catalog)
    series_drop = set(found.loc[found.kind == "series", "duplicate"])
    out = catalog.filter(series_key=[k for k in catalog.objects.series_key
                                     if k not in series_drop])
    found = duplicates(out, pixels=pixels)  # files, once the duplicate series are gone
    file_drop = set(found.loc[found.kind != "series", "duplicate"])
    if file_drop:
        out = out.filter(path=lambda paths: ~paths.isin(file_drop))
    return out
