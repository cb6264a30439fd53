"""DICOMweb sources: scan a PACS (QIDO-RS, WADO-RS metadata) into a Catalog whose rows carry
instance URLs, and retrieve instances (WADO-RS) into a local content-addressed store that the
decoders then read as local files. Needs the extra ``web`` (``dicomweb-client``).

- :class:`DicomWebSource`: the server, its credentials, timeouts, retries, store folder;
- :func:`scan_dicomweb` (also ``dicomml.scan(url_or_source, query=...)``);
- :func:`fetch` / :func:`fetch_all`: instances into the store (:class:`InstanceStore`);
  ``load_series``, ``read_pixels``, ``DicomSeriesDataset`` and the cache call them through
  :func:`dicomml.decode.located.locations_from_columns`.

Example
-------
>>> import dicomml
>>> from dicomml.web import DicomWebSource
>>> src = DicomWebSource("http://127.0.0.1:8042/dicom-web", auth=("user", "pw"),
...                      store="/tmp/dicomweb-store")                     # doctest: +SKIP
>>> cat = dicomml.scan(src, query={"Modality": "CT"})                     # doctest: +SKIP
>>> vol = dicomml.load_series(cat, cat.series.series_key[0])              # doctest: +SKIP
"""

from __future__ import annotations

from .fetch import fetch, fetch_all, local_columns
from .scan import find_series, scan_dicomweb
from .source import DicomWebSource, is_url, source_for
from .store import InstanceStore

__all__ = ["DicomWebSource", "InstanceStore", "fetch", "fetch_all", "find_series", "is_url",
           "local_columns", "scan_dicomweb", "source_for"]
