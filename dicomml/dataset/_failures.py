"""Series that failed to load under ``on_error="skip"``: the marker a dataset returns for them
and a record of the failures that every process (DataLoader workers included) can read.

* :class:`FailedSample` is what ``ds[i]`` returns instead of a sample dict when series ``i``
  cannot be loaded; :func:`dicomml.collate` drops it from the batch and lists its
  :attr:`~FailedSample.record` under ``batch["failed"]``. It is not a dict: ``marker["image"]``
  raises a ``KeyError`` that names the failure, so a failed sample is never used as data.
* :class:`FailureLog` keeps one small JSON file per failed series in a temporary folder that
  the dataset creates in the main process (before any worker starts) and removes when the
  dataset is garbage-collected. Workers write there; the main process reads it back
  (``ds.failures()``), so failures in worker processes are visible after the epoch.

A record is a dict: ``series_index`` (int), ``series_key`` (str), ``file`` (the file to blame,
or the series key where no single file is; None when the error names nothing), ``error_type``
(the exception's class name), ``message`` (str), ``tag`` (the DICOM keyword or None).

Example
-------
>>> from dicomml.errors import TruncatedFileError
>>> log = FailureLog()
>>> err = TruncatedFileError("file ends inside Pixel Data", path="/data/a.dcm", tag="PixelData")
>>> rec = log.record(failure_record(3, "1.2.3", err))
>>> [(r["series_index"], r["file"], r["error_type"]) for r in log.read()]
[(3, '/data/a.dcm', 'TruncatedFileError')]
>>> FailedSample(rec)
FailedSample(series 3 '1.2.3': TruncatedFileError: file ends inside Pixel Data)
>>> log.close()
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref

from dicomml.errors import DicommlError

_log = logging.getLogger("dicomml.dataset")

#: the keys of a failure record, in order
RECORD_KEYS = ("series_index", "series_key", "file", "error_type", "message", "tag")


def failure_record(series_index: int, series_key: str, exc: BaseException) -> dict:
    """The record of series ``series_index`` failing with ``exc`` (see the module doc)."""
    if isinstance(exc, DicommlError):
        file, message, tag = exc.path, exc.message, exc.tag
    elif isinstance(exc, OSError):
        file, message, tag = exc.filename, exc.strerror or str(exc), None
    else:
        file, message, tag = None, str(exc), None
    return {"series_index": int(series_index), "series_key": str(series_key),
            "file": None if file is None else os.fspath(file),
            "error_type": type(exc).__name__, "message": str(message), "tag": tag}


def describe(record: dict) -> str:
    """One line: ``"ErrorType: file: message [tag T]"`` (the text of ``ds.failed``)."""
    text = record["message"]
    if record.get("file"):
        text = f"{record['file']}: {text}"
    if record.get("tag"):
        text = f"{text} [tag {record['tag']}]"
    return f"{record['error_type']}: {text}"


class FailedSample:
    """The marker a dataset with ``on_error="skip"`` returns for a sample it could not load.

    ``record``: the failure (see the module doc); samples of a ``DicomSliceDataset`` add
    ``slice_index``. :func:`dicomml.collate` removes markers from the batch and lists their
    records in ``batch["failed"]``. Reading a key raises ``KeyError`` naming the failure.
    """

    __slots__ = ("record",)

    def __init__(self, record: dict):
        self.record = dict(record)

    def __getitem__(self, key):
        raise KeyError(f"{key!r}: no data, this sample failed to load ({describe(self.record)}); "
                       "dicomml.collate drops such samples and lists them in batch['failed']")

    def __contains__(self, key) -> bool:
        return False

    def __reduce__(self):  # crosses DataLoader worker processes
        return (FailedSample, (self.record,))

    def __repr__(self) -> str:
        r = self.record
        return (f"FailedSample(series {r['series_index']} {r['series_key']!r}: "
                f"{r['error_type']}: {r['message']})")


class FailureLog:
    """Failure records shared by the processes of one dataset (see the module doc).

    Created in the main process: makes a ``dicomml_failures_*`` folder in the system temp
    folder, removed when this object is garbage-collected in that process (or at exit).
    Copies in worker processes (pickled or forked) write and read the same folder and never
    remove it.
    """

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="dicomml_failures_")
        self._finalizer = weakref.finalize(self, _remove, self.folder, os.getpid())

    def __getstate__(self) -> dict:
        return {"folder": self.folder}

    def __setstate__(self, state: dict) -> None:
        self.folder = state["folder"]
        self._finalizer = None

    def _path(self, series_index: int) -> str:
        return os.path.join(self.folder, f"{int(series_index):09d}.json")

    def record(self, record: dict) -> dict:
        """Store ``record`` (one file per series; written atomically) and return it. A folder
        that is gone (the dataset was closed) or cannot be written is ignored."""
        temp = os.path.join(self.folder, f".{record['series_index']}.{os.getpid()}.tmp")
        try:
            with open(temp, "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(temp, self._path(record["series_index"]))
        except OSError:
            pass
        return record

    def get(self, series_index: int) -> dict | None:
        """The record of series ``series_index``, or None."""
        try:
            with open(self._path(series_index), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def read(self) -> list[dict]:
        """Every record, by series index."""
        try:
            names = sorted(n for n in os.listdir(self.folder) if n.endswith(".json"))
        except OSError:
            return []
        records = (self.get(int(name[:-5])) for name in names)
        return [r for r in records if r is not None]

    def close(self) -> None:
        """Remove the folder now (only the creating process does)."""
        if self._finalizer is not None:
            self._finalizer()


class Failures:
    """What one dataset has skipped: this process's records by index and, with
    ``on_error="skip"``, the :class:`FailureLog` its DataLoader workers share (None with
    ``"raise"``: nothing is skipped, no folder is made). A copy sent to a worker starts with
    no records of its own and writes to the same log."""

    def __init__(self, on_error: str):
        self.local: dict[int, dict] = {}
        self.log = FailureLog() if on_error == "skip" else None

    def __getstate__(self) -> dict:
        return {"local": {}, "log": self.log}

    def known(self, index: int) -> dict | None:
        """The record of sample ``index`` if it failed before, in any process."""
        found = self.local.get(index)
        if found is None and self.log is not None:
            found = self.log.get(index)
        return found

    def add(self, index: int, key: str, exc: BaseException, what: str) -> FailedSample:
        """Record and log (``what``: "series", "image") that sample ``index`` (``key``)
        failed with ``exc``; its marker sample."""
        record = failure_record(index, key, exc)
        self.local[index] = record
        if self.log is not None:
            self.log.record(record)
        _log.warning("skipping %s %s (index %d): %s", what, key, index, describe(record))
        return FailedSample(record)

    def records(self) -> list[dict]:
        """Every record, from the shared log and this process, by index."""
        found = {r["series_index"]: r for r in self.log.read()} if self.log else {}
        found.update(self.local)
        return [found[i] for i in sorted(found)]


def _remove(folder: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked worker's copy never removes the main's folder
        shutil.rmtree(folder, ignore_errors=True)
