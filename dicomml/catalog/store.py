"""Catalog persistence: ONE Parquet file, or a partitioned Parquet directory for big archives.

The file's table is ``Catalog.instances`` (so ``pandas.read_parquet(path)`` alone gives the
per-file index). The ``series`` and ``errors`` tables travel inside the same file, in its
schema metadata, as Arrow IPC streams under the keys ``dicomml.series`` and
``dicomml.errors``, next to ``dicomml.format`` (:data:`FORMAT_VERSION`) and ``dicomml.root``
(the scanned folder). Writes go to a temporary file beside ``path`` that then replaces it, so
a crash never leaves a half-written catalog.

A *partitioned* catalog (a ``path`` that ends with ``/`` or is an existing directory) is a
directory dataset: ``part-00000.parquet``, ``part-00001.parquet``... each holding at most
:data:`PART_ROWS` rows of ``instances`` (in path order), so ``pandas.read_parquet(path)``,
``pyarrow.dataset.dataset(path)`` and ``ray.data.read_parquet(path)`` read the per-file index
directly; the series and errors tables, the format and the root ride in the schema metadata of
``_dicomml.parquet`` (an empty table that those readers skip: its name starts with ``_``). The
new directory is written beside ``path`` under a hidden name, then swapped in with two renames
(a crash between them leaves the old directory under ``.NAME.old-PID``, never a mixed one).

Example
-------
>>> import tempfile, os, pandas as pd
>>> from dicomml.catalog.table import instances_frame, errors_frame
>>> path = os.path.join(tempfile.mkdtemp(), "cat.parquet")
>>> save_tables(path, instances_frame([]), pd.DataFrame(), errors_frame([]), root="/data")
>>> load_tables(path)[3]
'/data'
"""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dicomml.errors import CatalogError

from .table import ERROR_COLUMNS, INSTANCE_COLUMNS, LIST_COLUMNS, normalize

FORMAT_VERSION = "1"
#: Rows of ``instances`` per part file of a partitioned catalog.
PART_ROWS = 100_000
#: The metadata file of a partitioned catalog (skipped by Parquet dataset readers).
META_FILE = "_dicomml.parquet"


def is_partitioned(path) -> bool:
    """Whether ``path`` names a partitioned catalog directory: it ends with a path separator
    or is an existing directory."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or os.path.isdir(text)


def is_catalog_dir(path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_tables` (it holds
    :data:`META_FILE`)."""
    return os.path.isfile(os.path.join(os.fspath(path), META_FILE))


def _ipc_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _ipc_frame(data: bytes) -> pd.DataFrame:
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    return _to_pandas(table)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with text as object columns of str/None (what a scan builds, not
    pandas' ``str`` dtype) and list columns as Python lists (not numpy arrays)."""
    columns = {}
    for field, column in zip(table.schema, table.columns):
        if field.name in LIST_COLUMNS:
            columns[field.name] = pd.Series(_float_lists(column), dtype=object)
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type) or \
                pa.types.is_null(field.type):
            columns[field.name] = pd.Series(column.to_numpy(zero_copy_only=False),
                                            dtype=object)
        else:
            columns[field.name] = pd.Series(column.to_numpy(zero_copy_only=False))
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _float_lists(column: pa.ChunkedArray) -> list:
    """A list<double> column as Python lists of floats; vectorized when all rows hold the
    same number of values (the usual IPP/IOP/PixelSpacing case)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(array) and array.null_count == 0 and pa.types.is_list(array.type):
        lengths = pc.list_value_length(array)
        width = pc.min_max(lengths)
        if width["min"].as_py() == width["max"].as_py() and array.offset == 0:
            flat = array.flatten().to_numpy(zero_copy_only=False)
            if flat.dtype == np.float64:
                return flat.reshape(len(array), width["min"].as_py()).tolist()
    return array.to_pylist()


def _metadata(schema: pa.Schema, series: pd.DataFrame, errors: pd.DataFrame,
              root: str | None) -> dict:
    meta = dict(schema.metadata or {})
    meta.update({b"dicomml.format": FORMAT_VERSION.encode(),
                 b"dicomml.root": (root or "").encode(),
                 b"dicomml.series": _ipc_bytes(series),
                 b"dicomml.errors": _ipc_bytes(errors)})
    return meta


def save_tables(path, instances: pd.DataFrame, series: pd.DataFrame, errors: pd.DataFrame,
                root: str | None) -> None:
    """Write the three tables to the Parquet file ``path`` (atomically replaced), or to a
    partitioned directory when :func:`is_partitioned` (``path`` ends with ``/``)."""
    if is_partitioned(path):
        _save_directory(os.path.abspath(os.fspath(path)), instances, series, errors, root)
        return
    path = os.fspath(path)
    table = pa.Table.from_pandas(instances, preserve_index=False)
    table = table.replace_schema_metadata(_metadata(table.schema, series, errors, root))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _save_directory(path: str, instances, series, errors, root) -> None:
    """The partitioned layout (module docstring): written hidden beside ``path``, swapped in."""
    if os.path.exists(path) and not is_catalog_dir(path) and os.listdir(path):
        raise CatalogError("not a dicomml catalog directory (refusing to replace it)", path=path)
    parent, name = os.path.split(path.rstrip(os.sep))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    old = os.path.join(parent, f".{name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        table = pa.Table.from_pandas(instances, preserve_index=False)
        for number, start in enumerate(range(0, max(1, table.num_rows), PART_ROWS)):
            pq.write_table(table.slice(start, PART_ROWS),
                           os.path.join(tmp, f"part-{number:05d}.parquet"))
        empty = table.slice(0, 0).replace_schema_metadata(
            _metadata(table.schema, series, errors, root))
        pq.write_table(empty, os.path.join(tmp, META_FILE))
        if os.path.exists(path):
            os.rename(path.rstrip(os.sep), old)
        os.rename(tmp, path.rstrip(os.sep))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


class _Parts:
    """The part files of a partitioned catalog, opened now (so later reads see this version
    even if a save replaces the directory): ``read(columns)`` and ``close()`` as a
    ``pyarrow.parquet.ParquetFile``."""

    def __init__(self, path: str):
        names = sorted(n for n in os.listdir(path) if n.startswith("part-")
                       and n.endswith(".parquet"))
        self.files = [pq.ParquetFile(os.path.join(path, n)) for n in names]

    def read(self, columns=None) -> pa.Table:
        return pa.concat_tables([f.read(columns=columns) for f in self.files])

    def close(self) -> None:
        for f in self.files:
            f.close()


def open_catalog(path):
    """Open a catalog file or partitioned directory: ``(parquet_file, series, errors, root)``;
    CatalogError if bad.

    Only the file footer is read here (the series and errors tables live in it); the
    instances are read later from the returned open ``pyarrow.parquet.ParquetFile``, which
    keeps reading this version of the file even if a later save replaces it.
    """
    path = os.fspath(path)
    partitioned = os.path.isdir(path)
    if not partitioned and not os.path.isfile(path):
        raise CatalogError("catalog file not found", path=path)
    if partitioned and not is_catalog_dir(path):
        raise CatalogError(f"not a dicomml catalog directory (no {META_FILE})", path=path)
    try:
        if partitioned:
            with pq.ParquetFile(os.path.join(path, META_FILE)) as head:
                meta = head.schema_arrow.metadata or {}
            parquet = _Parts(path)
        else:
            parquet = pq.ParquetFile(path)
            meta = parquet.schema_arrow.metadata or {}
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"unreadable catalog ({exc})", path=path) from None
    if meta.get(b"dicomml.format") != FORMAT_VERSION.encode():
        parquet.close()
        raise CatalogError("not a dicomml catalog, or an incompatible version", path=path)
    series = _ipc_frame(meta[b"dicomml.series"])
    series = normalize(series, series.columns)
    errors = normalize(_ipc_frame(meta[b"dicomml.errors"]), ERROR_COLUMNS)
    root = meta.get(b"dicomml.root", b"").decode() or None
    return parquet, series, errors, root


def read_instances(parquet, columns=None) -> pd.DataFrame:
    """The instances table (or some ``columns`` of it) from an open catalog file."""
    try:
        table = parquet.read(columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"unreadable catalog ({exc})") from None
    frame = _to_pandas(table)
    return normalize(frame, INSTANCE_COLUMNS if columns is None else columns)


def load_tables(path):
    """Read ``(instances, series, errors, root)`` from a catalog file; CatalogError if bad."""
    parquet, series, errors, root = open_catalog(path)
    try:
        return read_instances(parquet), series, errors, root
    finally:
        parquet.close()
