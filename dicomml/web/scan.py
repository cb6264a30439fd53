"""``scan_dicomweb``: a Catalog of a DICOMweb server, from QIDO-RS and WADO-RS metadata.

Series are found with QIDO-RS (``/series``, the query's filters sent to the server, paged
with ``limit`` / ``offset``), then each series' instances come from one WADO-RS metadata
request (``application/dicom+json``; bulk data such as Pixel Data stay on the server) and
become catalog rows through the catalog's own header parser (:mod:`dicomml.web.rows`). Rows
carry the instance URL as ``path``. With ``catalog=path`` the scan is incremental: a series
whose instance count (QIDO ``NumberOfSeriesRelatedInstances``) did not change keeps its rows;
only new or changed series are asked for their metadata.

Example
-------
>>> import dicomml
>>> cat = dicomml.scan("http://127.0.0.1:8042/dicom-web", query={"Modality": "CT"},
...                    catalog="/tmp/pacs.parquet")                    # doctest: +SKIP
"""

from __future__ import annotations

import os

import pandas as pd

from dicomml.errors import DicommlError

from .rows import RowReader
from .source import DicomWebSource

STUDY, SERIES, COUNT = "0020000D", "0020000E", "00201209"


def _value(record: dict, tag: str):
    values = record.get(tag, {}).get("Value") or [None]
    return values[0]


def find_series(source: DicomWebSource, query: dict | None = None) -> list[tuple]:
    """``[(study UID, series UID, instance count or None)]`` of the series matching
    ``query`` (QIDO-RS attribute filters, e.g. ``{"Modality": "CT", "StudyDate":
    "20240101-20241231"}``), all pages."""
    found, offset = [], 0
    url = source.url + "/series"
    while True:
        page = source.call("QIDO-RS series search", url, lambda c, o=offset: c.search_for_series(
            search_filters=dict(query or {}), fields=["NumberOfSeriesRelatedInstances"],
            limit=source.page_size, offset=o))
        found += [(_value(r, STUDY), _value(r, SERIES), _value(r, COUNT)) for r in page]
        if len(page) < source.page_size or not page:
            return found
        offset += len(page)


def series_metadata(source: DicomWebSource, study: str, series: str) -> list[dict]:
    """The DICOM JSON of every instance of one series (one WADO-RS metadata request)."""
    url = f"{source.url}/studies/{study}/series/{series}/metadata"
    return source.call("WADO-RS series metadata", url,
                       lambda c: c.retrieve_series_metadata(study, series))


def bulk_data(source: DicomWebSource, uri: str) -> bytes:
    """The bytes of one small bulk data element (WADO-RS). The URI's path from ``/studies/``
    on is put under ``source.url`` (servers build the host part from the request's Host
    header, which need not name the port)."""
    where = uri.find("/studies/")
    url = source.url + uri[where:] if where >= 0 else uri
    parts = source.call("WADO-RS bulk data", url, lambda c: c.retrieve_bulkdata(
        url, media_types=("application/octet-stream",)))
    return bytes(parts[0]) if parts else b""


def scan_dicomweb(source, *, query: dict | None = None, catalog=None,
                  progress: bool | None = None):
    """A :class:`~dicomml.catalog.Catalog` of the server ``source`` (a
    :class:`DicomWebSource` or its URL); ``query``: QIDO-RS filters; ``catalog``: a Parquet
    catalog path updated incrementally (see the module docstring); ``progress``: a tqdm bar
    over the series whose metadata are fetched (None: the source's setting)."""
    from dicomml.catalog import Catalog

    if not isinstance(source, DicomWebSource):
        source = DicomWebSource(source)
    show = source.progress if progress is None else progress
    cat_path = None if catalog is None else os.path.abspath(os.fspath(catalog))
    previous = Catalog.load(cat_path) if cat_path and os.path.exists(cat_path) else None
    listed = find_series(source, query)
    kept, todo = _reuse(previous, listed, source.url)
    if previous is not None and not todo and len(kept) == len(previous.instances) and \
            previous.root == source.url:
        return previous  # nothing new: no metadata request, no rewrite
    ok, bad = _read_series(source, todo, show)
    old_errors = None if kept is None else _errors_of(previous.errors, todo)
    result = _catalog(kept, ok, bad, source.url, old_errors)
    if cat_path:
        result.save(cat_path)
    return result


def _reuse(previous, listed: list[tuple], url: str):
    """(rows of ``previous`` kept, series to ask for): a series is kept when the previous
    catalog has exactly as many of its instances as the server now lists."""
    if previous is None or previous.root != url:
        return None, listed
    inst = previous.instances
    counts = inst.groupby("SeriesInstanceUID").size().to_dict()
    same = {s for _, s, n in listed if n is not None and counts.get(s) == int(n)}
    todo = [item for item in listed if item[1] not in same]
    return inst[inst["SeriesInstanceUID"].isin(same)], todo


def _read_series(source: DicomWebSource, todo: list[tuple], show: bool):
    """``(ok records, error records)`` of the series in ``todo``, as ``scan`` records files."""
    from tqdm.auto import tqdm

    ok, bad = [], []
    with RowReader(bulk=lambda uri: bulk_data(source, uri)) as reader:
        for study, series, _ in tqdm(todo, desc="DICOMweb metadata", unit="series",
                                     disable=not show):
            for record in series_metadata(source, study, series):
                url = source.instance_url(study, series, _value(record, "00080018") or "")
                try:
                    ok.append((url, 0, 0, reader.row(record)))
                except DicommlError as exc:
                    bad.append((url, 0, 0, (type(exc).__name__, exc.message, exc.tag)))
                except Exception as exc:  # noqa: BLE001 - one odd record never ends a scan
                    bad.append((url, 0, 0, (type(exc).__name__, f"unusable metadata: {exc}",
                                            None)))
    return ok, bad


def _errors_of(errors, todo: list[tuple]):
    """The error rows of a previous catalog outside the series asked for again."""
    again = tuple(f"/series/{series}/" for _, series, _ in todo)
    return errors[[not any(a in str(p) for a in again) for p in errors["path"]]]


def _catalog(kept, ok: list, bad: list, root: str, old_errors=None):
    from dicomml.catalog import Catalog
    from dicomml.catalog.split import assign_series, summarize_series
    from dicomml.catalog.table import errors_frame, instances_frame

    fresh = instances_frame(sorted(ok, key=lambda item: item[0]))
    if kept is not None and len(kept):
        kept = kept.drop(columns=["series_key", "split_reason"], errors="ignore")
        fresh = pd.concat([kept, fresh[kept.columns]] if len(fresh) else [kept],
                          ignore_index=True).sort_values("path").reset_index(drop=True)
    errors = errors_frame(sorted(bad, key=lambda item: item[0]))
    if old_errors is not None and len(old_errors):
        errors = pd.concat([old_errors, errors], ignore_index=True) if len(errors) else \
            old_errors.reset_index(drop=True)
    instances = assign_series(fresh)
    return Catalog(instances, summarize_series(instances), errors, root)
