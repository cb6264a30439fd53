"""A small, bounded DICOM header walker: the image pixel module and the Pixel Data location,
without building a pydicom ``Dataset`` (which costs ~1-5 ms per file in pure Python).

It handles files with a Part 10 preamble in Implicit / Explicit VR Little Endian, Explicit VR
Big Endian and (after a capped inflate, :func:`parse_deflated`) Deflated Explicit VR Little
Endian, walking (and skipping) nested sequences. It returns ``None`` - and the caller falls
back to pydicom - for anything else: no preamble, palette color, extended offset tables,
float pixel data. An element whose length runs past the end of the data raises
:class:`TruncatedData` (naming the element's tag and offset): the caller decides whether
that is a truncated file or, for a data set being inflated piece by piece, a need for more.

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
# One unpack per plain element of the 12 bytes at its start: (group, element, VR, length,
# 32-bit length). Explicit VR: a 16-bit length, then the long VRs' 32-bit one (after their 2
# reserved bytes). Implicit VR: no VR bytes (b"": never a long VR) and a 32-bit length; the
# last 4 bytes (the value's start) are read and ignored.
_EXPLICIT = {o: struct.Struct(o + "HH2sHI") for o in "<>"}
_IMPLICIT = {o: struct.Struct(o + "HH0sII") for o in "<>"}
_SHORT_HEADER = struct.Struct("<HH2sH")
_MAX_DEPTH = 64  # as the catalog's parser (SR content trees nest deeply)


class _Unsupported(Exception):
    """Internal: the walker hands this file to pydicom."""


class TruncatedData(Exception):
    """The data ends inside an element: ``tag`` (an int, or None for an element header cut
    short) and ``offset`` (bytes, where the element starts)."""

    def __init__(self, tag: int | None, offset: int):
        self.tag, self.offset = tag, offset
        super().__init__(f"data ends inside {describe_tag(tag)} at byte {offset}")


def describe_tag(tag: int | None) -> str:
    """``'PixelData (7FE0,0010)'``-style name of a tag (``'an element header'`` for None)."""
    if tag is None:
        return "an element header"
    from pydicom.datadict import keyword_for_tag

    keyword = keyword_for_tag(tag) if tag >> 16 != 0xFFFE else ""
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{keyword} {text}" if keyword else text


def tag_keyword(tag: int | None) -> str | None:
    """The keyword of ``tag`` (``'(0009,1001)'`` for private or unknown tags, None for None)."""
    if tag is None:
        return None
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclasses.dataclass
class Header:
    """What :func:`parse_header` found: syntax, tag values by keyword, Pixel Data location.

    ``pixel_length`` is ``None`` for undefined-length (encapsulated) Pixel Data, which then
    runs from ``pixel_offset`` to the end of the file. ``fallback`` is True when the file
    needs pydicom's full data set (palette LUTs, extended offset table, float pixels).
    """

    syntax: str
    values: dict
    pixel_offset: int
    pixel_length: int | None
    pixel_vr: str
    fallback: bool = False


def _meta(data: bytes) -> tuple[str, int]:
    """Transfer syntax and the offset just past the file meta group."""
    pos, syntax, size = 132, "", len(data)
    unpack = _EXPLICIT["<"].unpack_from
    while pos + 8 <= size:
        if pos + 12 <= size:
            group, element, vr, length, long_length = unpack(data, pos)
        else:  # a short element at the very end (the group is then all there is)
            (group, element, vr, length), long_length = _SHORT_HEADER.unpack_from(data, pos), 0
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            if pos + 12 > size:
                raise struct.error("file meta element header cut short")
            length, start = long_length, pos + 12
        else:
            start = pos + 8
        if length == _UNDEFINED or start + length > size:
            raise _Unsupported
        if element == 0x0010:
            syntax = data[start:start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = start + length
    return syntax, pos


class _Walker:
    """Walks a data set's element headers; ``partial``: ``data`` is only a prefix of it (the
    Pixel Data value need not be present, and the end of ``data`` is not the end of it)."""

    def __init__(self, data: bytes, implicit: bool, big: bool, partial: bool = False):
        self.data, self.implicit, self.partial = data, implicit, partial
        self.order = ">" if big else "<"
        self.values: dict = {}
        self.ushort = struct.Struct(self.order + "H").unpack_from
        self.pixel = None
        self.fallback = False

    def element(self, pos: int) -> tuple[int, bytes, int, int]:
        """(tag, VR, value offset, length) of the element at ``pos``."""
        data, order = self.data, self.order
        if pos + 8 > len(data):
            raise TruncatedData(None, pos)
        group, element = struct.unpack_from(order + "HH", data, pos)
        tag = (group << 16) | element
        if self.implicit or group == 0xFFFE:
            (length,) = struct.unpack_from(order + "I", data, pos + 4)
            return tag, b"", pos + 8, length
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                raise TruncatedData(tag, pos)
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
            raise TruncatedData(None, end)
        return end

    def record(self, tag: int, start: int, length: int) -> None:
        """Keep the value of a group 0028 element the decoder needs (others are skipped)."""
        if tag in _US:
            if length != 2:
                raise _Unsupported
            self.values[_US[tag]] = self.ushort(self.data, start)[0]
        elif tag in _TEXT:
            text = self.data[start:start + length].decode("ascii", "replace").strip(" \x00")
            self.values[_TEXT[tag]] = text.split("\\")[0] if text else ""

    def walk(self, pos: int) -> None:
        """Walk top-level elements up to Pixel Data (raises :class:`TruncatedData`).

        Plain elements before group 7FE0 (most of a header) take a short path: one unpack of
        the 12 bytes that may hold the element's header (tag, VR, 16- and 32-bit length);
        group 0028 values are recorded; everything else goes through :meth:`step`.
        """
        data, size = self.data, len(self.data)
        unpack = (_IMPLICIT if self.implicit else _EXPLICIT)[self.order].unpack_from
        long_vrs, record = _LONG_VRS, self.record
        while pos < size:
            if pos + 12 <= size:
                group, element, vr, length, long_length = unpack(data, pos)
                if vr in long_vrs:
                    length, start = long_length, pos + 12
                else:
                    start = pos + 8
                if group < 0x7FE0 and length != _UNDEFINED and start + length <= size:
                    if group == 0x0028:
                        tag = 0x00280000 | element
                        if tag in _FALLBACK_TAGS:
                            self.fallback = True
                        record(tag, start, length)
                    pos = start + length
                    continue
            try:
                pos = self.step(pos)
            except TruncatedData as exc:
                if exc.tag is None and pos + 4 <= len(self.data):
                    group, element = struct.unpack_from(self.order + "HH", self.data, pos)
                    raise TruncatedData((group << 16) | element, pos) from None
                raise
            if pos is None:
                return
        if self.partial:  # the prefix ends between elements: more data is needed
            raise TruncatedData(None, pos)

    def step(self, pos: int) -> int | None:
        """Handle the top-level element at ``pos``; the next offset, None to stop."""
        tag, vr, start, length = self.element(pos)
        if tag in _FALLBACK_TAGS:
            self.fallback = True
        if tag == _PIXEL_DATA:
            defined = None if length == _UNDEFINED else length
            if defined is not None and start + defined > len(self.data) and not self.partial:
                raise TruncatedData(tag, pos)
            self.pixel = (start, defined, vr.decode("ascii", "replace") if vr else "")
            return None
        if tag > _PIXEL_DATA:
            return None
        if length == _UNDEFINED:
            return self.skip_undefined(start, 0)
        end = self.bounded(start + length)
        if tag >> 16 == 0x0028:
            self.record(tag, start, length)
        return end


def deflated_start(data: bytes) -> int | None:
    """Offset of the deflated data set in a Part 10 file of the Deflated Explicit VR Little
    Endian syntax; ``None`` for any other file (or one whose meta group cannot be walked)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        syntax, pos = _meta(data)
    except (_Unsupported, struct.error):
        return None
    return pos if syntax == ts.DEFLATED_EXPLICIT_VR_LE else None


def locate_pixels(data, syntax: str, *, partial: bool = False) -> Header | None:
    """Walk a data set (no meta group) up to Pixel Data; ``None`` when the walker cannot.

    ``partial``: ``data`` is a prefix of the data set (being inflated): the Pixel Data value
    need not be present, and reaching the end of ``data`` raises :class:`TruncatedData`.
    Used for inflated Deflated Explicit VR Little Endian data sets; ``fallback`` in the
    result says the full pydicom data set is needed (palette LUTs ...).
    """
    walker = _Walker(data, implicit=syntax == ts.IMPLICIT_VR_LE,
                     big=syntax == ts.EXPLICIT_VR_BE, partial=partial)
    try:
        walker.walk(0)
    except (_Unsupported, struct.error):
        return None
    if walker.pixel is None:
        return None
    palette = walker.values.get("PhotometricInterpretation", "").upper() == "PALETTE COLOR"
    offset, length, vr = walker.pixel
    return Header(syntax, walker.values, offset, length, vr, walker.fallback or palette)


def parse_header(data: bytes, *, partial: bool = False) -> Header | None:
    """Parse a whole file's bytes; ``None`` when pydicom's path must handle it.

    Raises :class:`TruncatedData` when an element (Pixel Data included) runs past the end.
    ``partial``: ``data`` is the file's first bytes only: Pixel Data's value may lie beyond.
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        syntax, pos = _meta(data)
        if syntax not in ts.NAMES or syntax == ts.DEFLATED_EXPLICIT_VR_LE:
            return None
        walker = _Walker(data, implicit=syntax == ts.IMPLICIT_VR_LE,
                         big=syntax == ts.EXPLICIT_VR_BE, partial=partial)
        walker.walk(pos)
    except (_Unsupported, struct.error):
        return None
    if walker.pixel is None or walker.fallback:
        return None
    values = walker.values
    if values.get("PhotometricInterpretation", "").upper() == "PALETTE COLOR":
        return None
    offset, length, vr = walker.pixel
    return Header(syntax, values, offset, length, vr)
