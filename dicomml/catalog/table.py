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
  0: no Pixel Data).

Example
-------
>>> instances_frame([]).shape[0]
0
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import tags as T
from .placeholders import fill_placeholders

FILE_COLUMNS = ("path", "file_size", "mtime", "mtime_ns")
ERROR_COLUMNS = ("path", "file_size", "mtime", "mtime_ns", "error_type", "reason", "tag")
INSTANCE_COLUMNS = FILE_COLUMNS + T.COLUMNS

#: Never missing -> plain int64.
_INT_COLUMNS = ("pixel_data_offset", "pixel_data_length", "file_size", "mtime_ns",
                "n_instances", "n_frames", "n_slices", "n_volumes")
#: Numeric tags, integer ones included (Rows, InstanceNumber...): float64, NaN when absent,
#: so that ``pd.isna``/``math.isnan`` and comparisons work the usual way (no ``pd.NA``).
_FLOAT_COLUMNS = tuple(k for k, kind in T.KIND_OF.items() if kind != T.TEXT and
                       kind != T.FLOATS) + ("NumberOfImagesInMosaic", "mtime")
LIST_COLUMNS = tuple(k for k, kind in T.KIND_OF.items() if kind == T.FLOATS)


def instances_frame(records: list) -> pd.DataFrame:
    """``records``: ``(path, size, mtime_ns, row)`` tuples -> typed instances DataFrame."""
    if not records:
        return fill_placeholders(normalize(
            pd.DataFrame({c: pd.Series(dtype=object) for c in INSTANCE_COLUMNS}),
            INSTANCE_COLUMNS))
    paths, sizes, mtimes, rows = zip(*records)
    columns = dict(zip(T.COLUMNS, zip(*rows)))  # transpose in C
    mtime_ns = np.array(mtimes, dtype=np.int64)
    data = {"path": pd.Series(_objects(paths), dtype=object), "file_size": np.array(sizes, dtype=np.int64),
            "mtime": mtime_ns / 1e9, "mtime_ns": mtime_ns}
    for name in T.COLUMNS:
        data[name] = _typed(name, columns[name])
    return fill_placeholders(pd.DataFrame(data))


def _objects(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _typed(name: str, values):
    """One column of parsed values with its documented type (no inference)."""
    if name in _INT_COLUMNS:
        return np.array(values, dtype=np.int64)
    if name in _FLOAT_COLUMNS:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return pd.Series(_objects(values), dtype=object)


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
