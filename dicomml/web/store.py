"""The local instance store: DICOM files retrieved over DICOMweb, content-addressed, written
atomically, shared by threads, DataLoader workers and processes.

Layout under the store folder (never a user's data folder):

- ``objects/ab/<sha256 of the bytes>.dcm``: each retrieved instance once, named by its content;
- ``index/cd/<sha256 of the instance URL>.json``: ``{"url", "digest", "size",
  "transfer_syntax", "pixel_data_offset", "pixel_data_length"}`` (the facts the decoders'
  located read needs, from the catalog's header parser run on the stored file);
- ``locks/<sha256 of the URL>.lock``: an ``flock`` held while one process fetches that URL,
  so that two workers asking for the same instance fetch it once.

Every file is written to a temporary name in its folder and renamed into place
(``os.replace``): a reader sees a whole file or none, and a fetch that fails or is killed
leaves no entry. The URL is the credential-free one (:class:`~dicomml.web.DicomWebSource`
strips user and password); nothing else about the request is stored.

Example
-------
>>> import tempfile
>>> from pydicom.data import get_testdata_file
>>> store = InstanceStore(tempfile.mkdtemp())
>>> data = open(get_testdata_file("CT_small.dcm"), "rb").read()
>>> entry = store.put("http://h/dicom-web/studies/1/series/2/instances/3", data)
>>> entry["pixel_data_length"], store.get("http://h/dicom-web/studies/1/series/2/instances/3") == entry
(32768, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile

from dicomml.errors import DicommlError, DicomWebResponseError

#: the last 8 bytes of encapsulated Pixel Data: the sequence delimitation item (PS3.5 A.4)
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _digest(data) -> str:
    return hashlib.sha256(data).hexdigest()


class InstanceStore:
    """The store in folder ``root`` (created on first write)."""

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))

    def _index_path(self, url: str) -> str:
        key = _digest(url.encode())
        return os.path.join(self.root, "index", key[:2], key + ".json")

    def object_path(self, digest: str) -> str:
        """Where the instance whose bytes hash to ``digest`` lies."""
        return os.path.join(self.root, "objects", digest[:2], digest + ".dcm")

    def get(self, url: str) -> dict | None:
        """The index entry of ``url`` (with ``path``: the local file), or None when the
        instance is not stored (or its object file went missing)."""
        try:
            with open(self._index_path(url), encoding="utf-8") as f:
                entry = json.load(f)
        except (OSError, ValueError):
            return None
        entry["path"] = self.object_path(entry["digest"])
        return entry if os.path.exists(entry["path"]) else None

    @contextlib.contextmanager
    def lock(self, url: str):
        """An exclusive lock on ``url`` across threads and processes (``fcntl.flock``; on
        systems without it, none: then two processes may fetch the same instance twice, and
        the atomic writes still keep the store whole)."""
        folder = os.path.join(self.root, "locks")
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, _digest(url.encode()) + ".lock"), "a+b")
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()

    def put(self, url: str, data, sop_instance_uid: str | None = None) -> dict:
        """Check ``data`` (the bytes of one DICOM file retrieved from ``url``) and store it;
        its index entry. A :class:`~dicomml.errors.DicomWebResponseError` (nothing stored)
        when the header parser cannot read it, its pixel data are cut short, or its SOP
        Instance UID is not ``sop_instance_uid``."""
        digest = _digest(data)
        target = self.object_path(digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temp = _write_temp(os.path.dirname(target), data)
        try:
            facts = _check(temp, len(data), url, sop_instance_uid)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        entry = {"url": url, "digest": digest, "size": len(data), **facts}
        index = self._index_path(url)
        os.makedirs(os.path.dirname(index), exist_ok=True)
        os.replace(_write_temp(os.path.dirname(index), json.dumps(entry).encode()), index)
        return {**entry, "path": target}


def _write_temp(folder: str, data) -> str:
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _check(path: str, size: int, url: str, sop_instance_uid: str | None) -> dict:
    """The located-read facts of a retrieved file, after checking it is whole."""
    from dicomml.catalog.header import parse_file, row_as_dict

    try:
        row = row_as_dict(parse_file(path, size))
    except DicommlError as exc:
        raise DicomWebResponseError(f"the retrieved instance is unreadable: {exc.message}",
                                    path=url, tag=exc.tag) from None
    if sop_instance_uid and row["SOPInstanceUID"] != sop_instance_uid:
        raise DicomWebResponseError(f"the server sent instance {row['SOPInstanceUID']!r}, "
                                    f"not {sop_instance_uid!r}", path=url, tag="SOPInstanceUID")
    offset, length = row["pixel_data_offset"], row["pixel_data_length"]
    if length == -1 and offset >= 0:
        with open(path, "rb") as f:
            f.seek(max(offset, size - len(SEQUENCE_END)))
            if f.read() != SEQUENCE_END:
                raise DicomWebResponseError("the retrieved instance's encapsulated Pixel Data "
                                            "has no end (a cut-short body)", path=url,
                                            tag="PixelData")
    return {"transfer_syntax": row["TransferSyntaxUID"], "pixel_data_offset": offset,
            "pixel_data_length": length}
