"""Read a DICOM file's header and split its pixel data into per-frame byte strings, with
every size bounded by what the file actually holds.

Native data: ``NumberOfFrames * Rows * Columns * SamplesPerPixel * bytes`` must fit in the
stored Pixel Data (else :class:`~dicomml.errors.TruncatedFileError`). Deflated data sets are
inflated with a hard output cap. Encapsulated data: frames come from pydicom's
``generate_frames`` (basic / extended offset tables, or none, fragments spanning frames) and
their count must match ``NumberOfFrames``.

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
import zlib

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError as PydicomInvalidDicomError

from dicomml.decode import syntaxes as ts
from dicomml.decode.fastheader import parse_deflated, parse_header
from dicomml.decode.info import FrameInfo, frame_info
from dicomml.errors import (
    DecodeError,
    InvalidDicomError,
    MissingTagError,
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
    meta = pydicom.filereader.read_file_meta_info(path)
    group_length = int(meta.get("FileMetaInformationGroupLength", 0))
    with open(path, "rb") as fp:
        head = fp.read(132)
        start = (132 if head[128:132] == b"DICM" else 0) + 12 + group_length
        fp.seek(start)
        compressed = fp.read()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(compressed, max_bytes)
    except zlib.error as exc:
        raise InvalidDicomError(f"deflated data set is corrupt: {exc}", path=path) from exc
    if inflater.unconsumed_tail:
        raise InvalidDicomError(f"deflated data set inflates beyond {max_bytes} bytes",
                                path=path)
    ds = pydicom.filereader.read_dataset(io.BytesIO(data), is_implicit_VR=False,
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
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except PydicomInvalidDicomError as exc:
        raise NotDicomError(f"not a DICOM file: {exc}", path=path) from exc
    except EOFError as exc:
        raise TruncatedFileError(f"file ends inside its header: {exc}", path=path) from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken headers
        raise InvalidDicomError(f"header cannot be parsed: {type(exc).__name__}: {exc}",
                                path=path) from exc
    if not syntax:
        raise MissingTagError("file meta has no TransferSyntaxUID", path=path,
                              tag="TransferSyntaxUID")
    return ds, syntax


def _pixel_element(ds, path):
    if "PixelData" not in ds:
        other = [k for k in ("FloatPixelData", "DoubleFloatPixelData") if k in ds]
        if other:
            raise DecodeError(f"{other[0]} (float pixels) is not supported", path=path,
                              tag=other[0])
        raise MissingTagError("file has no PixelData", path=path, tag="PixelData")
    try:
        return ds["PixelData"]
    except Exception as exc:  # noqa: BLE001
        raise InvalidDicomError(f"PixelData cannot be read: {exc}", path=path,
                                tag="PixelData") from exc


def _native_frames(buf: bytes, info: FrameInfo, vr: str) -> list:
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
                                 f"{size} bytes are declared", path=info.path, tag="PixelData")
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


def _from_header(path: str, data: bytes, header) -> EncodedPixels:
    info = frame_info(header.values, header.syntax, path)
    end = len(data) if header.pixel_length is None else header.pixel_offset + header.pixel_length
    buf = memoryview(data)[header.pixel_offset:end]
    if header.syntax in ts.NATIVE and header.pixel_length is not None:
        frames = _native_frames(buf, info, header.pixel_vr or "OW")
    else:
        frames = _encapsulated_frames(bytes(buf), info, {})
    return EncodedPixels(info=info, frames=frames, dataset=None)


def _from_dataset(path: str, max_inflated_bytes: int) -> EncodedPixels:
    ds, syntax = read_dataset(path, max_inflated_bytes=max_inflated_bytes)
    element = _pixel_element(ds, path)
    info = frame_info(ds, syntax, path)
    buf = element.value
    if buf is None:
        raise MissingTagError("PixelData is empty", path=path, tag="PixelData")
    if syntax in ts.NATIVE:
        frames = _native_frames(buf, info, element.VR)
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
    if fast:
        with open(path, "rb") as fp:
            data = fp.read()
        header = parse_header(data)
        if header is not None:
            return _from_header(path, data, header)
        try:
            deflated = parse_deflated(data, max_inflated_bytes)
        except ValueError as exc:
            raise InvalidDicomError(str(exc), path=path) from exc
        if deflated is not None:
            return _from_header(path, *deflated)
    return _from_dataset(path, max_inflated_bytes)
