"""A small, bounded DICOM header walker: the image pixel module and the Pixel Data location,
without building a pydicom ``Dataset`` (which costs ~1-5 ms per file in pure Python).

It handles files with a Part 10 preamble in Implicit / Explicit VR Little Endian, Explicit VR
Big Endian and (after a capped inflate, :func:`parse_deflated`) Deflated Explicit VR Little
Endian, walking (and skipping) nested sequences. It returns ``None`` - and the caller falls
back to pydicom - for anything else: no preamble, palette color, extended offset tables,
float pixel data, or any element whose length runs past the end of the data.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> header = parse_header(open(get_testdata_file("CT_small.dcm"), "rb").read())
>>> header.syntax, header.values["Rows"], header.pixel_length
('1.2.840.10008.1.2.1', 128, 32768)
"""

from __future__ import annotations

import dataclasses
import struct

from dicomml.decode import syntaxes as ts

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_US = {0x00280002: "SamplesPerPixel", 0x00280006: "PlanarConfiguration",
       0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated",
       0x00280101: "BitsStored", 0x00280103: "PixelRepresentation"}
_TEXT = {0x00280004: "PhotometricInterpretation", 0x00280008: "NumberOfFrames",
         0x00281052: "RescaleIntercept", 0x00281053: "RescaleSlope"}
# Their presence sends the file down pydicom's path (rare cases needing a full data set).
_FALLBACK_TAGS = frozenset({0x7FE00001, 0x7FE00002, 0x7FE00008, 0x7FE00009, 0x00281201,
                            0x00281101})
_MAX_DEPTH = 16


class _Unsupported(Exception):
    """Internal: the walker hands this file to pydicom."""


@dataclasses.dataclass
class Header:
    """What :func:`parse_header` found: syntax, tag values by keyword, Pixel Data location.

    ``pixel_length`` is ``None`` for undefined-length (encapsulated) Pixel Data, which then
    runs from ``pixel_offset`` to the end of the file.
    """

    syntax: str
    values: dict
    pixel_offset: int
    pixel_length: int | None
    pixel_vr: str


def _meta(data: bytes) -> tuple[str, int]:
    """Transfer syntax and the offset just past the file meta group."""
    pos, syntax = 132, ""
    while pos + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        if length == _UNDEFINED or start + length > len(data):
            raise _Unsupported
        if element == 0x0010:
            syntax = data[start:start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = start + length
    return syntax, pos


class _Walker:
    def __init__(self, data: bytes, implicit: bool, big: bool):
        self.data, self.implicit = data, implicit
        self.order = ">" if big else "<"
        self.values: dict = {}
        self.pixel = None

    def element(self, pos: int) -> tuple[int, bytes, int, int]:
        """(tag, VR, value offset, length) of the element at ``pos``."""
        data, order = self.data, self.order
        if pos + 8 > len(data):
            raise _Unsupported
        group, element = struct.unpack_from(order + "HH", data, pos)
        tag = (group << 16) | element
        if self.implicit or group == 0xFFFE:
            (length,) = struct.unpack_from(order + "I", data, pos + 4)
            return tag, b"", pos + 8, length
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                raise _Unsupported
            (length,) = struct.unpack_from(order + "I", data, pos + 8)
            return tag, vr, pos + 12, length
        (length,) = struct.unpack_from(order + "H", data, pos + 6)
        return tag, vr, pos + 8, length

    def skip_undefined(self, pos: int, depth: int) -> int:
        """Walk a sequence of undefined length from ``pos``; return the offset after it."""
        if depth > _MAX_DEPTH:
            raise _Unsupported
        while True:
            tag, _, start, length = self.element(pos)
            if tag == _SEQ_END:
                return start
            if tag != _ITEM:
                raise _Unsupported
            pos = self.items(start, length, depth + 1)

    def items(self, start: int, length: int, depth: int) -> int:
        """Skip one item's data set; return the offset after it."""
        if length != _UNDEFINED:
            return self.bounded(start + length)
        pos = start
        while True:
            tag, _, value, item_length = self.element(pos)
            if tag == _ITEM_END:
                return value
            pos = self.skip_undefined(value, depth) if item_length == _UNDEFINED \
                else self.bounded(value + item_length)

    def bounded(self, end: int) -> int:
        if end > len(self.data):
            raise _Unsupported
        return end

    def record(self, tag: int, start: int, length: int) -> None:
        raw = self.data[start:start + length]
        if tag in _US:
            if length != 2:
                raise _Unsupported
            self.values[_US[tag]] = struct.unpack(self.order + "H", raw)[0]
        elif tag in _TEXT:
            text = raw.decode("ascii", "replace").strip(" \x00")
            self.values[_TEXT[tag]] = text.split("\\")[0] if text else ""

    def walk(self, pos: int) -> None:
        """Walk top-level elements up to Pixel Data."""
        while pos < len(self.data):
            tag, vr, start, length = self.element(pos)
            if tag in _FALLBACK_TAGS or tag in (0x7FE00008, 0x7FE00009):
                raise _Unsupported
            if tag == _PIXEL_DATA:
                defined = None if length == _UNDEFINED else length
                if defined is not None and start + defined > len(self.data):
                    raise _Unsupported  # truncated: pydicom's path reports it
                self.pixel = (start, defined, vr.decode() if vr else "")
                return
            if tag > _PIXEL_DATA:
                return
            if length == _UNDEFINED:
                pos = self.skip_undefined(start, 0)
                continue
            pos = self.bounded(start + length)
            if tag >> 16 == 0x0028:
                self.record(tag, start, length)


def parse_deflated(data: bytes, max_bytes: int) -> tuple[bytes, Header] | None:
    """For Deflated Explicit VR Little Endian: inflate (at most ``max_bytes``) and walk.

    Returns ``(inflated data set bytes, Header with offsets into them)``; ``None`` when the
    file is not deflated or not handled here. Raises ``ValueError`` when the inflated size
    would exceed ``max_bytes`` or the deflate stream is corrupt.
    """
    import zlib

    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        syntax, pos = _meta(data)
    except (_Unsupported, struct.error):
        return None
    if syntax != ts.DEFLATED_EXPLICIT_VR_LE:
        return None
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data[pos:], max_bytes)
    except zlib.error as exc:
        raise ValueError(f"deflated data set is corrupt: {exc}") from exc
    if inflater.unconsumed_tail:
        raise ValueError(f"deflated data set inflates beyond {max_bytes} bytes")
    walker = _Walker(inflated, implicit=False, big=False)
    try:
        walker.walk(0)
    except (_Unsupported, struct.error):
        return None
    if walker.pixel is None or \
            walker.values.get("PhotometricInterpretation", "").upper() == "PALETTE COLOR":
        return None
    offset, length, vr = walker.pixel
    return inflated, Header(syntax, walker.values, offset, length, vr)


def parse_header(data: bytes) -> Header | None:
    """Parse a whole file's bytes; ``None`` when pydicom's path must handle it."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        syntax, pos = _meta(data)
        if syntax not in ts.NAMES or syntax == ts.DEFLATED_EXPLICIT_VR_LE:
            return None
        walker = _Walker(data, implicit=syntax == ts.IMPLICIT_VR_LE,
                         big=syntax == ts.EXPLICIT_VR_BE)
        walker.walk(pos)
    except (_Unsupported, struct.error):
        return None
    if walker.pixel is None:
        return None
    values = walker.values
    if values.get("PhotometricInterpretation", "").upper() == "PALETTE COLOR":
        return None
    offset, length, vr = walker.pixel
    return Header(syntax, values, offset, length, vr)
