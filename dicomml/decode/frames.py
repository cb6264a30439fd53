"""Read a DICOM file's header and split its pixel data into per-frame byte strings, with
every size bounded by what the file actually holds.

Native data: ``NumberOfFrames * Rows * Columns * SamplesPerPixel * bytes`` must fit in the
stored Pixel Data (else :class:`~dicomml.errors.TruncatedFileError`). Deflated data sets are
inflated incrementally, no further than the header justifies (:mod:`dicomml.decode.deflated`).
A header that ends inside an element is a :class:`~dicomml.errors.TruncatedFileError` naming
the element, as the header parser (the catalog's, :mod:`dicomml.decode.fastheader`) finds
it (pydicom alone reads such files leniently and would report "no PixelData"). Encapsulated
data: frames come from pydicom's ``generate_frames`` (basic / extended offset tables, or none,
fragments spanning frames) and their count must match ``NumberOfFrames``.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> enc = load_encoded(get_testdata_file("MR_small_RLE.dcm"))
>>> enc.info.rows, len(enc.frames)
(64, 1)
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError as PydicomInvalidDicomError

from dicomml.decode import syntaxes as ts
from dicomml.decode.deflated import inflate_dataset
from dicomml.decode.fastheader import TruncatedData, describe_tag, parse_header, tag_keyword
from dicomml.decode.info import FrameInfo, frame_info
from dicomml.errors import (
    DecodeError,
    DicommlError,
    InvalidDicomError,
    InvalidTagError,
    MissingTagError,
    NoPixelDataError,
    NotDicomError,
    TruncatedFileError,
)

#: Largest inflated size of a Deflated Explicit VR Little Endian data set (bytes).
MAX_INFLATED_BYTES = 1 << 30


@dataclasses.dataclass
class EncodedPixels:
    """A file's pixel description, per-frame encoded bytes, and its pydicom data set.

    ``frames[i]`` is frame i's encoded codestream (encapsulated) or its stored bytes (native;
    one byte per pixel for BitsAllocated 1). ``dataset`` is kept for palette LUTs.
    """

    info: FrameInfo
    frames: list
    dataset: object


def _read_deflated(path: str, max_bytes: int):
    """pydicom data set of a deflated file, inflated with :mod:`dicomml.decode.deflated`'s
    bounds (up to the end of Pixel Data)."""
    with open(path, "rb") as fp:
        data = fp.read()
    inflated = inflate_dataset(path, data, max_bytes)
    if inflated is None:  # no preamble or a meta group the walker cannot read
        raise InvalidDicomError("deflated file without a readable Part 10 meta header",
                                path=path)
    meta = pydicom.filereader.read_file_meta_info(path)
    ds = pydicom.filereader.read_dataset(io.BytesIO(inflated[0]), is_implicit_VR=False,
                                         is_little_endian=True)
    ds.file_meta = meta
    return ds


def _maybe_deflated(path: str) -> bool:
    """True when the file meta (first 4 KiB) names the deflated transfer syntax."""
    with open(path, "rb") as fp:
        head = fp.read(4096)
    if ts.DEFLATED_EXPLICIT_VR_LE.encode() not in head:
        return False
    meta = pydicom.filereader.read_file_meta_info(path)
    return str(meta.get("TransferSyntaxUID", "")) == ts.DEFLATED_EXPLICIT_VR_LE


def read_dataset(path, *, max_inflated_bytes: int = MAX_INFLATED_BYTES):
    """``(dataset, transfer syntax UID)`` of a file; typed errors naming the file."""
    path = os.fspath(path)
    try:
        if _maybe_deflated(path):  # inflate ourselves, with a cap (pydicom's has none)
            return _read_deflated(path, max_inflated_bytes), ts.DEFLATED_EXPLICIT_VR_LE
        ds = pydicom.dcmread(path)
        meta = getattr(ds, "file_meta", None)
        syntax = "" if meta is None else str(meta.get("TransferSyntaxUID", "") or "")
    except (FileNotFoundError, IsADirectoryError, PermissionError, DicommlError):
        raise  # ours (the bounded inflation's) name the file already
    except PydicomInvalidDicomError as exc:
        found = _read_as_catalog(path)
        if found is not None:
            return found
        raise _without_pixels(path) or NotDicomError(f"not a DICOM file: {exc}",
                                                     path=path) from exc
    except EOFError as exc:
        raise TruncatedFileError(f"file ends inside its header: {exc}", path=path) from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken headers
        # an element running past the end of the file is the parser's TruncatedFileError
        # (what scan records for it), else pydicom's failure
        raise _truncation(path, None) or InvalidDicomError(
            f"header cannot be parsed: {type(exc).__name__}: {exc}", path=path) from exc
    if not syntax:
        raise MissingTagError("file meta has no TransferSyntaxUID", path=path,
                              tag="TransferSyntaxUID")
    return ds, syntax


def _read_as_catalog(path: str):
    """``(dataset, transfer syntax UID)`` of an image that pydicom reads only with
    ``force=True`` (no preamble, no ``DICM`` prefix, or a bare data set) but the catalog's
    parser reads: ``scan``, ``load_series``, ``read_pixels`` and ``read_many`` then all read
    it (what pydicom's ``dcmread(force=True)`` reads, the meta group found where the parser
    found it, the transfer syntax the parser found or guessed). None when the parser refuses
    the file, finds no Pixel Data, or it is deflated."""
    from dicomml.catalog.header import parse_file, row_as_dict

    try:
        row = row_as_dict(parse_file(path))
    except Exception:  # noqa: BLE001 - not DICOM to the parser either: the caller's error
        return None
    syntax, offset = row.get("TransferSyntaxUID"), row.get("pixel_data_offset")
    if syntax in ts.DEFLATED_DATA_SET or offset is None or offset < 0:
        return None
    with open(path, "rb") as fp:
        data = fp.read()
    if data[:4] == b"DICM":  # the meta group after a DICM prefix without the preamble
        data = bytes(128) + data
    elif data[:2] == b"\x02\x00":  # the meta group first
        data = bytes(128) + b"DICM" + data
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - pydicom cannot read it even so
        return None
    if not str(ds.file_meta.get("TransferSyntaxUID", "") or ""):
        implicit, little = getattr(ds, "original_encoding", (True, True))
        syntax = syntax or (ts.IMPLICIT_VR_LE if implicit else ts.EXPLICIT_VR_LE if little
                            else ts.EXPLICIT_VR_BE)
        ds.file_meta.TransferSyntaxUID = syntax
    return ds, syntax


def _truncation(path: str, truncated: TruncatedData | None) -> TruncatedFileError | None:
    """Why a data set pydicom read (leniently, to the end of the file) lacks Pixel Data:
    the cut that the header parser found (``truncated``, naming the top-level element; the
    file is walked here when the caller has not), or None when it finds none. The parser is
    the catalog's (:mod:`dicomml.catalog.header`), so ``scan`` and ``read_pixels`` agree.
    """
    if truncated is None:
        try:
            with open(path, "rb") as fp:
                parse_header(fp.read(), path=path)
            return None
        except TruncatedData as exc:
            truncated = exc
        except OSError:
            return None
    element = getattr(truncated, "element", None)
    return TruncatedFileError(f"file ends inside {describe_tag(element)}, which starts at "
                              f"byte {getattr(truncated, 'offset', 0)}", path=path,
                              tag=tag_keyword(element))


def _without_pixels(path: str) -> NoPixelDataError | None:
    """A :class:`NoPixelDataError` for a file that pydicom refuses (no file meta) but the
    catalog's parser reads as an object without Pixel Data (an old RT structure set...)."""
    import pandas as pd

    from dicomml.catalog.header import parse_file, row_as_dict
    from dicomml.catalog.table import object_columns

    try:
        row = pd.DataFrame([row_as_dict(parse_file(path))])
    except Exception:  # noqa: BLE001 - not DICOM after all: the caller's error stands
        return None
    if object_columns(row)[0][0]:
        return None
    return NoPixelDataError(path=path, sop_class_uid=row["SOPClassUID"][0])


def _sop_class(ds):
    """The data set's SOP Class UID; None when absent or unreadable (pydicom raises
    NotImplementedError for an unknown VR when it converts the element)."""
    try:
        return ds.get("SOPClassUID")
    except Exception:  # noqa: BLE001 - the error being raised names the file already
        return None


def _pixel_element(ds, path, truncated: TruncatedData | None = None):
    """The data set's Pixel Data element, or its Float / Double Float Pixel Data."""
    keyword = next((k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
                    if k in ds), None)
    if keyword is None:
        cut = _truncation(path, truncated)
        if cut is not None:
            raise cut
        raise NoPixelDataError(path=path, sop_class_uid=_sop_class(ds))
    try:
        return ds[keyword]
    except Exception as exc:  # noqa: BLE001
        raise InvalidDicomError(f"{keyword} cannot be read: {exc}", path=path,
                                tag=keyword) from exc


def native_frames(buf: bytes, info: FrameInfo, vr: str) -> list:
    n = info.number_of_frames
    if info.bits_allocated == 1:
        pixels = info.rows * info.columns * info.samples_per_pixel
        need = -(-n * pixels // 8)
        if len(buf) < need:
            raise TruncatedFileError(f"PixelData holds {len(buf)} bytes, {n} frame(s) of "
                                     f"{info.rows}x{info.columns} 1-bit need {need}",
                                     path=info.path, tag="PixelData")
        bits = np.unpackbits(np.frombuffer(buf, np.uint8, count=need), bitorder="little")
        return [bits[i * pixels:(i + 1) * pixels].tobytes() for i in range(n)]
    size = info.stored_frame_nbytes
    if len(buf) < n * size:
        raise TruncatedFileError(f"PixelData holds {len(buf)} bytes but {n} frame(s) of "
                                 f"{size} bytes ({n * size} bytes) are declared",
                                 path=info.path, tag="PixelData")
    if info.photometric_interpretation == "YBR_FULL_422" and info.columns % 2:
        raise DecodeError("YBR_FULL_422 needs an even number of columns", path=info.path)
    if info.transfer_syntax == ts.EXPLICIT_VR_BE and info.bits_allocated == 8 and vr == "OW":
        # 8-bit data in big endian OW words: swap each byte pair back
        buf = np.frombuffer(buf, ">u2", count=len(buf) // 2).astype("<u2").tobytes()
    view = memoryview(buf)
    return [view[i * size:(i + 1) * size] for i in range(n)]


def _encapsulated_frames(buf: bytes, info: FrameInfo, ds) -> list:
    """Per-frame codestreams; ``ds`` may hold the extended offset table (a dict is fine)."""
    from pydicom.encaps import generate_frames

    n = info.number_of_frames
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        frames = []
        for frame in generate_frames(buf, number_of_frames=n, extended_offsets=extended):
            frames.append(frame)
            if len(frames) > n:
                break
    except Exception as exc:  # noqa: BLE001 - pydicom raises ValueError/struct.error
        raise DecodeError(f"encapsulated pixel data is malformed: {exc}", path=info.path,
                          transfer_syntax=info.transfer_syntax) from exc
    if len(frames) != n:
        raise DecodeError(f"encapsulated pixel data holds {len(frames)} frame(s), "
                          f"NumberOfFrames declares {n}", path=info.path,
                          transfer_syntax=info.transfer_syntax)
    return frames


_ITEM_HEADER = struct.Struct("<HHI")


def _items(buf) -> list | None:
    """The items of encapsulated Pixel Data (offset table first) as memoryviews, or None
    when anything is unusual (pydicom's ``generate_frames`` then decides)."""
    view, pos, items = memoryview(buf), 0, []
    while pos + 8 <= len(view):
        group, element, length = _ITEM_HEADER.unpack_from(view, pos)
        if group != 0xFFFE or element not in (0xE000, 0xE0DD):
            return None
        if element == 0xE0DD:
            return items
        if length == 0xFFFFFFFF or pos + 8 + length > len(view):
            return None
        items.append(view[pos + 8:pos + 8 + length])
        pos += 8 + length
    return items if pos == len(view) else None


def simple_frames(buf, n: int) -> list | None:
    """Frames without pydicom for the common layouts: one frame (empty or single-entry
    offset table; its fragments joined), or one fragment per frame with no offset table or
    one pointing at each fragment. None for anything else (pydicom's ``generate_frames``
    then decides)."""
    items = _items(buf)
    if not items or len(items) < 2:
        return None
    table, fragments = bytes(items[0]), items[1:]
    if n == 1 and table in (b"", b"\0\0\0\0"):
        return [fragments[0] if len(fragments) == 1 else b"".join(fragments)]
    if len(fragments) != n:
        return None
    if not table:
        return fragments
    if len(table) == 4 * n:
        starts = struct.unpack(f"<{n}I", table)
        expected, position = [], 0
        for fragment in fragments:  # each fragment's item starts 8 + length after the last
            expected.append(position)
            position += 8 + len(fragment)
        if list(starts) == expected:
            return fragments
    return None


def _from_header(path: str, data: bytes, header) -> EncodedPixels:
    info = frame_info(header.values, header.syntax, path)
    end = len(data) if header.pixel_length is None else header.pixel_offset + header.pixel_length
    buf = memoryview(data)[header.pixel_offset:end]
    if header.syntax in ts.NATIVE and header.pixel_length is not None:
        frames = native_frames(buf, info, header.pixel_vr or "OW")
    else:
        frames = simple_frames(buf, info.number_of_frames) \
            or _encapsulated_frames(bytes(buf), info, {})
    return EncodedPixels(info=info, frames=frames, dataset=None)


def _from_dataset(path: str, max_inflated_bytes: int,
                  truncated: TruncatedData | None = None) -> EncodedPixels:
    ds, syntax = read_dataset(path, max_inflated_bytes=max_inflated_bytes)
    element = _pixel_element(ds, path, truncated)
    info = frame_info(ds, syntax, path)
    buf = element.value
    if buf is None:
        raise MissingTagError(f"{element.keyword} is empty", path=path, tag=element.keyword)
    if not isinstance(buf, (bytes, bytearray, memoryview)):  # a VR that is not OB/OW/OF/...
        raise InvalidTagError(f"{element.keyword} has VR {element.VR}: pydicom reads it as "
                              f"{type(buf).__name__}, not pixel bytes", path=path,
                              tag=element.keyword)
    if info.float_data and syntax not in ts.NATIVE:
        raise DecodeError(f"{element.keyword} must be stored uncompressed, not in "
                          f"{ts.describe(syntax)}", path=path, tag=element.keyword)
    if syntax in ts.NATIVE:
        frames = native_frames(buf, info, element.VR)
    elif syntax in ts.ENCAPSULATED:
        frames = _encapsulated_frames(buf, info, ds)
    else:
        from dicomml.decode.registry import decoders_for

        decoders_for(syntax, path=path)  # raises DecoderNotAvailableError naming the syntax
        raise AssertionError("unreachable")
    return EncodedPixels(info=info, frames=frames, dataset=ds)


def load_encoded(path, *, max_inflated_bytes: int = MAX_INFLATED_BYTES,
                 fast: bool = True) -> EncodedPixels:
    """Read ``path`` and return its :class:`EncodedPixels` (no decoding happens here).

    With ``fast`` (default) the header is walked by :mod:`dicomml.decode.fastheader` and
    ``dataset`` is ``None``; files it does not handle (no preamble, deflated, palette color,
    extended offset table, ...) go through ``pydicom.dcmread`` and keep their ``dataset``.
    """
    path = os.fspath(path)
    truncated = None
    if fast:
        with open(path, "rb", buffering=0) as fp:  # one read of the whole file
            data = fp.read()
        try:
            header = parse_header(data, path=path)
        except TruncatedData as exc:  # pydicom may still recover (e.g. mislabelled VRs)
            if exc.tag == "PixelData":  # ... but not a Pixel Data length beyond the file:
                raise  # pydicom would first allocate that length (up to 4 GiB)
            header, truncated = None, exc
        if header is not None:
            return _from_header(path, data, header)
        deflated = inflate_dataset(path, data, max_inflated_bytes)
        if deflated is not None and not deflated[1].fallback:
            return _from_header(path, *deflated)
    return _from_dataset(path, max_inflated_bytes, truncated)
