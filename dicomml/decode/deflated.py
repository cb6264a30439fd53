"""Deflated Explicit VR Little Endian, inflated with memory bounded by what the header
justifies (never by the compressed stream's own say-so).

The data set is inflated by the catalog's one deflate source
(:class:`dicomml.catalog.header.InflateSource`) in two phases, both incremental
(``zlib.decompressobj().decompress(data, max_length)``):

1. inflate the data set while the header parser walks it, until Pixel Data, at most
   :data:`MAX_HEADER_BYTES` (8 MiB, the parser's one limit) - a bomb hidden before Pixel
   Data fails here after inflating 8 MiB;
2. inflate up to the end of Pixel Data, at most ``NumberOfFrames * Rows * Columns *
   SamplesPerPixel * BitsAllocated / 8`` bytes of it (what the header justifies); elements
   after Pixel Data are never inflated.

The output never exceeds ``max_bytes`` either (:func:`dicomml.read_pixels`' cap).

Example
-------
>>> from pydicom.data import get_testdata_file
>>> path = get_testdata_file("image_dfl.dcm")
>>> inflated, header = inflate_dataset(path, open(path, "rb").read(), 1 << 30)
>>> header.values["Rows"], header.pixel_length, len(inflated)
(512, 262144, 262682)
"""

from __future__ import annotations

import io

from dicomml.catalog.header import (
    MAX_HEADER_BYTES,
    Header,
    InflateSource,
    deflated_start,
    describe_tag,
    read_inflated_header,
    tag_keyword,
)
from dicomml.decode.info import frame_info
from dicomml.errors import InvalidDicomError, TruncatedFileError


def _locate(src: InflateSource, path: str) -> Header:
    """Phase 1: the header up to Pixel Data (at most ``src.cap`` inflated bytes)."""
    try:
        header = read_inflated_header(src, path)
    except TruncatedFileError as exc:
        element = getattr(exc, "element", None)
        raise TruncatedFileError(
            f"deflated data set ends inside {describe_tag(element)} at inflated byte "
            f"{getattr(exc, 'offset', 0)}", path=path, tag=tag_keyword(element)) from None
    if header is None:
        raise InvalidDicomError("deflated data set holds no readable Pixel Data", path=path)
    return header


def inflate_dataset(path: str, data: bytes, max_bytes: int) -> tuple[memoryview, Header] | None:
    """Inflate the data set of a deflated file, bounded; ``None`` if it is not deflated.

    Returns ``(inflated bytes up to the end of Pixel Data, Header with offsets into them)``.
    Raises :class:`~dicomml.errors.InvalidDicomError` (corrupt stream, inflation beyond the
    header's justification or ``max_bytes``), :class:`~dicomml.errors.TruncatedFileError`
    (stream ends early), or the Missing/InvalidTagError of a header that describes no frame.
    """
    start = deflated_start(data)
    if start is None:
        return None
    src = InflateSource(io.BytesIO(data), start, path, cap=min(MAX_HEADER_BYTES, max_bytes))
    header = _locate(src, path)
    info = frame_info(header.values, header.syntax, path)
    justified = info.number_of_frames * info.stored_frame_nbytes
    length = justified if header.pixel_length is None else min(header.pixel_length, justified)
    end = header.pixel_offset + length
    if end > max_bytes:
        raise InvalidDicomError(f"deflated data set inflates beyond {max_bytes} bytes "
                                f"(Pixel Data ends at {end})", path=path)
    src.cap = max(src.cap, end)
    held = src.fill(end)
    header.pixel_length = min(length, held - header.pixel_offset)  # frames.py: short = cut
    return memoryview(src.buf)[:end], header  # a view: no copy of the inflated bytes
