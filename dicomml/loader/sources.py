"""Resolve a ``load_series`` source — a Catalog, a folder, one file or a list of files — to the
catalog rows (``instances``) of one series.

Folders are split into series by the catalog's own scanner (:func:`dicomml.scan`), so the keys
are the catalog's. A folder scan skips unreadable files; when nothing loadable is left, the
error the scan recorded for them is raised (its :mod:`dicomml.errors` type, file and tag). One
file, or a list of files, is parsed file by file: the first unreadable file raises its typed
error at once.

Example
-------
>>> import tempfile
>>> from dicomml import synth
>>> folder = tempfile.mkdtemp()
>>> _ = synth.write_series(folder, shape=(3, 8, 8))
>>> rows, key = resolve_source(folder)
>>> len(rows)
3
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from dicomml import errors
from dicomml.catalog.table import require_pixels
from dicomml.decode.located import local_rows
from dicomml.errors import MultipleSeriesError, SeriesNotFoundError

from ._util import value

#: how many unreadable files a "no series found" message lists by name
LISTED_ERRORS = 5


def resolve_source(source, key: str | None = None) -> tuple[pd.DataFrame, str]:
    """The catalog rows (``instances``, one per file) of one series and its key.

    ``key`` None: the source must hold exactly one series. A SeriesInstanceUID that the
    catalog split into sub-series (``UID#e1``, ``UID#t2``...) selects all of them (4D).
    """
    if hasattr(source, "instances"):
        instances, scan_errors = source.instances, getattr(source, "errors", None)
    else:
        instances, scan_errors = _scan(source)
    keys = list(pd.unique(instances["series_key"]))
    images = instances[instances["has_pixels"]] if "has_pixels" in instances else instances
    if key is None:  # objects without pixels (SR, raw data...) are no candidates
        key = _only_key(list(pd.unique(images["series_key"])) or keys,
                        images if len(images) else instances, source, scan_errors)
    rows = instances[instances["series_key"] == key]
    if rows.empty and "SeriesInstanceUID" in instances:
        # a SeriesInstanceUID whose files the catalog split (by echo, temporal position,
        # acquisition) into sub-series: load all of them, as a 4D volume
        rows = instances[instances["SeriesInstanceUID"] == key]
        if "object_kind" in rows and (rows["object_kind"] == "image").any():
            rows = rows[rows["object_kind"] == "image"]  # not the UID's raw data, SR...
        _check_stackable(rows, source)
    if rows.empty:
        raise SeriesNotFoundError(f"no series with key {key!r}", path=_source_name(source))
    require_pixels(rows)  # an SR, RT structure set, raw data...: say so, by file and class
    rows = local_rows(rows)  # DICOMweb rows (dicomml.web): read from the local store from here
    return rows.reset_index(drop=True), str(key)


def _check_stackable(rows: pd.DataFrame, source) -> None:
    """MultipleSeriesError when the sub-series of one Series Instance UID cannot form one
    volume (split by SOP class, series number, orientation or matrix size)."""
    from dicomml.catalog.split import unstackable

    if "split_reason" not in rows or rows["series_key"].nunique() < 2:
        return
    reasons = unstackable(rows["split_reason"].iloc[0])
    if reasons:
        raise MultipleSeriesError(
            f"the sub-series of this Series Instance UID cannot form one volume (they differ "
            f"in {', '.join(reasons)}); pass one of their keys",
            keys=list(pd.unique(rows["series_key"])), path=_source_name(source))


def _only_key(keys: list, instances: pd.DataFrame, source, scan_errors) -> str:
    """The one series key of a source given without ``key``; typed errors otherwise. A source
    holding one Series Instance UID whose sub-series stack gives that UID (loaded whole)."""
    if len(keys) > 1:
        uids = list(pd.unique(instances["SeriesInstanceUID"]))
        if len(uids) == 1:
            _check_stackable(instances, source)
            return str(uids[0])
        raise MultipleSeriesError("the source holds several series; pass key=",
                                  keys=keys, path=_source_name(source))
    if not keys:
        raise_scan_errors(scan_errors, _source_name(source))
        raise SeriesNotFoundError("no DICOM image series found", path=_source_name(source))
    return keys[0]


def raise_scan_errors(scan_errors: pd.DataFrame | None, where: str | None) -> None:
    """Re-raise what a scan that found no series recorded (``Catalog.errors`` rows: path,
    error_type, reason, tag) as its :mod:`dicomml.errors` type, naming the first unreadable
    file and its tag and listing the others; returns when nothing typed was recorded."""
    if scan_errors is None or len(scan_errors) == 0:
        return
    records = scan_errors.sort_values("path").to_dict("records")
    typed = [r for r in records if _error_class(r["error_type"]) is not None]
    if not typed:
        return
    first = typed[0]
    others = [f"{r['path']} ({r['error_type']}: {r['reason']})" for r in records
              if r is not first][:LISTED_ERRORS]
    more = len(records) - 1 - len(others)
    message = (f"{first['reason']} (no loadable DICOM image series in {where}: "
               f"{len(records)} unreadable file(s)")
    if others:
        message += "; also " + "; ".join(others) + (f"; and {more} more" if more > 0 else "")
    raise _error_class(first["error_type"])(message + ")", path=first["path"],
                                            tag=value(first, "tag"))


def _error_class(name) -> type | None:
    """The :mod:`dicomml.errors` class called ``name`` (None for other labels, e.g.
    "DICOMDIR", which the scan records but which is not an error of the file)."""
    found = getattr(errors, str(name), None)
    if isinstance(found, type) and issubclass(found, errors.DicommlError):
        return found
    return None


def _source_name(source) -> str | None:
    """The folder or file a source names (a Catalog: its root), for error messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    root = getattr(source, "root", None)
    return None if root is None else os.fspath(root)


def _files(source) -> list[str]:
    """The files of a folder (recursive, sorted), a single file, or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return sorted(str(p) for p in path.rglob("*") if p.is_file())
        return [str(path)]
    if isinstance(source, Sequence):
        return [os.fspath(p) for p in source]
    raise TypeError(f"load_series: unsupported source {type(source).__name__}")


def _scan(source) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(instances, scan errors) of a folder, file or file list, split into series by the
    catalog's scanner; scan errors is None where unreadable files raised instead."""
    from dicomml.catalog import scan

    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        catalog = scan(source, progress=False)
        return catalog.instances, catalog.errors
    return _scan_file_list(_files(source)), None


def _scan_file_list(files: list[str]) -> pd.DataFrame:
    """Catalog rows for an explicit file list, split into series exactly as ``scan`` does.

    A file in the list that is not a readable DICOM image raises its typed error (a folder
    scan skips such files instead).
    """
    from dicomml.catalog.parallel import parse_files
    from dicomml.catalog.split import assign_series
    from dicomml.catalog.table import instances_frame

    if not files:
        raise SeriesNotFoundError("the file list is empty")
    items = []
    for path in files:
        stat = os.stat(path)
        items.append((os.path.abspath(path), stat.st_size, stat.st_mtime_ns))
    ok = []
    for path, size, mtime, row, error in parse_files(items, workers=1, progress=False):
        if error is not None:
            kind, reason, tag = error
            raise (_error_class(kind) or errors.InvalidDicomError)(reason, path=path, tag=tag)
        ok.append((path, size, mtime, row))
    instances = instances_frame(ok).sort_values("path").reset_index(drop=True)
    return assign_series(instances)
