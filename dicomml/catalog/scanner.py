"""``scan``: walk a folder, parse headers (in parallel), split series, optionally persist.

Incremental mode (``catalog=path``): when ``path`` exists, files whose (path, size, mtime_ns)
match the saved catalog are not read again, removed files drop out, new or changed files are
parsed; the updated catalog is written back to ``path`` (only when something changed). The
catalog file is written only where the caller says, never into the scanned folder otherwise.

Example
-------
>>> import dicomml
>>> cat = dicomml.scan("/data", catalog="/tmp/data.parquet", progress=False)  # doctest: +SKIP
>>> cat = dicomml.scan("/data", catalog="/tmp/data.parquet")  # doctest: +SKIP
>>> cat = dicomml.scan("/data", engine="ray", catalog="/tmp/data-catalog/")  # doctest: +SKIP

Engines: ``engine="local"`` (default) parses in a local process pool
(:func:`.parallel.parse_to_frames`); ``engine="ray"`` spreads the parsing as Ray tasks over a
cluster (:class:`dicomml.cluster.RayEngine`, the ``ray`` extra; imported only then). Any
object with a ``parse_to_frames(items, progress=...)`` method returning the ``(instances,
errors)`` DataFrames of those files (e.g. ``RayEngine(file_timeout=5)``)
is used as given. Walking, incremental reuse, series splitting and saving stay here, so every
engine gives the same Catalog.
"""

from __future__ import annotations

import contextlib
import gc
import os

import numpy as np
import pandas as pd

from dicomml._columns import is_url

from . import store
from .catalog import Catalog
from .parallel import parse_to_frames
from .split import assign_series, summarize_series
from .walk import walk_files


def scan(root, *, catalog=None, workers: int | None = None, progress: bool = True,
         query: dict | None = None, engine="local") -> Catalog:
    """Index every DICOM file under ``root``: a folder (searched recursively), one file, or a
    list of files and folders (``Catalog.root`` is then their common folder).

    ``catalog``: path of a Parquet catalog to update incrementally and save to (created when
    absent; a path ending with ``/`` is a partitioned Parquet directory, see :mod:`.store`).
    ``workers``: parser processes (None: all cores; 1: in this process; local engine only).
    ``progress``: show a tqdm bar. ``engine``: ``"local"``, ``"ray"`` or an engine object
    (module docstring). Unreadable files never raise: they land in ``errors``.
    Returns a :class:`Catalog`.

    ``root`` may also be a DICOMweb server, an ``http(s)://`` URL or a
    :class:`dicomml.web.DicomWebSource`: ``query`` then holds QIDO-RS filters and rows carry
    instance URLs (:func:`dicomml.web.scan_dicomweb`; ``workers`` unused).
    """
    if getattr(root, "is_dicomweb", False) or is_url(root):
        from dicomml.web import scan_dicomweb

        return scan_dicomweb(root, query=query, catalog=catalog, progress=progress)
    if isinstance(root, (str, os.PathLike)):
        roots = [os.path.abspath(os.fspath(root))]
    else:
        roots = sorted({os.path.abspath(os.fspath(r)) for r in root})
    parse = _engine(engine, workers)
    with _gc_paused():
        return _scan(roots, catalog, parse, progress)


def _engine(engine, workers):
    """``parse(items, progress)`` of an engine name or object."""
    if engine == "local":
        return lambda items, progress: parse_to_frames(items, workers=workers, progress=progress)
    if engine == "ray":  # a call-time import of a higher layer (docs/architecture.md)
        from dicomml.cluster.scan import RayEngine

        engine = RayEngine()
    if not callable(getattr(engine, "parse_to_frames", None)):
        raise ValueError(f"engine must be 'local', 'ray' or an object with parse_to_frames(), "
                         f"got {engine!r}")
    return engine.parse_to_frames


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector: building 10^5-10^6 small objects (rows, values)
    otherwise triggers collections that re-traverse every live object, quadratically."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _walk_all(roots: list[str], skip: frozenset) -> list:
    found, seen = [], set()
    for root in roots:
        for item in walk_files(root, skip=skip):
            if item[0] not in seen:
                seen.add(item[0])
                found.append(item)
    return found


def _scan(roots: list[str], catalog, parse, progress) -> Catalog:
    if len(roots) == 1:
        root = roots[0]
    else:
        root = os.path.commonpath(roots) if roots else None
    cat_path = None if catalog is None else os.path.abspath(os.fspath(catalog))
    if cat_path and store.is_partitioned(catalog):
        cat_path += os.sep  # saved as a directory, skipped by the walk
    previous = Catalog.load(cat_path) if cat_path and os.path.exists(cat_path) else None
    found = _walk_all(roots, frozenset([cat_path.rstrip(os.sep)]) if cat_path else frozenset())
    kept_instances, kept_errors, todo = _reuse(previous, found)
    if kept_instances is _UNCHANGED and previous.root == root:
        return previous  # nothing changed: no parsing, no rewrite
    if kept_instances is _UNCHANGED:  # same files, scanned under another root name
        kept_instances = previous.instances.drop(columns=["series_key", "split_reason"])
        kept_errors = previous.errors
    fresh, bad = parse(todo, progress=progress)
    instances = _by_path(_concat(kept_instances, fresh), kept_instances)
    errors = _by_path(_concat(kept_errors, bad), kept_errors)
    instances = assign_series(instances)
    result = Catalog(instances, summarize_series(instances), errors, root)
    if cat_path:
        result.save(cat_path)
    return result


_UNCHANGED = object()  # marker: every file of the previous catalog is there, unchanged


def _reuse(previous: Catalog | None, found: list):
    """Split walked files into rows reusable from ``previous`` and files to parse.

    Vectorized: one hash lookup of every walked path in the previous index, then array
    comparisons of size and mtime_ns.
    """
    if previous is None:
        return None, None, found
    index = pd.concat([previous.file_index(),
                       previous.errors[["path", "file_size", "mtime_ns"]]], ignore_index=True)
    paths = [f[0] for f in found]
    where = pd.Index(index["path"]).get_indexer(paths)
    sizes = np.fromiter((f[1] for f in found), dtype=np.int64, count=len(found))
    mtimes = np.fromiter((f[2] for f in found), dtype=np.int64, count=len(found))
    known = where >= 0
    safe = np.where(known, where, 0)
    same = known & (index["file_size"].to_numpy()[safe] == sizes) & \
        (index["mtime_ns"].to_numpy()[safe] == mtimes)
    if same.all() and len(found) == len(index):
        return _UNCHANGED, _UNCHANGED, []
    todo = [found[i] for i in np.flatnonzero(~same)]
    unchanged = [paths[i] for i in np.flatnonzero(same)]
    instances, errors = previous.instances, previous.errors
    kept_instances = instances[instances["path"].isin(unchanged)].drop(
        columns=["series_key", "split_reason"], errors="ignore")
    kept_errors = errors[errors["path"].isin(unchanged)]
    return kept_instances, kept_errors, todo


def _by_path(frame: pd.DataFrame, kept: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` in path order with a fresh 0..n-1 index. Fresh rows come sorted already (the
    parse results are sorted by path before the frame is built): only a frame with rows kept
    from the previous catalog needs sorting."""
    if kept is None or kept.empty:
        return frame
    return frame.sort_values("path").reset_index(drop=True)


def _concat(kept: pd.DataFrame | None, fresh: pd.DataFrame) -> pd.DataFrame:
    if kept is None or kept.empty:
        return fresh
    if fresh.empty:
        return kept
    return pd.concat([kept, fresh[kept.columns]], ignore_index=True)
