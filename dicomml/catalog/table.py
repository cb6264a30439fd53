"""Parsed rows -> the ``instances`` and ``errors`` DataFrames, with fixed column types.

Column types (the same after a scan and after ``Catalog.load``):
- numeric tags, integer ones included (``Rows``, ``InstanceNumber``, ``NumberOfFrames``,
  ``SliceThickness``, ``RescaleSlope``, ``WindowCenter``...): ``float64``, NaN when absent
  (``int(row.Rows)`` gives the integer; no ``pd.NA`` anywhere); multi-valued ones keep their
  first value;
- ``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing``: a Python
  ``list[float]`` per cell (a Parquet list column), ``None`` when absent;
- text tags: ``object`` holding ``str`` or ``None``; multi-valued text keeps ``\\``;
- ``path`` (absolute), ``file_size`` (bytes), ``mtime`` (seconds since the epoch, float),
  ``mtime_ns`` (int, what incremental rescans compare), ``pixel_data_offset`` (byte offset of
  the Pixel Data value in the file; -1: no Pixel Data, or a deflated file whose pixels are not
  stored as-is), ``pixel_data_length`` (bytes; -1: undefined length = encapsulated/compressed;
  0: no Pixel Data), ``float_pixel_data`` (float64: 1.0 where the file holds Float / Double
  Float Pixel Data (7FE0,0008/0009), NaN otherwise; what the loader chooses a float32 /
  float64 output from).

Derived after parsing (:func:`add_object_columns`), so a row says what kind of object it is:

- ``has_pixels`` (bool): the file holds pixel data (Pixel Data of any length and encoding;
  Float / Double Float Pixel Data, which only Parametric Map objects carry, is recognised by
  that SOP class (the parser stops there, recording only ``float_pixel_data``);
- ``object_kind`` (str, one of :data:`OBJECT_KINDS`): ``"image"`` for images (any image SOP
  class, or an unknown class with pixels), else what the SOP Class UID says: ``"segmentation"``,
  ``"rt dose"``, ``"rt structure set"``, ``"rt plan"``, ``"structured report"`` (SR and key
  object selection), ``"presentation state"``, ``"waveform"``, ``"encapsulated document"``
  (PDF, CDA, STL...), ``"raw data"`` (e.g. Philips ``*_Raw`` / ``XX_*`` objects), or
  ``"other non-image"``. Only ``"image"`` objects are image series (``Catalog.series``).

Example
-------
>>> instances_frame([]).shape[0]
0
>>> object_kind("1.2.840.10008.5.1.4.1.1.481.3", False)
'rt structure set'
>>> object_kind("1.2.840.10008.5.1.4.1.1.2", True)
'image'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import tags as T
from .placeholders import fill_placeholders

FILE_COLUMNS = ("path", "file_size", "mtime", "mtime_ns")
ERROR_COLUMNS = ("path", "file_size", "mtime", "mtime_ns", "error_type", "reason", "tag")
#: Columns derived from the parsed ones (:func:`add_object_columns`).
OBJECT_COLUMNS = ("has_pixels", "object_kind")
INSTANCE_COLUMNS = FILE_COLUMNS + T.COLUMNS + OBJECT_COLUMNS
_BOOL_COLUMNS = ("has_pixels",)

#: Every ``object_kind`` value, images first.
OBJECT_KINDS = ("image", "segmentation", "rt dose", "rt structure set", "rt plan",
                "structured report", "presentation state", "waveform", "encapsulated document",
                "raw data", "other non-image")
_STORAGE = "1.2.840.10008.5.1.4.1.1."  # root of the Storage SOP classes (PS3.4 Annex B)
#: SOP classes (PS3.6 Annex A) whose kind is not "image" / "other non-image", exact UIDs.
_KIND_OF_CLASS = {_STORAGE + suffix: kind for suffix, kind in (
    ("66", "raw data"),
    ("66.4", "segmentation"), ("66.5", "segmentation"), ("66.7", "segmentation"),
    ("481.2", "rt dose"), ("481.3", "rt structure set"),
    ("481.5", "rt plan"), ("481.8", "rt plan"), ("481.10", "rt plan"),  # RT (Ion) Plan
)}
#: Families of SOP classes: every UID under the prefix has the kind.
_KIND_OF_FAMILY = tuple((_STORAGE + suffix + ".", kind) for suffix, kind in (
    ("88", "structured report"), ("11", "presentation state"), ("9", "waveform"),
    ("104", "encapsulated document"),
))
#: SOP classes whose pixels may be Float / Double Float Pixel Data (Parametric Map).
_FLOAT_PIXEL_CLASSES = frozenset({_STORAGE + "30"})

#: Never missing -> plain int64.
_INT_COLUMNS = ("pixel_data_offset", "pixel_data_length", "file_size", "mtime_ns",
                "n_instances", "n_frames", "n_slices", "n_volumes")
#: Numeric tags, integer ones included (Rows, InstanceNumber...): float64, NaN when absent,
#: so that ``pd.isna``/``math.isnan`` and comparisons work the usual way (no ``pd.NA``).
_FLOAT_COLUMNS = tuple(k for k, kind in T.KIND_OF.items() if kind != T.TEXT and
                       kind != T.FLOATS) + ("NumberOfImagesInMosaic", "mtime", "StoredRows",
                                          "StoredColumns", "float_pixel_data")
LIST_COLUMNS = tuple(k for k, kind in T.KIND_OF.items() if kind == T.FLOATS)


def instances_frame(records: list) -> pd.DataFrame:
    """``records``: ``(path, size, mtime_ns, row)`` tuples -> typed instances DataFrame, in
    the order given."""
    table = InstanceColumns()
    table.add(records)
    return table.frame(sort=False)


class InstanceColumns:
    """Parsed rows gathered batch by batch as typed column arrays, then one instances
    DataFrame: what :func:`instances_frame` builds, without holding every row as Python
    tuples (a parallel scan types each batch as it arrives, while workers parse the next).

    >>> table = InstanceColumns()
    >>> table.add([])
    >>> table.frame().shape[0]
    0
    """

    def __init__(self) -> None:
        self.batches: list[dict] = []

    def extend(self, batches: list[dict]) -> None:
        """Add batches typed elsewhere (another process's :attr:`batches`)."""
        self.batches.extend(batches)

    def add(self, records: list) -> None:
        """Type a batch of ``(path, size, mtime_ns, row)`` records (rows in
        :data:`~dicomml.catalog.tags.COLUMNS` order)."""
        if not records:
            return
        paths, sizes, mtimes, rows = zip(*records)
        columns = zip(*rows)  # transpose in C
        batch = {"path": _objects(paths), "file_size": np.array(sizes, dtype=np.int64),
                 "mtime_ns": np.array(mtimes, dtype=np.int64)}
        for name, values in zip(T.COLUMNS, columns):
            batch[name] = _typed(name, values)
        self.batches.append(batch)

    def frame(self, sort: bool = True) -> pd.DataFrame:
        """The instances DataFrame of every batch added (rows in path order when ``sort``,
        else in the order added); placeholders and object columns filled in."""
        if not self.batches:
            return fill_placeholders(normalize(
                pd.DataFrame({c: pd.Series(dtype=object) for c in INSTANCE_COLUMNS}),
                INSTANCE_COLUMNS))  # has_pixels: an empty bool column
        names = list(self.batches[0])
        merged = {name: _joined([b[name] for b in self.batches]) for name in names}
        if sort:
            order = np.argsort(merged["path"], kind="stable")
            merged = {name: values[order] for name, values in merged.items()}
        mtime_ns = merged["mtime_ns"]
        data = {"path": pd.Series(merged["path"], dtype=object),
                "file_size": merged["file_size"], "mtime": mtime_ns / 1e9, "mtime_ns": mtime_ns}
        for name in T.COLUMNS:
            values = merged[name]
            data[name] = pd.Series(values, dtype=object) if values.dtype == object else values
        frame = fill_placeholders(pd.DataFrame(data))
        has_pixels, kinds = object_columns(frame)  # a fresh frame: no copy needed
        frame["has_pixels"] = has_pixels
        frame["object_kind"] = pd.Series(kinds, index=frame.index, dtype=object)
        return frame


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def object_kind(sop_class_uid, has_pixels: bool) -> str:
    """What a DICOM object is (one of :data:`OBJECT_KINDS`), from its SOP Class UID and
    whether it holds pixel data.

    >>> object_kind("1.2.840.10008.5.1.4.1.1.88.33", False)
    'structured report'
    >>> object_kind(None, True), object_kind(None, False)
    ('image', 'other non-image')
    """
    uid = "" if sop_class_uid is None or sop_class_uid != sop_class_uid else \
        str(sop_class_uid).strip()
    kind = _KIND_OF_CLASS.get(uid)
    if kind is None:
        kind = next((k for prefix, k in _KIND_OF_FAMILY if uid.startswith(prefix)), None)
    if kind is not None:
        return kind
    if has_pixels or uid in _FLOAT_PIXEL_CLASSES:
        return "image"
    from dicomml.errors import sop_class_name

    # an image SOP class without pixels is a damaged image: listed as one, so that loading
    # it says what is missing instead of the series silently disappearing
    return "image" if "Image Storage" in sop_class_name(uid) else "other non-image"


def add_object_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (instances: ``SOPClassUID``, ``pixel_data_length``...) with ``has_pixels``
    and ``object_kind`` (see the module docstring), added when absent; a new frame.

    >>> frame = pd.DataFrame({"SOPClassUID": ["1.2.840.10008.5.1.4.1.1.66"],
    ...                       "pixel_data_length": [0]})
    >>> add_object_columns(frame)[["has_pixels", "object_kind"]].values.tolist()
    [[False, 'raw data']]
    """
    if all(name in frame for name in OBJECT_COLUMNS):
        return frame
    out = frame.copy()
    has_pixels, kinds = object_columns(frame)
    out["has_pixels"] = has_pixels
    out["object_kind"] = pd.Series(kinds, index=frame.index, dtype=object)
    return out


def object_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(has_pixels, object_kind)`` arrays for the rows of ``frame``; an object's class is
    ``SOPClassUID``, else the file meta's ``MediaStorageSOPClassUID``. Without a
    ``pixel_data_length`` column (rows not from the parser) every row counts as having
    pixels."""
    n = len(frame)
    uids = _class_uids(frame, n)
    if "pixel_data_length" in frame:  # 0: no Pixel Data; -1: encapsulated; > 0: native
        length = pd.to_numeric(frame["pixel_data_length"], errors="coerce")
        has_pixels = length.fillna(0).to_numpy() != 0
    else:  # rows not from the parser (a hand-made table): assumed to be images
        has_pixels = np.ones(n, dtype=bool)
    codes, classes = pd.factorize(uids, use_na_sentinel=False)
    has_pixels |= np.isin(np.asarray(classes, dtype=object),
                          list(_FLOAT_PIXEL_CLASSES))[codes] if n else has_pixels
    pairs = codes.astype(np.int64) * 2 + has_pixels  # one kind per (class, pixels) pair
    kinds = np.empty(2 * len(classes), dtype=object)
    for pair in np.unique(pairs).tolist():
        kinds[pair] = object_kind(classes[pair // 2], bool(pair % 2))
    return has_pixels, kinds[pairs]


def _class_uids(frame: pd.DataFrame, n: int) -> np.ndarray:
    """SOPClassUID per row, else MediaStorageSOPClassUID, else None (object array)."""
    out = np.full(n, None, dtype=object)
    for name in ("MediaStorageSOPClassUID", "SOPClassUID"):  # the latter wins
        if name in frame:
            values = frame[name].to_numpy(dtype=object)
            good = ~pd.isna(values) & (values != "")
            out[good] = values[good]
    return out


def require_pixels(rows: pd.DataFrame) -> None:
    """Raise :class:`~dicomml.errors.NoPixelDataError` for the first of ``rows`` (catalog
    instances) without pixel data, naming the file and its SOP class; rows from a frame
    lacking the needed columns pass.

    >>> require_pixels(pd.DataFrame({"path": ["a.dcm"], "pixel_data_length": [0],
    ...                              "SOPClassUID": ["1.2.840.10008.5.1.4.1.1.88.33"]}))
    Traceback (most recent call last):
    dicomml.errors.NoPixelDataError: a.dcm: has no Pixel Data (Comprehensive SR Storage) ...
    """
    if "has_pixels" in rows:
        has_pixels = rows["has_pixels"].to_numpy(dtype=bool)
    elif "pixel_data_length" in rows:
        has_pixels = object_columns(rows)[0]
    else:
        return
    if has_pixels.all():
        return
    from dicomml.errors import NoPixelDataError

    first = rows.iloc[int(np.flatnonzero(~has_pixels)[0])]
    uid = first.get("SOPClassUID")
    uid = uid if isinstance(uid, str) and uid else first.get("MediaStorageSOPClassUID")
    raise NoPixelDataError(path=first.get("path"), sop_class_uid=uid)


def _objects(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _typed(name: str, values) -> np.ndarray:
    """One column of parsed values with its documented type (no inference): int64,
    float64 (None -> NaN) or an object array."""
    if name in _INT_COLUMNS:
        return np.array(values, dtype=np.int64)
    if name in _FLOAT_COLUMNS:
        return np.array(values, dtype=np.float64)  # numpy reads None as NaN
    return _objects(values)


def errors_frame(records: list) -> pd.DataFrame:
    """``records``: ``(path, size, mtime_ns, (error_type, reason, tag))`` -> errors frame."""
    data = [(p, size, mtime_ns / 1e9, mtime_ns, *err) for p, size, mtime_ns, err in records]
    frame = pd.DataFrame.from_records(data, columns=list(ERROR_COLUMNS)) if data else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in ERROR_COLUMNS})
    return normalize(frame, ERROR_COLUMNS)


def normalize(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Give ``frame`` the documented column types (text: object with None for missing)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if name in _INT_COLUMNS:
            out[name] = col if col.dtype == "int64" else pd.to_numeric(col).astype("int64")
        elif name in _BOOL_COLUMNS:
            out[name] = col if col.dtype == bool else col.fillna(False).astype(bool)
        elif name in _FLOAT_COLUMNS and col.dtype == "float64":
            out[name] = col
        elif name in _FLOAT_COLUMNS:
            out[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif name in LIST_COLUMNS:
            out[name] = col.astype(object)
        else:
            out[name] = _text_column(col)
    return pd.DataFrame(out, index=frame.index)[[c for c in frame.columns]]


def _text_column(col: pd.Series) -> pd.Series:
    if col.dtype == object:
        return col
    values = col.astype(object)
    return values.where(col.notna(), None)
