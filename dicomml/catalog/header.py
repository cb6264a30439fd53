"""The one bounded DICOM header parser: the catalog's row reader and the decoders' Pixel Data
locator.

``parse_file(path)`` reads the header of one file and returns its catalog row (a list in
:data:`dicomml.catalog.tags.COLUMNS` order) without ever reading pixel data. It is ~5x faster
than ``pydicom.dcmread(stop_before_pixels=True)`` (CPU time, ``benchmarks/bench_scan.py``)
because it only walks element headers: one ``struct.unpack_from`` and one dict lookup per
element over one buffer (the first 8 KiB of the file, more only for a longer header),
decoding just the ~45 wanted tags, and it stops at Pixel Data (7FE0,0010), whose value
offset and length it records.

:func:`read_pixel_header` walks a whole file already in memory (or its first bytes) with the
same parser in its *decode profile*: the group 0028 values a decoder needs, the transfer
syntax, and the Pixel Data value's offset, length and VR (:class:`Header`);
:class:`InflateSource` is the one bounded inflater of deflated data sets (used by the catalog
and by :mod:`dicomml.decode.deflated`).

Supported encodings: Part 10 files (preamble + ``DICM``), files without preamble (meta group
first, or a bare data set: explicit or implicit VR little endian, explicit VR big endian,
guessed from the first element), explicit VR files that are really implicit (and the reverse),
deflated transfer syntax, undefined-length sequences and items, ``UN`` sequences.

Bounds (a malformed or hostile file costs at most these; the one set of limits):
- at most :data:`MAX_HEADER_BYTES` bytes are read (skipped elements are seeked over, not read);
- a deflated data set is inflated incrementally (``zlib.decompressobj`` with ``max_length``)
  and never beyond :data:`MAX_HEADER_BYTES` of output before Pixel Data;
- an element whose length runs past the end of the file is a :class:`~dicomml.errors.TruncatedFileError`
  (a :class:`~dicomml.errors.TruncatedFileError`), never an allocation; nested sequences
  deeper than :data:`MAX_DEPTH` are an error.

Errors are raised as :mod:`dicomml.errors` types naming the file; :func:`parse_file_safe`
turns them into error records instead (what ``scan`` uses).

Example
-------
>>> from pydicom.data import get_testdata_file
>>> from dicomml.catalog.header import parse_file, row_as_dict
>>> row = row_as_dict(parse_file(get_testdata_file("CT_small.dcm")))
>>> row["Rows"], row["Modality"], row["pixel_data_length"]
(128, 'CT', 32768)
>>> first = open(get_testdata_file("MR_small.dcm"), "rb").read(4096)  # a prefix is enough
>>> found = read_pixel_header(first, partial=True)
>>> found.values["BitsAllocated"], found.pixel_vr, found.pixel_offset
(16, 'OW', 1500)
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib

from dicomml import syntaxes as ts
from dicomml._numbers import declared_frames, integer_string
from dicomml.errors import (
    InvalidDicomError,
    InvalidTagError,
    MissingTagError,
    NotDicomError,
    TruncatedFileError,
)

from . import tags as T

#: Bytes read first (most headers fit: one read; a 512x512 slice is not read further) ...
FIRST_READ = 8 * 1024
#: ... and at least this much at each later read (long headers, deflated streams).
READ_CHUNK = 64 * 1024
#: Most bytes of a header read (or inflated) before Pixel Data.
MAX_HEADER_BYTES = 8 * 1024 * 1024
MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 64  # SR content trees nest deeply; 5,000 levels is an attack
UNDEFINED = 0xFFFFFFFF

IMPLICIT_LE, EXPLICIT_BE = ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_BE
DEFLATED_TS = ts.DEFLATED_DATA_SET

LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC",
                      b"UN", b"UR", b"UT", b"UV"})
SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                       b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                       b"US", b"XS", b"OX", b"US or SS"})
ALL_VRS = LONG_VRS | SHORT_VRS

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
#: a missing Study / SOP Instance UID gets a placeholder (catalog.placeholders), not an error
REQUIRED = ("SeriesInstanceUID",)

# (tag pair, US, UL, FD)
_LE = tuple(struct.Struct("<" + f) for f in ("HH", "H", "I", "d"))
_BE = tuple(struct.Struct(">" + f) for f in ("HH", "H", "I", "d"))
_VR_HEADER_LEN = {**{vr: 8 for vr in SHORT_VRS}, **{vr: 12 for vr in LONG_VRS}}


def _raw_key(tag: int, little: bool) -> int:
    """The 32-bit number a tag's 4 bytes read as in the file's byte order (one unpack)."""
    return ((tag & 0xFFFF) << 16 | tag >> 16) if little else tag


def _canonical(key: int, little: bool) -> int:
    return ((key & 0xFFFF) << 16 | key >> 16) if little else key


def _cut(message: str, path: str, element: int | None, offset: int,
         tag: str | None = None) -> TruncatedFileError:
    """The error of data that end inside an element: a :class:`TruncatedFileError` that also
    carries ``element`` (the tag as an int; None when not known) and ``offset`` (bytes, where
    the element starts; in a deflated file, in the inflated data set). In the decode profile
    both name the top-level element (a sequence, for a cut inside one)."""
    err = TruncatedFileError(message, path=path, tag=tag)
    err.element, err.offset = element, offset
    return err


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


# Element actions (first item of each action tuple).
(_VALUE, _SEQUENCE, _PIXEL, _STOP, _DELIMITER_CODE, _CREATOR, _SIEMENS, _RECORD, _FLAG, _MARK,
 _NESTED) = range(11)
_DELIMITER = (_DELIMITER_CODE,)


def _actions(little: bool) -> dict[int, tuple]:
    table: dict[int, tuple] = {}
    for tag, (index, kind) in T.WANTED.items():
        if kind == T.PRESENT:
            table[tag] = (_MARK, index)
            continue
        code = _NESTED if tag in T.NESTED_ONLY else _VALUE
        table[tag] = (code, index, kind, tag in T.FROM_GROUPS)
    for tag in T.DESCEND:
        table[tag] = (_SEQUENCE,)
    table[PIXEL_DATA] = (_PIXEL,)
    for elem in (0x0008, 0x0009):  # Float / Double Float Pixel Data: stop there
        table[0x7FE00000 | elem] = (_STOP,)
    for tag in (ITEM, ITEM_END, SEQ_END):
        table[tag] = _DELIMITER
    for block in range(0x10, 0x20):
        table[0x00190000 | block] = (_CREATOR, 0x0019, block)
    for group, _ in T.PRIVATE_SEQUENCES:
        for block in range(0x10, 0x100):
            table[group << 16 | block] = (_CREATOR, group, block)
    return {_raw_key(tag, little): action for tag, action in table.items()}


def _decode_actions(little: bool) -> dict[int, tuple]:
    """The decode profile: group 0028 values, elements that need pydicom, Pixel Data."""
    table: dict[int, tuple] = {tag: (_RECORD, keyword, True)
                               for tag, keyword in T.PIXEL_MODULE_US.items()}
    table.update((tag, (_RECORD, keyword, False)) for tag, keyword in T.PIXEL_MODULE_TEXT.items())
    table.update((tag, (_FLAG,)) for tag in T.NEEDS_DATASET)
    table[PIXEL_DATA] = (_PIXEL,)
    for tag in (ITEM, ITEM_END, SEQ_END):
        table[tag] = _DELIMITER
    return {_raw_key(tag, little): action for tag, action in table.items()}


_ACTIONS = {True: _actions(True), False: _actions(False)}
_DECODE_ACTIONS = {True: _decode_actions(True), False: _decode_actions(False)}
#: Skipping an item: only its delimiters matter.
_SKIP_ACTIONS = {little: {_raw_key(tag, little): _DELIMITER for tag in (ITEM, ITEM_END, SEQ_END)}
                 for little in (True, False)}
#: The decode profile of the file meta group: the transfer syntax only.
_META_ACTIONS = {True: {_raw_key(0x00020010, True): (_RECORD, "TransferSyntaxUID", False)}}
# One unpack per element header of the 12 bytes at its start: explicit VR gives the tag, VR,
# 16-bit length and the 32-bit length of the long VRs; implicit VR the tag, b"" for the VR,
# the 32-bit length and 4 bytes of the value (ignored). The short form is for the data's last
# few bytes.
_HEAD = {(True, True): struct.Struct("<I2sHI"), (True, False): struct.Struct(">I2sHI"),
         (False, True): struct.Struct("<I0sII"), (False, False): struct.Struct(">I0sII")}
_IMPLICIT_HEADER_LEN = {b"": 8}  # implicit VR: the unpacked "VR" is b"", the length 32-bit
_HEAD8 = {True: struct.Struct("<I2sH"), False: struct.Struct(">I2sH")}
_NCOL = len(T.COLUMNS)
_TEXT = T.TEXT
_I_OFFSET = T.INDEX["pixel_data_offset"]
_I_LENGTH = T.INDEX["pixel_data_length"]
_I_SOURCE = T.INDEX["header_source"]
_I_FLOAT = T.INDEX["float_pixel_data"]
_I_MOSAIC = T.INDEX["NumberOfImagesInMosaic"]
_I_CHARSET = T.INDEX["SpecificCharacterSet"]
_I_FRAMES = T.INDEX["NumberOfFrames"]
_I_TS = T.INDEX["TransferSyntaxUID"]
_I_REPRESENTATION = T.INDEX["PixelRepresentation"]
_I_PADDING = (T.INDEX["PixelPaddingValue"], T.INDEX["PixelPaddingRangeLimit"])
#: columns from sequences that are no functional group (they leave ``header_source`` alone)
_I_NESTED_ONLY = frozenset(T.WANTED[tag][0] for tag in T.NESTED_ONLY)


class DicomdirSkipped(Exception):
    """A DICOMDIR media index: recorded in ``errors`` as skipped, not as broken."""


# --- byte sources ------------------------------------------------------------------------
class _FileSource:
    """Bytes of a file at absolute offsets, read in a few bounded chunks.

    ``buf`` holds the file bytes ``[base, base + len(buf))``; :meth:`load` makes a range
    available (seeking over skipped elements, so they are never read).
    """

    partial = False

    def __init__(self, handle, size: int, path: str):
        self.handle, self.size, self.path = handle, size, path
        self.buf = handle.read(FIRST_READ)
        self.base = 0
        self.nread = len(self.buf)

    def load(self, pos: int, n: int) -> int:
        """Make ``[pos, pos + n)`` available (clipped at end of file); return bytes available."""
        n = min(n, self.size - pos)
        if n <= 0:
            return 0
        end = self.base + len(self.buf)
        if self.base <= pos and pos + n <= end:
            return n
        if self.base <= pos < end:  # keep the tail, read what follows
            self.buf = self.buf[pos - self.base:]
        else:
            self.handle.seek(pos)
            self.buf = b""
        self.base = pos
        want = max(n - len(self.buf), READ_CHUNK)
        self._count(want)
        self.buf += self.handle.read(want)
        return min(n, len(self.buf))

    def _count(self, nbytes: int) -> None:
        self.nread += nbytes
        if self.nread > MAX_HEADER_BYTES + FIRST_READ:
            raise InvalidDicomError(
                f"header larger than {MAX_HEADER_BYTES // 2**20} MiB", path=self.path)


class _BytesSource:
    """A file (or its first bytes: ``partial``) already in memory: nothing to load."""

    def __init__(self, data, path: str, partial: bool = False):
        self.buf, self.base, self.path, self.partial = data, 0, path, partial
        self.size = (1 << 62) if partial else len(data)  # a prefix: the end is not known

    def load(self, pos: int, n: int) -> int:
        """Bytes available from ``pos`` (at most ``n``)."""
        return max(0, min(n, len(self.buf) - pos))


class InflateSource:
    """The inflated data set of a deflated file, inflated on demand up to ``cap`` bytes: the
    one deflate source of dicomml (the catalog reads headers through it, the decoders also
    the pixel data after them).

    ``compressed`` has a ``read(n)`` (an open file or ``io.BytesIO`` of the file's bytes)
    positioned at ``start``, where the raw deflate stream begins. Positions are offsets in the
    *inflated* stream; ``size`` is unknown (huge) until the stream ends. ``cap`` (bytes of
    output, default :data:`MAX_HEADER_BYTES`) may be raised once Pixel Data is found; going
    past it is an :class:`~dicomml.errors.InvalidDicomError` ("inflates beyond").

    Example
    -------
    >>> import io, zlib
    >>> packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    >>> src = InflateSource(io.BytesIO(packer.compress(b"abc" * 10) + packer.flush()), 0, "x")
    >>> src.fill(30), bytes(src.buf[:6])
    (30, b'abcabc')
    """

    partial = False

    def __init__(self, compressed, start: int, path: str, cap: int = MAX_HEADER_BYTES):
        self.handle, self.path, self.cap = compressed, path, cap
        compressed.seek(start)
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.buf: bytes | bytearray = b""
        self.base = 0
        self.size = 1 << 62

    def load(self, pos: int, n: int) -> int:
        """Inflate until ``[pos, pos + n)`` is held or the stream ends; return bytes held."""
        while len(self.buf) < pos + n and self.size > len(self.buf):
            self._inflate(pos + n - len(self.buf))
        return max(0, min(n, len(self.buf) - pos))

    def fill(self, size: int) -> int:
        """Inflate the first ``size`` bytes (fewer if the stream ends); return bytes held."""
        self.load(0, size)
        return len(self.buf)

    def _inflate(self, need: int) -> None:
        room = self.cap - len(self.buf)
        if room <= 0:
            limit = (f"{MAX_HEADER_BYTES // 2**20} MiB" if self.cap == MAX_HEADER_BYTES
                     else f"{self.cap} bytes")
            raise InvalidDicomError(f"deflated data set inflates beyond {limit}",
                                    path=self.path)
        data = self.inflater.unconsumed_tail or self.handle.read(READ_CHUNK)
        try:
            out = self.inflater.decompress(data, min(room, max(need, READ_CHUNK)))
        except zlib.error as exc:
            raise InvalidDicomError(f"deflated data set is corrupt ({exc})",
                                    path=self.path) from None
        if not self.buf:
            self.buf = out  # the first piece as zlib returned it (no copy)
        else:
            if type(self.buf) is bytes:
                self.buf = bytearray(self.buf)
            self.buf += out
        if self.inflater.eof or not (out or data):  # the stream ended, or was cut short
            self.size = len(self.buf)


# --- value decoding -----------------------------------------------------------------------
def _text(raw: bytes, charset) -> str:
    raw = raw.strip(b" \x00")
    if charset is None:
        return raw.decode("latin-1")
    return _decode_charset(raw, charset)


def _decode_charset(raw: bytes, charset: str) -> str:
    codec = _SIMPLE_CHARSETS.get(charset)
    if codec is not None:
        return raw.decode(codec, errors="replace")
    from pydicom.charset import convert_encodings, decode_bytes  # rare: ISO 2022 escapes

    try:
        encodings = convert_encodings(charset.split("\\"))
    except (ValueError, LookupError):  # not even a codec name (a NUL in it): as unknown ones
        return raw.decode("latin-1")
    return decode_bytes(raw, encodings, {0x5C, 0x3D, 0x5E}).strip(" \x00")


_SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1",
                    "ISO_IR 192": "utf-8", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3",
                    "ISO_IR 110": "iso8859_4", "ISO_IR 144": "iso8859_5",
                    "ISO_IR 127": "iso8859_6", "ISO_IR 126": "iso8859_7",
                    "ISO_IR 138": "iso8859_8", "ISO_IR 148": "iso8859_9",
                    "ISO_IR 13": "shift_jis", "ISO_IR 166": "iso8859_11",
                    "GB18030": "gb18030", "GBK": "gbk"}


def _number(text: str, kind: int):
    first = text.split("\\", 1)[0].strip()
    if not first:
        return None
    if kind == T.INT:
        return integer_string(first)
    return float(first)


def _decode(raw: bytes, kind: int, structs, charset):
    """Raw value bytes -> Python value of ``kind``; None when empty or unparsable."""
    if kind == T.TEXT:
        value = _text(raw, charset)
        if "\\" in value:  # multi-valued: strip each value's padding
            value = "\\".join(v.strip() for v in value.split("\\"))
        return value or None
    if kind == T.USHORT:
        return structs[1].unpack_from(raw)[0] if len(raw) >= 2 else None
    if kind == T.DOUBLE:
        return structs[3].unpack_from(raw)[0] if len(raw) >= 8 else None
    text = raw.decode("latin-1").strip(" \x00")
    if not text:
        return None
    try:
        if kind == T.FLOATS:
            return [float(v) for v in text.split("\\")]
        return _number(text, kind)
    except ValueError:
        return None


# --- element walking ----------------------------------------------------------------------
class _Parser:
    """Walks the elements of one data set: the catalog profile fills ``row`` with wanted
    values (``decode=False``); the decode profile fills ``values`` with the group 0028 values
    a decoder needs, sets ``fallback`` for elements that need pydicom's data set and
    ``unsupported`` for values it does not take (a US of another length than 2)."""

    def __init__(self, src, path: str, explicit: bool, little: bool, decode: bool = False,
                 actions: dict | None = None):
        self.src, self.path = src, path
        self.row = [None] * _NCOL
        self.nested: dict[int, object] = {}  # values found in functional groups
        self.charset = None
        self.values: dict = {}
        self.pixel = None  # (value offset, length or None: undefined, VR text)
        self.fallback = self.unsupported = self.skipping = False
        self.bad_frames: str | None = None  # a Number of Frames value that is not one
        self.actions = actions or (_DECODE_ACTIONS if decode else _ACTIONS)
        self.set_encoding(explicit, little)

    def set_encoding(self, explicit: bool, little: bool) -> None:
        self.explicit, self.little = explicit, little
        self.structs = _LE if little else _BE
        self.head = _HEAD[explicit, little]
        self.header_len = _VR_HEADER_LEN if explicit else _IMPLICIT_HEADER_LEN
        self.special = self.actions[little]

    # The hot loop: one iteration per element header; keep it lean. Elements are looked up
    # by their raw 32-bit key as it lies in the file (see _raw_key), so one unpack and one
    # dict lookup classify an element: most are skipped right there. ``lim`` is where both
    # the buffer and the walked range still hold: an element header and its value that end
    # before it need no other check (an undefined length, 0xFFFFFFFF, never does).
    def walk(self, pos: int, end, depth: int, top: bool) -> int:
        """Parse elements from ``pos`` up to ``end`` (absolute; ``None``: the end of the file
        when ``top``, else the item delimiter). Returns the position after the last element
        (after the delimiter for an undefined-length item)."""
        src = self.src
        unpack, special, header_len = self.head.unpack_from, self.special, self.header_len
        buf, base = src.buf, src.base
        stop = src.size if end is None else end
        lim = min(base + len(buf), stop)
        while True:
            if pos + 12 <= lim:
                key, vr, length, long = unpack(buf, pos - base)
            else:
                if pos >= stop:
                    break
                head = self._header_at(pos, end, top)
                if head is None:
                    break  # end of file (a few trailing padding bytes are tolerated)
                key, vr, length, long = head
                buf, base = src.buf, src.base
                stop = src.size if end is None else end
                lim = min(base + len(buf), stop)
            try:
                hlen = header_len[vr]  # implicit VR: vr is b"", always 8
            except KeyError:
                if special.get(key) is _DELIMITER:
                    return self._delimiter(key, pos, end, top)
                if not self.skipping:
                    raise InvalidDicomError(f"invalid VR {vr!r} in {self._name(key)} at "
                                            f"byte {pos}", path=self.path) from None
                hlen = 8  # inside a skipped item: read as a short VR
            if hlen == 12:
                length = long
            vpos = pos + hlen
            if key not in special:
                if vpos + length <= lim:
                    pos = vpos + length
                    continue
                if length == UNDEFINED:
                    pos = self._undefined(False, vr, vpos, depth, top, key, pos)
                    buf, base = src.buf, src.base
                    stop = src.size if end is None else end
                    lim = min(base + len(buf), stop)
                    continue
                if vpos + length > stop:
                    self._truncated(pos, f"{self._name(key)} of {length} bytes", key)
                pos = vpos + length
                continue
            action = special[key]
            code = action[0]
            if code == _RECORD and vpos + length <= lim:  # decode profile, value in buffer
                if top:
                    self._record(action[1], action[2], buf, vpos - base, length)
                pos = vpos + length
                continue
            if code == _PIXEL and top:
                self._pixel_data(pos, vpos, length, vr)
                return pos
            if code == _STOP and top:  # Float / Double Float Pixel Data
                self.row[_I_FLOAT] = 1
                return pos  # nothing wanted after the pixel data
            if code == _DELIMITER_CODE:
                return self._delimiter(key, pos, end, top)
            if code == _MARK and top:  # a flagged sequence: present, then skipped
                self.row[action[1]] = 1
            if length == UNDEFINED:
                pos = self._undefined(code == _SEQUENCE, vr, vpos, depth, top, key, pos)
            else:
                if vpos + length > stop:
                    self._truncated(pos, f"{self._name(key)} of {length} bytes", key)
                if code == _VALUE:
                    j = vpos - base
                    if top and action[2] == _TEXT and vpos + length <= lim and \
                            self.charset is None and action[1] != _I_CHARSET:
                        value = buf[j:j + length].strip(b" \x00").decode("latin-1")
                        if "\\" in value:  # multi-valued: strip each value's padding
                            value = "\\".join(v.strip() for v in value.split("\\"))
                        self.row[action[1]] = value or None
                    else:
                        self._store(action, vpos, length, top)
                elif code == _SEQUENCE:
                    if not vr or vr == b"SQ" or vr == b"UN":
                        self._nested(self._sequence, top, key, pos,
                                     vpos, vpos + length, depth, vr == b"UN")
                elif code == _CREATOR:
                    self._private_creator(action[1], action[2], vpos, length)
                    special = self.special
                elif code == _SIEMENS:
                    self._siemens_value(action[1], vpos, length)
                elif code == _NESTED and not top:  # a value wanted only inside a sequence
                    self._store(action, vpos, length, False)
                elif top and code == _RECORD:
                    raw = self._value_bytes(vpos, length, MAX_VALUE_BYTES)
                    if raw is None:
                        self.unsupported = True
                    else:
                        self._record(action[1], action[2], raw, 0, length)
                elif top and code == _FLAG:
                    self.fallback = True
                pos = vpos + length
            buf, base = src.buf, src.base
            stop = src.size if end is None else end
            lim = min(base + len(buf), stop)
        return pos

    def _header_at(self, pos: int, end, top: bool):
        """``(key, VR, length, long length)`` of the element at ``pos`` where the buffer or
        the range ends within 12 bytes (loading more); None at the end of the file."""
        src = self.src
        got = src.load(pos, 12)
        if got < 8:
            if top and end is None and not src.partial:
                return None
            self._truncated(pos, "an element header", self._key_at(pos, got))
        i = pos - src.base
        if got >= 12:
            return self.head.unpack_from(src.buf, i)
        if not self.explicit:
            unpack = self.structs[2].unpack_from
            length = unpack(src.buf, i + 4)[0]
            return unpack(src.buf, i)[0], b"", length, length
        key, vr, length = _HEAD8[self.little].unpack_from(src.buf, i)  # the data's last bytes
        if _VR_HEADER_LEN.get(vr) == 12:
            self._truncated(pos, "an element header", key)
        return key, vr, length, length

    def _key_at(self, pos: int, got: int) -> int | None:
        """The raw key of an element whose header is cut short (None: not even 4 bytes)."""
        if got < 4:
            return None
        return self.structs[2].unpack_from(self.src.buf, pos - self.src.base)[0]

    def _nested(self, call, top: bool, key: int, pos: int, *args):
        """``call(*args)``; a cut inside it is named after the top-level element at ``pos``."""
        if not top:
            return call(*args)
        try:
            return call(*args)
        except TruncatedFileError as exc:
            exc.element, exc.offset = _canonical(key, self.little), pos
            raise

    def _name(self, key: int) -> str:
        tag = _canonical(key, self.little)
        return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"

    def _delimiter(self, key: int, pos: int, end, top: bool) -> int:
        if _canonical(key, self.little) == ITEM_END and end is None and not top:
            return pos + 8
        raise InvalidDicomError(f"unexpected delimiter {self._name(key)} at byte {pos}",
                                path=self.path)

    def _truncated(self, pos: int, what: str, key: int | None = None):
        element = None if key is None else _canonical(key, self.little)
        raise _cut(f"file ends inside {what} at byte {pos}", self.path, element, pos)

    def _store(self, action: tuple, vpos: int, length: int, top: bool) -> None:
        """Decode one wanted value (``action`` = (_VALUE, column, kind, from_groups))."""
        _, index, kind, from_groups = action
        src = self.src
        i = vpos - src.base
        if i + length > len(src.buf):  # rare: the value lies beyond the buffer
            if length > MAX_VALUE_BYTES:
                return
            if src.load(vpos, length) < length:
                self._truncated(vpos, "a value")
            i = vpos - src.base
        raw = src.buf[i:i + length]
        if top and index == _I_FRAMES:
            value = self._frames(raw)
        elif kind == T.TEXT and self.charset is None:
            value = raw.strip(b" \x00").decode("latin-1")
            if "\\" in value:  # multi-valued: strip each value's padding
                value = "\\".join(v.strip() for v in value.split("\\"))
            value = value or None
        else:
            value = _decode(raw, kind, self.structs, self.charset)
        if top:
            self.row[index] = value
            if index == _I_CHARSET and value and value not in ("ISO_IR 100", "ISO_IR 6"):
                self.charset = value
        elif from_groups and value is not None:
            self.nested.setdefault(index, value)

    def _frames(self, raw) -> int | None:
        """Number of Frames: the one rule of :func:`dicomml._numbers.declared_frames`; a
        value it refuses is kept for :meth:`finish` to name (after the walk, so a file cut
        short is reported as such first, as the decode profile reports it)."""
        text = bytes(raw).split(b"\\", 1)[0].decode("latin-1")
        try:
            return declared_frames(text)
        except ValueError:
            self.bad_frames = text.strip(" \x00")
            return None

    def _value_bytes(self, vpos: int, length: int, most: int = 256) -> bytes | None:
        if length > most or self.src.load(vpos, length) < length:
            return None
        i = vpos - self.src.base
        return self.src.buf[i:i + length]

    def _private_creator(self, group: int, block: int, vpos: int, length: int) -> None:
        """A private creator (group,00xx): watch the elements wanted from that block.

        (0019,00xx) = "SIEMENS MR HEADER": (0019,xx0A) mosaic and (0019,xx0C) b value;
        a creator of ``tags.PRIVATE_SEQUENCES``: descend into its sequence (group,xxEE)."""
        raw = self._value_bytes(vpos, length)
        if raw is None:
            return
        creator = raw.strip(b" \x00").decode("latin-1")
        first = group << 16 | block << 8
        if group == 0x0019 and creator == T.SIEMENS_CREATOR:
            extra = {_raw_key(first | 0x0A, self.little): (_SIEMENS, "mosaic"),
                     _raw_key(first | 0x0C, self.little): (_SIEMENS, "b")}
        elif (group, creator) in T.PRIVATE_SEQUENCES:
            element = T.PRIVATE_SEQUENCES[group, creator]
            extra = {_raw_key(first | element, self.little): (_SEQUENCE,)}
        else:
            return
        self.special = {**self.special, **extra}

    def _siemens_value(self, which: str, vpos: int, length: int) -> None:
        raw = self._value_bytes(vpos, length)
        if raw is None:
            return
        if which == "mosaic" and length >= 2:  # NumberOfImagesInMosaic, US
            self.row[_I_MOSAIC] = self.structs[1].unpack_from(raw)[0]
        elif which == "b":  # B_value, IS
            value = _decode(raw, T.FLOAT, self.structs, None)
            if value is not None:
                self.nested.setdefault(T.INDEX["DiffusionBValue"], value)

    def _pixel_data(self, pos: int, vpos: int, length: int, vr) -> None:
        """Pixel Data's value at ``vpos``: its offset and length (the row's columns; in the
        decode profile ``pixel``, with the VR)."""
        self.pixel = (vpos, None if length == UNDEFINED else length,
                      vr.decode("ascii", "replace") if vr else "")
        if length == UNDEFINED:
            self.row[_I_OFFSET], self.row[_I_LENGTH] = vpos, -1
            return
        if vpos + length > self.src.size:
            raise _cut(f"Pixel Data declares {length} bytes, file ends after "
                       f"{self.src.size - vpos}", self.path, PIXEL_DATA, pos, "PixelData")
        offset = -1 if isinstance(self.src, InflateSource) else vpos
        self.row[_I_OFFSET], self.row[_I_LENGTH] = offset, length

    def _record(self, keyword: str, binary: bool, buf, i: int, length: int) -> None:
        """Decode profile: keep a group 0028 value (``buf[i:i + length]``) as the decoders
        take it: a binary US of 2 bytes as int (another length: ``unsupported``), text as its
        first value."""
        if binary:
            if length != 2:
                self.unsupported = True
            else:
                self.values[keyword] = self.structs[1].unpack_from(buf, i)[0]
        else:
            text = bytes(buf[i:i + length]).decode("ascii", "replace").strip(" \x00")
            self.values[keyword] = text.split("\\")[0] if text else ""

    # --- sequences ---
    def _undefined(self, descend: bool, vr, vpos: int, depth: int, top: bool, key: int,
                   pos: int) -> int:
        """An undefined-length element (a sequence) at ``pos``: descend or skip; return the
        next pos."""
        if depth >= MAX_DEPTH:
            raise InvalidDicomError(f"sequences nested deeper than {MAX_DEPTH}",
                                    path=self.path)
        as_implicit = vr == b"UN"  # UN with undefined length: implicit VR LE inside
        if descend:
            return self._nested(self._sequence, top, key, pos, vpos, None, depth, as_implicit)
        return self._nested(self._skip_sequence, top, key, pos, vpos, depth, as_implicit)

    def _sequence(self, vpos: int, end, depth: int, as_implicit: bool) -> int:
        """Parse the first item of a wanted sequence, skip the rest; return the next pos."""
        saved = self.explicit, self.little
        if as_implicit:
            self.set_encoding(False, True)
        try:
            pos = self._item(vpos, end, depth, parse=True)
            if pos is None:
                return vpos + 8 if end is None else end
            if end is not None:
                return end
            return self._skip_items(pos, depth)
        finally:
            self.set_encoding(*saved)

    def _skip_sequence(self, vpos: int, depth: int, as_implicit: bool) -> int:
        saved = self.explicit, self.little
        if as_implicit:
            self.set_encoding(False, True)
        try:
            return self._skip_items(vpos, depth)
        finally:
            self.set_encoding(*saved)

    def _item_header(self, pos: int):
        if self.src.load(pos, 8) < 8:
            self._truncated(pos, "a sequence item")
        i = pos - self.src.base
        group, elem = self.structs[0].unpack_from(self.src.buf, i)
        length = self.structs[2].unpack_from(self.src.buf, i + 4)[0]
        return group << 16 | elem, length

    def _item(self, pos: int, end, depth: int, parse: bool):
        """Handle one item at ``pos``; None at the sequence end, else the next position."""
        if end is not None and pos >= end:
            return None
        tag, length = self._item_header(pos)
        if tag == SEQ_END:
            return None
        if tag != ITEM:
            raise InvalidDicomError(f"expected a sequence item at byte {pos}", path=self.path)
        if length == UNDEFINED:
            if parse:
                return self.walk(pos + 8, None, depth + 1, top=False)
            return self._skip_item_elements(pos + 8, depth + 1)
        if pos + 8 + length > self.src.size:
            self._truncated(pos, f"a sequence item of {length} bytes")
        if parse:
            self.walk(pos + 8, pos + 8 + length, depth + 1, top=False)
        return pos + 8 + length

    def _skip_items(self, pos: int, depth: int) -> int:
        """Skip items of an undefined-length sequence; return the pos after its delimiter."""
        while True:
            tag, _ = self._item_header(pos)
            if tag == SEQ_END:
                return pos + 8
            pos = self._item(pos, None, depth, parse=False)

    def _skip_item_elements(self, pos: int, depth: int) -> int:
        """Skip the elements of an undefined-length item (the walk, with nothing wanted and
        unknown VRs read as short ones); return the pos after its delimiter (FFFE,E00D)."""
        if depth >= MAX_DEPTH:
            raise InvalidDicomError(f"sequences nested deeper than {MAX_DEPTH}",
                                    path=self.path)
        saved = self.special, self.skipping
        self.special, self.skipping = _SKIP_ACTIONS[self.little], True
        try:
            return self.walk(pos, None, depth, top=False)
        finally:
            self.special, self.skipping = saved

    def finish(self) -> list:
        """Fill values absent at the top level from the functional groups; return the row."""
        row = self.row
        if self.bad_frames is not None:
            raise InvalidTagError(f"NumberOfFrames must be a whole number, got "
                                  f"{self.bad_frames!r}", path=self.path, tag="NumberOfFrames")
        if self.nested:
            used = False
            for index, value in self.nested.items():
                if row[index] is None:
                    row[index] = value
                    used = used or index not in _I_NESTED_ONLY
            row[_I_SOURCE] = "functional_groups" if used else "top"
        else:
            row[_I_SOURCE] = "top"
        if row[_I_OFFSET] is None:
            row[_I_OFFSET], row[_I_LENGTH] = -1, 0
        if row[_I_REPRESENTATION] == 1:  # display values: padding is SS for signed pixels
            for index in _I_PADDING:
                if row[index] is not None and row[index] > 32767:
                    row[index] -= 65536
        return row


# --- file level ---------------------------------------------------------------------------
def _looks_explicit(buf: bytes, i: int) -> bool:
    return buf[i + 4:i + 6] in ALL_VRS


def _guess_bare(buf: bytes, path: str):
    """Encoding of a data set without preamble/meta: (explicit, little) or NotDicomError."""
    if len(buf) < 8:
        raise NotDicomError("not DICOM (too short, no DICM signature)", path=path)
    for little in (True, False):
        group, elem = (_LE if little else _BE)[0].unpack_from(buf, 0)
        if not (0x0002 <= group <= 0x0028 and group % 2 == 0):
            continue
        explicit = _looks_explicit(buf, 0)
        if not little and not explicit:
            continue
        return explicit, little
    raise NotDicomError("not DICOM (no DICM signature and no plausible first element)",
                        path=path)


def _parse_meta(src: _FileSource, pos: int, path: str, syntax_only: bool = False):
    """Parse the group-0002 file meta (always explicit VR LE); return (row, dataset pos).
    ``syntax_only``: when (0002,0000) gives the group's length, only the transfer syntax is
    kept (the row holds just that)."""
    end = _meta_end(src, pos)
    if end is not None:  # the usual case: (0002,0000) gives the group's length
        parser = _Parser(src, path, True, True, actions=_META_ACTIONS if syntax_only else None)
        try:
            parser.walk(pos, end, 0, top=True)
            if syntax_only:
                parser.row[_I_TS] = parser.values.get("TransferSyntaxUID")
            return parser.row, end
        except InvalidDicomError:  # a wrong group length (pydicom ignores it): walk group 2
            pass
    parser = _Parser(src, path, explicit=True, little=True)
    while True:
        if src.load(pos, 8) < 8:
            break
        group = _LE[1].unpack_from(src.buf, pos - src.base)[0]
        if group != 0x0002:
            break
        if not _looks_explicit(src.buf, pos - src.base):
            raise InvalidDicomError("broken file meta header (invalid VR in group 0002)",
                                    path=path)
        pos = _meta_element(parser, pos)
    return parser.row, pos


def _meta_end(src: _FileSource, pos: int) -> int | None:
    """End of the meta group from (0002,0000) File Meta Information Group Length, if sane."""
    if src.load(pos, 12) < 12:
        return None
    i = pos - src.base
    if src.buf[i:i + 8] != b"\x02\x00\x00\x00UL\x04\x00":
        return None
    end = pos + 12 + _LE[2].unpack_from(src.buf, i + 8)[0]
    if end > src.size or src.load(end, 8) < 8:
        return None
    i = end - src.base
    group = _LE[1].unpack_from(src.buf, i)[0]
    return end if group != 0x0002 and src.load(pos, end - pos) == end - pos else None


def _meta_element(parser: _Parser, pos: int) -> int:
    src = parser.src
    got = src.load(pos, 12)
    i = pos - src.base
    vr = src.buf[i + 4:i + 6]
    if got < (12 if vr in LONG_VRS else 8):  # before any unpack: the header may be cut
        raise InvalidDicomError("broken file meta header (the file ends inside it)",
                                path=parser.path)
    tag = (0x0002 << 16) | _LE[1].unpack_from(src.buf, i + 2)[0]
    if vr in LONG_VRS:
        length, vpos = _LE[2].unpack_from(src.buf, i + 8)[0], pos + 12
    else:
        length, vpos = _LE[1].unpack_from(src.buf, i + 6)[0], pos + 8
    if length == UNDEFINED or vpos + length > src.size:
        raise InvalidDicomError("broken file meta header (element length beyond the file)",
                                path=parser.path)
    action = _ACTIONS[True].get(_raw_key(tag, True))
    if action is not None and action[0] == _VALUE:
        parser._store(action, vpos, length, top=True)
    return vpos + length


def _dataset_encoding(uid: str | None, buf: bytes, i: int):
    """(explicit, little) for the data set, trusting what the bytes show over the UID."""
    little = uid != EXPLICIT_BE
    explicit = uid != IMPLICIT_LE
    if uid is None:
        return _looks_explicit(buf, i), True
    if len(buf) >= i + 6 and _looks_explicit(buf, i) != explicit:
        explicit = not explicit  # e.g. an "explicit" file written implicitly (pydicom too)
    return explicit, little


def parse_file(path: str, size: int | None = None) -> list:
    """Parse the header of ``path``; return its row in ``tags.COLUMNS`` order.

    ``size`` (bytes) saves a stat when the caller knows it. Raises :class:`NotDicomError`,
    :class:`TruncatedFileError`, :class:`InvalidDicomError` or :class:`MissingTagError`
    (a required UID is absent), all naming ``path``.
    """
    with open(path, "rb") as handle:
        if size is None:
            size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise NotDicomError("empty file (0 bytes)", path=path)
        src = _FileSource(handle, size, path)
        return _parse_source(src, handle, path)


def _parse_source(src: _FileSource, handle, path: str) -> list:
    buf = src.buf
    if buf[128:132] == b"DICM":
        meta, pos = _parse_meta(src, 132, path)
    elif buf[:4] == b"DICM":
        meta, pos = _parse_meta(src, 4, path)
    elif len(buf) >= 6 and buf[:2] == b"\x02\x00" and _looks_explicit(buf, 0):
        meta, pos = _parse_meta(src, 0, path)
    else:
        meta, pos = None, 0
    uid = meta[_I_TS] if meta else None
    if meta and meta[T.INDEX["MediaStorageSOPClassUID"]] == DICOMDIR_CLASS:
        raise DicomdirSkipped("DICOMDIR index: skipped (its records are not followed; the "
                              "walk finds the files themselves)")
    if meta is None:
        explicit, little = _guess_bare(buf, path)
    elif uid in DEFLATED_TS:
        src, pos = InflateSource(handle, pos, path), 0
        src.load(0, 8)
        explicit, little = True, True
    else:
        if src.load(pos, 8) < 8 and pos >= src.size:
            raise InvalidDicomError("file holds a meta header but no data set", path=path)
        explicit, little = _dataset_encoding(uid, src.buf, pos - src.base)
    parser = _Parser(src, path, explicit, little)
    parser.walk(pos, None, 0, top=True)
    row = parser.finish()
    if meta is not None:
        for index, value in enumerate(meta):
            if value is not None and row[index] is None:
                row[index] = value
    _check_required(row, path)
    return row


def _check_required(row: list, path: str) -> None:
    for keyword in REQUIRED:
        if not row[T.INDEX[keyword]]:
            raise MissingTagError(f"required {keyword} is missing", path=path, tag=keyword)


def row_as_dict(row: list) -> dict:
    """A parsed row as ``{column: value}`` (for tests and debugging)."""
    return dict(zip(T.COLUMNS, row))


def parse_file_safe(path: str, size: int | None = None):
    """``(row, None)`` on success, ``(None, (error_type, reason, tag))`` on any failure.

    Never raises (except KeyboardInterrupt/SystemExit): a file that breaks the parser in an
    unforeseen way is recorded with the exception's type name.
    """
    try:
        return parse_file(path, size), None
    except DicomdirSkipped as exc:
        return None, ("DICOMDIR", str(exc), None)
    except (InvalidDicomError, MissingTagError, InvalidTagError) as exc:
        return None, (type(exc).__name__, exc.message, exc.tag)
    except OSError as exc:
        return None, ("OSError", f"cannot read: {exc.strerror or exc}", None)
    except Exception as exc:  # noqa: BLE001 - a scan must survive any file
        return None, (type(exc).__name__, f"unreadable header: {exc}", None)


# --- the decode profile -------------------------------------------------------------------
@dataclasses.dataclass
class Header:
    """What :func:`read_pixel_header` found: syntax, group 0028 values by keyword (binary US as
    ``int``, text as its first value's ``str``), Pixel Data location.

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


def _part10_meta(data, path: str, partial: bool = False):
    """``(source, transfer syntax UID, data set offset)`` of a Part 10 file's bytes (with
    preamble); None when there is no preamble or its meta group is broken."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    src = _BytesSource(data, path, partial)
    try:
        meta, pos = _parse_meta(src, 132, path, syntax_only=True)
    except (InvalidDicomError, struct.error):
        return None
    return src, meta[_I_TS] or "", pos


def deflated_start(data) -> int | None:
    """Offset of the deflated data set in a Part 10 file of the Deflated Explicit VR Little
    Endian syntax; ``None`` for any other file (or one whose meta group cannot be walked).

    >>> from pydicom.data import get_testdata_file
    >>> deflated_start(open(get_testdata_file("image_dfl.dcm"), "rb").read())
    334
    """
    found = _part10_meta(data, "")
    return found[2] if found and found[1] == ts.DEFLATED_EXPLICIT_VR_LE else None


def read_pixel_header(data, path: str = "", *, partial: bool = False,
                      fallback_ok: bool = False) -> Header | None:
    """Walk a Part 10 file's bytes (``data``) up to Pixel Data with the decode profile.

    Returns None when the decoders' fast path cannot use the result (pydicom's path then
    decides): no preamble, a broken meta group, an unknown or deflated syntax, a data set
    encoded otherwise than its syntax says, a malformed element (InvalidDicomError here),
    no Pixel Data, or a file that needs the full data set (``Header.fallback``: palette
    color, extended offset table, float pixels). Raises :class:`~dicomml.errors.TruncatedFileError` (naming the
    top-level element and its offset) when an element, Pixel Data included, runs past the end
    of ``data``, exactly where :func:`parse_file` finds the file cut short. ``partial``:
    ``data`` is only the file's first bytes: Pixel Data's value may lie beyond, and reaching
    the end of ``data`` before Pixel Data raises :class:`~dicomml.errors.TruncatedFileError`.
    ``fallback_ok``: also return a header marked ``fallback`` (a frame-range read of a file
    with an extended offset table needs only the Pixel Data items).
    """
    found = _part10_meta(data, path, partial)
    if found is None:
        return None
    src, syntax, pos = found
    if syntax in DEFLATED_TS:
        return None
    explicit, little = _dataset_encoding(syntax or None, data, pos)
    parser = _Parser(src, path, explicit, little, decode=True)
    try:
        parser.walk(pos, None, 0, top=True)
    except TruncatedFileError:
        raise
    except (InvalidDicomError, struct.error):
        return None
    as_declared = (explicit, little) == (syntax != IMPLICIT_LE, syntax != EXPLICIT_BE)
    header = _header(parser, syntax)
    if header is None or (header.fallback and not fallback_ok) or syntax not in ts.NAMES \
            or not as_declared:
        return None
    return header


def _header(parser: _Parser, syntax: str) -> Header | None:
    """The decode profile's result (None: no Pixel Data, or a value it does not take)."""
    if parser.pixel is None or parser.unsupported:
        return None
    values = parser.values
    palette = values.get("PhotometricInterpretation", "").upper() == "PALETTE COLOR"
    offset, length, vr = parser.pixel
    return Header(syntax, values, offset, length, vr, parser.fallback or palette)


def read_inflated_header(src: InflateSource, path: str) -> Header | None:
    """Walk a deflated data set (from ``src``, position 0) up to Pixel Data with the decode
    profile; None when it holds no Pixel Data the decoders take. Raises
    :class:`~dicomml.errors.TruncatedFileError` when the stream ends inside an element, InvalidDicomError when it
    inflates beyond ``src.cap`` first or is malformed."""
    parser = _Parser(src, path, True, True, decode=True)
    parser.walk(0, None, 0, top=True)
    return _header(parser, ts.DEFLATED_EXPLICIT_VR_LE)
