"""Retrieve instances (WADO-RS) into the local store, so that the decoders read local files.

:func:`local_columns` is what :func:`dicomml.decode.located.locations_from_columns` calls when
catalog rows carry instance URLs: each URL becomes the stored file's path, and the file facts
(transfer syntax, Pixel Data offset and length, size) those of the stored file, so that the
same located reads and decoders as for a scanned folder follow. Instances not yet stored are
retrieved first, ``concurrency`` requests at a time, each under the store's lock for its URL
(a second worker waiting for the same instance finds it stored), with the source's retry
policy. A stored instance is never asked for again: a second epoch reads nothing from the
network.

Transfer syntax: the source's (``"*"``: as the server holds it, no transcoding); a server
that cannot send that one (400, 406, 415, 500 or 501, or a syntax the client does not know)
is asked for Explicit VR Little Endian, which every server must send.

Example
-------
>>> from dicomml.web import DicomWebSource
>>> src = DicomWebSource("http://127.0.0.1:8042/dicom-web", store="/tmp/store")  # doctest: +SKIP
>>> entries = fetch_all([src.instance_url(study, series, sop)])                 # doctest: +SKIP
>>> entries[0]["path"]  # a local DICOM file                                     # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

from dicomml.errors import DicomWebResponseError

from .source import DicomWebSource, is_url, source_for
from .store import InstanceStore

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
#: answers meaning "not in that transfer syntax" (then Explicit VR Little Endian is asked for;
#: Orthanc 1.10 answers 500 when it cannot transcode)
NOT_ACCEPTABLE = frozenset({400, 406, 415, 500, 501})


def fetch(url: str, source: DicomWebSource | None = None) -> dict:
    """The store entry (``path``: local file, ``transfer_syntax``, ``pixel_data_offset``,
    ``pixel_data_length``, ``size``) of the instance at ``url``, retrieved if not stored."""
    source = source or source_for(url)
    store = InstanceStore(source.store)
    entry = store.get(url)
    if entry is not None:
        return entry
    with store.lock(url):
        entry = store.get(url)  # another worker or process may have fetched it meanwhile
        if entry is not None:
            return entry
        study, series, sop = source.uids_of(url)
        return source.call("WADO-RS instance", url,
                           lambda client: store.put(url, _retrieve(client, source, study,
                                                                   series, sop), sop))


def _retrieve(client, source: DicomWebSource, study: str, series: str, sop: str) -> bytes:
    """The bytes of one instance as a Part 10 file (the server's transfer syntax when it can
    send it, else Explicit VR Little Endian); malformed answers as DicomWebResponseError."""
    import requests

    wanted = [source.transfer_syntax] + ([EXPLICIT_VR_LE]
                                         if source.transfer_syntax != EXPLICIT_VR_LE else [])
    for i, syntax in enumerate(wanted):
        try:
            dataset = client.retrieve_instance(
                study, series, sop, media_types=(("application/dicom", syntax),))
            break
        except requests.HTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            if status not in NOT_ACCEPTABLE or i == len(wanted) - 1:
                raise
        except (ValueError, EOFError, KeyError, IndexError) as exc:
            if i == len(wanted) - 1 or "not supported" not in str(exc):
                raise DicomWebResponseError(f"unusable WADO-RS answer: {exc}") from exc
    buffer = io.BytesIO()
    try:
        dataset.save_as(buffer, enforce_file_format=False)
    except Exception as exc:  # noqa: BLE001 - a body pydicom read but cannot write back
        raise DicomWebResponseError(f"unusable WADO-RS answer: {exc}") from exc
    return buffer.getvalue()


def fetch_all(urls: list[str]) -> list[dict]:
    """:func:`fetch` of each URL (in order), the missing ones retrieved concurrently: at most
    the source's ``concurrency`` requests in flight."""
    entries: list = [None] * len(urls)
    missing = []
    for i, url in enumerate(urls):
        source = source_for(url)
        entries[i] = InstanceStore(source.store).get(url)
        if entries[i] is None:
            missing.append(i)
    if not missing:
        return entries
    width = max(source_for(urls[i]).concurrency for i in missing)
    if width == 1 or len(missing) == 1:
        for i in missing:
            entries[i] = fetch(urls[i])
        return entries
    with ThreadPoolExecutor(min(width, len(missing))) as pool:
        for i, entry in zip(missing, pool.map(fetch, [urls[i] for i in missing])):
            entries[i] = entry
    return entries


def local_columns(files: list[list]) -> list[list]:
    """The located-read file columns (``path``, ``TransferSyntaxUID``, ``pixel_data_offset``,
    ``pixel_data_length``, ``file_size``, ``mtime_ns``: one list each) with every instance
    URL replaced by its stored file and that file's facts; other rows as they were."""
    paths = files[0]
    where = [i for i, path in enumerate(paths) if is_url(path)]
    if not where:
        return files
    out = [list(column) for column in files]
    for i, entry in zip(where, fetch_all([paths[i] for i in where])):
        out[0][i], out[1][i] = entry["path"], entry["transfer_syntax"]
        out[2][i], out[3][i] = entry["pixel_data_offset"], entry["pixel_data_length"]
        out[4][i], out[5][i] = entry["size"], os.stat(entry["path"]).st_mtime_ns
    return out

