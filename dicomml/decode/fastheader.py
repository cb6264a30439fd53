"""The decoders' view of the one header parser (:mod:`dicomml.catalog.header`): the image
pixel module and the Pixel Data location, without building a pydicom ``Dataset`` (which costs
~1-5 ms per file in pure Python).

:func:`parse_header` walks a Part 10 file's bytes with the catalog's bounded parser in its
decode profile (:func:`dicomml.catalog.header.read_pixel_header`): Implicit / Explicit VR
Little Endian, Explicit VR Big Endian and the encapsulated syntaxes; deflated data sets are
inflated by :mod:`dicomml.decode.deflated`. It returns ``None`` - and the caller falls back to
pydicom - for anything else: no preamble, palette color, extended offset tables, float pixel
data. An element whose length runs past the end of the data raises :class:`TruncatedData`
(a :class:`~dicomml.errors.TruncatedFileError` whose ``element`` and ``offset`` name the
top-level element): the same verdict as the catalog's, since it is the same parser.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> header = parse_header(open(get_testdata_file("CT_small.dcm"), "rb").read())
>>> header.syntax, header.values["Rows"], header.pixel_length
('1.2.840.10008.1.2.1', 128, 32768)
"""

from __future__ import annotations

from dicomml.catalog.header import (  # noqa: F401 - the decoders' names for them
    Header,
    deflated_start,
    describe_tag,
    read_pixel_header,
    tag_keyword,
)
from dicomml.errors import TruncatedFileError

#: What :func:`parse_header` raises for data that end inside an element (``element``: the
#: tag as an int or None, ``offset``: where it starts).
TruncatedData = TruncatedFileError


def parse_header(data: bytes, *, partial: bool = False, path: str = "") -> Header | None:
    """Parse a whole file's bytes; ``None`` when pydicom's path must handle it.

    Raises :class:`TruncatedData` when an element (Pixel Data included) runs past the end.
    ``partial``: ``data`` is the file's first bytes only: Pixel Data's value may lie beyond.
    """
    return read_pixel_header(data, path, partial=partial)
