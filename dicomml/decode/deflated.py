"""Deflated Explicit VR Little Endian, inflated with memory bounded by what the header
justifies (never by the compressed stream's own say-so).

Two phases, both incremental (``zlib.decompressobj().decompress(data, max_length)``):

1. inflate the data set in growing pieces (1 MiB, then 4x more each time) until the header
   walker finds Pixel Data, at most :data:`MAX_HEADER_BYTES` (8 MiB, as the catalog's
   parser) - a bomb hidden before Pixel Data fails here after inflating 8 MiB. A data set
   of less than 1 MiB (a 512x512 16-bit slice) comes out of one ``decompress`` call and is
   used as zlib returned it (no copy);
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

import zlib

from dicomml.decode import syntaxes as ts
from dicomml.decode.fastheader import (
    Header,
    TruncatedData,
    deflated_start,
    describe_tag,
    locate_pixels,
    tag_keyword,
)
from dicomml.decode.info import frame_info
from dicomml.errors import InvalidDicomError, TruncatedFileError

#: Largest inflated size of the elements before Pixel Data (bytes), as the catalog's parser.
MAX_HEADER_BYTES = 8 * 1024 * 1024
_INPUT_CHUNK = 1024 * 1024  # compressed bytes fed to zlib at a time
_OUTPUT_CHUNK = 4 * 1024 * 1024  # most bytes inflated per zlib call
_FIRST_PREFIX = 1024 * 1024


class BoundedInflater:
    """Inflates a raw deflate stream into ``buf`` on demand, never beyond what is asked for.

    ``eof``: the stream ended; ``exhausted``: the input ran out first (truncated stream).
    """

    def __init__(self, compressed, path: str):
        self.src = memoryview(compressed)
        self.path = path
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.buf: bytes | bytearray = b""  # the first piece as zlib returned it
        self.read = 0
        self.eof = self.exhausted = False

    def fill(self, size: int) -> int:
        """Inflate until ``size`` bytes are held or the stream ends; return bytes held."""
        while len(self.buf) < size and not (self.eof or self.exhausted):
            self._step(min(size - len(self.buf), _OUTPUT_CHUNK))
        return len(self.buf)

    def _step(self, room: int) -> None:
        data = self.inflater.unconsumed_tail
        if not data:
            data = self.src[self.read:self.read + _INPUT_CHUNK]
            self.read += len(data)
        try:
            out = self.inflater.decompress(data, room)
        except zlib.error as exc:
            raise InvalidDicomError(f"deflated data set is corrupt: {exc}",
                                    path=self.path) from exc
        if not self.buf:
            self.buf = out
        else:
            if type(self.buf) is bytes:
                self.buf = bytearray(self.buf)
            self.buf += out
        self.eof = self.inflater.eof
        if not out and not data:  # no input left and nothing pending: truncated
            self.exhausted = True


def _locate(inflater: BoundedInflater, cap: int) -> Header:
    """Phase 1: inflate growing prefixes until Pixel Data is found (at most ``cap`` bytes)."""
    size = _FIRST_PREFIX
    while True:
        held = inflater.fill(min(size, cap))
        done = inflater.eof or inflater.exhausted
        try:
            header = locate_pixels(bytes(inflater.buf), ts.DEFLATED_EXPLICIT_VR_LE,
                                   partial=not done)
        except TruncatedData as exc:
            if done:
                raise TruncatedFileError(
                    f"deflated data set ends inside {describe_tag(exc.tag)} at inflated byte "
                    f"{exc.offset}", path=inflater.path, tag=tag_keyword(exc.tag)) from None
            if held >= cap:
                raise InvalidDicomError(
                    f"deflated data set inflates beyond {cap} bytes before Pixel Data",
                    path=inflater.path) from None
            size *= 4
            continue
        if header is None:
            raise InvalidDicomError("deflated data set holds no readable Pixel Data",
                                    path=inflater.path)
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
    inflater = BoundedInflater(memoryview(data)[start:], path)
    header = _locate(inflater, min(MAX_HEADER_BYTES, max_bytes))
    info = frame_info(header.values, header.syntax, path)
    justified = info.number_of_frames * info.stored_frame_nbytes
    length = justified if header.pixel_length is None else min(header.pixel_length, justified)
    end = header.pixel_offset + length
    if end > max_bytes:
        raise InvalidDicomError(f"deflated data set inflates beyond {max_bytes} bytes "
                                f"(Pixel Data ends at {end})", path=path)
    held = inflater.fill(end)
    pixel_length = min(length, held - header.pixel_offset)
    header.pixel_length = pixel_length  # frames.py reports a short one as truncated
    return memoryview(inflater.buf)[:end], header  # a view: no copy of the inflated bytes
