"""The dataset's view of a catalog: open a source, pick series, gather their identifiers.

Everything here reads the catalog only (headers scanned once); no pixel data is decoded.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(3, 8, 8))
>>> table = series_table(dicomml.Catalog.open(folder))
>>> int(table["n_slices"].iloc[0])
3
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from dicomml._columns import column_list, is_url, plain
from dicomml.errors import CatalogError

ID_COLUMNS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber")
DEFAULT_METADATA = ("Modality", "SeriesNumber", "SeriesDescription", "StudyDate",
                    "BodyPartExamined", "Manufacturer")


def select(catalog, criteria) -> object:
    """The catalog restricted by ``criteria``: None, a dict (``Catalog.filter``), a list of
    series keys, or a callable taking the ``series`` DataFrame and returning a boolean mask."""
    if criteria is None:
        return catalog
    if isinstance(criteria, Mapping):
        return catalog.filter(**criteria)
    if callable(criteria):
        mask = np.asarray(criteria(catalog.series), dtype=bool)
        return catalog.filter(series_key=list(catalog.series["series_key"][mask]))
    if isinstance(criteria, Iterable) and not isinstance(criteria, (str, bytes)):
        return catalog.filter(series_key=[str(k) for k in criteria])
    raise TypeError("filter must be None, a dict, a list of series keys or a callable")


def web_sources(catalog) -> tuple:
    """The :class:`~dicomml.web.DicomWebSource` objects serving the catalog's instance URLs
    (none for files on disk). A dataset holds them so that a ``spawn`` DataLoader worker,
    which unpickles the dataset in a fresh interpreter, finds its servers registered."""
    urls = {path for path in column_list(catalog.instances, "path") if is_url(path)}
    if not urls:
        return ()
    from dicomml.web.source import sources_serving

    return sources_serving(urls)


def _first_per_series(instances: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    present = [c for c in columns if c in instances.columns]
    return instances.groupby("series_key", sort=False)[present].first()


def series_table(catalog, metadata: Iterable[str] = DEFAULT_METADATA) -> pd.DataFrame:
    """One row per series (catalog order): ``series_key``, the identifier columns, the
    ``metadata`` columns (from ``Catalog.series`` where present, else the series' first
    instance) and ``n_slices`` (slices per volume from the catalog; no decoding)."""
    series = catalog.series.reset_index(drop=True)
    wanted = [*ID_COLUMNS, *metadata]
    missing = [c for c in wanted if c not in series.columns]
    table = series.copy()
    if missing:
        extra = _first_per_series(catalog.instances, missing)
        table = table.join(extra, on="series_key")
    for column in wanted:
        if column not in table.columns:
            table[column] = None
    table["n_slices"] = _slice_counts(table)
    return table[["series_key", *wanted, "n_slices"]]


def _slice_counts(series: pd.DataFrame) -> pd.Series:
    if "n_slices" in series.columns:  # slices per volume (4D series: not the frame count)
        return pd.to_numeric(series["n_slices"], errors="coerce").fillna(0).astype(np.int64)
    if "n_frames" in series.columns:
        counts = pd.to_numeric(series["n_frames"], errors="coerce")
        if "n_instances" in series.columns:
            counts = counts.fillna(pd.to_numeric(series["n_instances"], errors="coerce"))
        return counts.fillna(0).astype(np.int64)
    if "n_instances" in series.columns:
        return pd.to_numeric(series["n_instances"], errors="coerce").fillna(0).astype(np.int64)
    raise CatalogError("catalog series table has neither n_frames nor n_instances")


def plain_tree(value):
    """:func:`plain` applied through nested dicts and lists (provenance records)."""
    if isinstance(value, Mapping):
        return {str(k): plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_tree(v) for v in value]
    return plain(value)


def row_records(table: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    """``table``'s ``columns`` as one JSON-safe dict per row."""
    columns = list(columns)
    return [{c: plain(v) for c, v in zip(columns, values)}
            for values in table[columns].itertuples(index=False, name=None)]


def files_by_series(catalog) -> dict[str, list[str]]:
    """``{series_key: [path, ...]}`` for every series, in one pass over ``instances``; a
    Series Instance UID (the key of a merged acquisition, :func:`merge_acquisitions`) maps to
    all its files."""
    instances = catalog.instances
    groups = instances.groupby("series_key", sort=False)["path"]
    out = {str(key): [os.fspath(p) for p in paths] for key, paths in groups}
    if "SeriesInstanceUID" in instances:
        for uid, paths in instances.groupby("SeriesInstanceUID", sort=False)["path"]:
            out.setdefault(str(uid), [os.fspath(p) for p in paths])
    return out


#: ``volumes=`` of the datasets: one sample per acquisition (volumes as channels), or one
#: sample per volume
VOLUME_MODES = ("channels", "samples")


def merge_acquisitions(table: pd.DataFrame, catalog) -> pd.DataFrame:
    """``table`` (from :func:`series_table`) with the sub-series of one Series Instance UID
    that stack into 4D (split only by echo, temporal position or acquisition:
    :func:`dicomml.catalog.split.stackable`) as one row keyed by the UID, and an
    ``n_volumes`` column (volumes per row, from the catalog; summed over merged rows)."""
    from dicomml.catalog.split import stackable

    series = catalog.series.set_index("series_key")
    extra = series.reindex(table["series_key"])
    table = table.assign(
        n_volumes=pd.to_numeric(extra.get("n_volumes"), errors="coerce").fillna(1)
        .astype(np.int64).to_numpy() if "n_volumes" in extra else 1,
        _reason=extra["split_reason"].to_numpy() if "split_reason" in extra else "")
    uids = table["SeriesInstanceUID"].astype(object)
    merge = [stackable(r) for r in table["_reason"].tolist()]
    merge = np.asarray(merge, dtype=bool) & uids.notna().to_numpy()
    if not merge.any():
        return table.drop(columns="_reason").reset_index(drop=True)
    rows = []
    for position, row in enumerate(table.to_dict("records")):
        if not merge[position]:
            rows.append(row)
            continue
        uid = str(row["SeriesInstanceUID"])
        first = next((r for r in rows if r.get("_merged") == uid), None)
        if first is None:
            rows.append(dict(row, series_key=uid, _merged=uid))
        else:
            first["n_volumes"] += row["n_volumes"]
    out = pd.DataFrame(rows).drop(columns=["_reason", "_merged"], errors="ignore")
    return out.reset_index(drop=True)


def expand_volumes(table: pd.DataFrame) -> pd.DataFrame:
    """One row per volume: ``table``'s rows repeated ``n_volumes`` times with a ``volume``
    column (0-based; None for 3D rows)."""
    rows = []
    for row in table.to_dict("records"):
        count = int(row.get("n_volumes") or 1)
        if count <= 1:
            rows.append(dict(row, volume=None))
        else:
            rows.extend(dict(row, volume=v) for v in range(count))
    return pd.DataFrame(rows, columns=[*table.columns, "volume"])



def pack_catalog(catalog):
    """A smaller picklable copy for DataLoader workers: repeated text columns of ``instances``
    (UIDs, series keys, syntaxes) become categoricals and ``errors`` is dropped.
    :func:`unpack_catalog` restores the original column types."""
    from dicomml.catalog import Catalog

    packed = catalog.instances.copy()
    for name in packed.columns:
        column = packed[name]
        if column.dtype == object and _repeated_text(column):
            packed[name] = column.astype("category")
    return Catalog(packed, catalog.series, catalog.errors.iloc[0:0], catalog.root)


def unpack_catalog(catalog):
    """Undo :func:`pack_catalog` (in place on the catalog's ``instances``)."""
    instances = catalog.instances
    for name in instances.columns:
        column = instances[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            restored = column.astype(object)
            instances[name] = restored.where(column.notna(), None)
    return catalog


def _repeated_text(column: pd.Series) -> bool:
    values = column.dropna()
    if values.empty or not all(isinstance(v, str) for v in values):
        return False
    return values.nunique() <= len(column) // 2
