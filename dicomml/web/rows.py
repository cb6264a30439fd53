"""DICOM JSON metadata (WADO-RS ``application/dicom+json``) -> catalog rows.

There is one header reader in dicomml, :func:`dicomml.catalog.header.parse_file`; a metadata
record becomes a row by going through it: the JSON is turned into a data set
(``pydicom.Dataset.from_json``, bulk data left on the server), written as a small Part 10
file in a scratch folder, and parsed there, so that every column (functional groups, private
Siemens mosaic counts, text clean-up...) means what it means for a file. What only the file
on the server knows is marked unknown: ``TransferSyntaxUID`` is None, ``pixel_data_offset``
-1 and ``pixel_data_length`` -1 (pixels present, located when the instance is retrieved), or
0 when the metadata has neither Pixel Data nor the Image Pixel module's Rows, Columns and Bits
Allocated (some servers leave encapsulated Pixel Data out of the metadata); ``file_size`` and ``mtime_ns`` are 0.

Example
-------
>>> meta = {"0020000E": {"vr": "UI", "Value": ["1.2.3"]}, "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
...         "00280010": {"vr": "US", "Value": [64]},
...         "7FE00010": {"vr": "OW", "BulkDataURI": "http://h/bulk"}}
>>> with RowReader() as reader:
...     row = reader.row(meta)
>>> from dicomml.catalog.header import row_as_dict
>>> values = row_as_dict(row)
>>> values["Rows"], values["pixel_data_length"], values["TransferSyntaxUID"]
(64, -1, None)
"""

from __future__ import annotations

import os
import shutil
import tempfile

from dicomml.catalog import tags as T

#: Pixel Data and its float / double float variants (PS3.6): present means "has pixels"
PIXEL_TAGS = ("7FE00010", "7FE00008", "7FE00009")
#: Rows, Columns, Bits Allocated: the Image Pixel module, whose Pixel Data some servers leave out
#: of the metadata (Orthanc 1.10 does for encapsulated transfer syntaxes)
IMAGE_PIXEL_TAGS = ("00280010", "00280011", "00280100")
_I_TS, _I_OFFSET, _I_LENGTH = (T.INDEX[n] for n in
                               ("TransferSyntaxUID", "pixel_data_offset", "pixel_data_length"))


def wanted_bulk(tag) -> bool:
    """True for an element the catalog collects (a collected tag, or a Siemens private
    (0019,xx0A) mosaic count) that a server may send as bulk data (e.g. an implicit VR file's
    private elements, which it only knows as ``UN``); other bulk data stay on the server."""
    number = int(tag, 16) if isinstance(tag, str) else int(tag)
    return number in T.WANTED or (number >> 16 == 0x0019 and number & 0xFF == 0x0A)


class RowReader:
    """Turns metadata records into catalog rows through a scratch file (a context manager:
    the scratch folder is removed on exit). ``bulk(uri) -> bytes`` retrieves the bulk data
    of the elements :func:`wanted_bulk` keeps (None: they are left out too)."""

    def __init__(self, bulk=None):
        self.bulk = bulk

    def _bulk(self, tag, vr, uri) -> bytes:
        return self.bulk(uri) if self.bulk is not None and wanted_bulk(tag) else b""

    def __enter__(self) -> RowReader:
        self.folder = tempfile.mkdtemp(prefix="dicomml-web-")
        self.path = os.path.join(self.folder, "metadata.dcm")
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def row(self, metadata: dict) -> list:
        """The catalog row (``tags.COLUMNS`` order) of one instance's DICOM JSON; the
        parser's typed errors (:mod:`dicomml.errors`) for what it cannot use."""
        from pydicom import Dataset
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        has_pixels = any(tag in metadata for tag in PIXEL_TAGS) or \
            all(tag in metadata for tag in IMAGE_PIXEL_TAGS)
        kept = {k: v for k, v in metadata.items()
                if k not in PIXEL_TAGS and not k.upper().startswith("0002")}
        ds = Dataset.from_json(kept, bulk_data_uri_handler=self._bulk)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if "SOPClassUID" in ds:
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.preamble = b"\0" * 128
        ds.save_as(self.path, enforce_file_format=False)
        from dicomml.catalog.header import parse_file

        row = parse_file(self.path)
        row[_I_TS] = None
        row[_I_OFFSET], row[_I_LENGTH] = -1, (-1 if has_pixels else 0)
        return row
