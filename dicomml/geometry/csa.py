"""Siemens CSA headers and the ASCCONV series protocol, read with every size bounded.

Siemens MR files carry two private "CSA" headers in the ``SIEMENS CSA HEADER`` block of group
0029: the *image* header (0029,xx10) and the *series* header (0029,xx20). Each is a binary list of
named tags, either CSA2 (starts with ``b"SV10"``, tag count at byte 8, tags from byte 16) or the
older CSA1 (tag count at byte 0, tags from byte 8). A tag is 84 bytes: name (64, NUL-padded), VM
(int32), VR (4), syngo datatype (int32), item count (int32), 4 unused; each item is 16 bytes
(four int32, the second the item length) followed by that many bytes of text padded to 4. All
integers are little-endian.

Values stay text here: :func:`parse_csa` gives ``{name: [item strings]}``, :func:`csa_floats`
turns one tag into floats in the tag's own unit (``SliceNormalVector``: unit vector, LPS;
``B_value``: s/mm^2; ``MosaicRefAcqTimes``: ms). The series header's ``MrPhoenixProtocol`` holds
the ASCCONV protocol text; :func:`ascconv` gives its ``key = value`` lines and
:func:`protocol_vector` one of its (Sag, Cor, Tra) vectors, which are LPS x, y, z (positions in
mm).

Example
-------
>>> import struct
>>> item = struct.pack("<4i", 3, 3, 77, 3) + b"12\\0\\0"
>>> raw = (struct.pack("<2I", 1, 77) + b"NumberOfImagesInMosaic".ljust(64, b"\\0")
...        + struct.pack("<i4siii", 1, b"IS\\0\\0", 6, 1, 77) + item)
>>> parse_csa(raw)
{'NumberOfImagesInMosaic': ['12']}
>>> csa_floats(parse_csa(raw), "NumberOfImagesInMosaic")
[12.0]
>>> ds = pydicom.dcmread("mosaic.dcm", stop_before_pixels=True)  # doctest: +SKIP
>>> ascconv(csa_header(ds, "series"))["sSliceArray.lSize"]         # doctest: +SKIP
'35'
"""

from __future__ import annotations

import functools
import re
import struct

import numpy as np

from dicomml.errors import InvalidTagError

#: private creator of the (0029,xxNN) CSA block
CSA_HEADER = "SIEMENS CSA HEADER"
_CSA_IMAGE = 0x10   # (0029,xx10) CSA Image Header Info
_CSA_SERIES = 0x20  # (0029,xx20) CSA Series Header Info

_CSA_MAX_TAGS = 1024
_CSA_MAX_ITEMS = 4096


# --- CSA header ---------------------------------------------------------------------------------
def parse_csa(raw: bytes, *, path=None, tag: str = "CSAImageHeaderInfo") -> dict[str, list[str]]:
    """Parse a Siemens CSA header (CSA2 "SV10" or CSA1) into ``{name: [item strings]}``.

    Every read is bounded by ``len(raw)``; a header that lies about its sizes raises
    :class:`~dicomml.errors.InvalidTagError` naming ``path`` and ``tag``. Items are decoded as
    Latin-1 up to their first NUL; a tag's list holds its first ``VM`` items (all non-empty items
    when VM is 0).

    Example
    -------
    >>> hdr = parse_csa(ds[0x0029, 0x1010].value)                  # doctest: +SKIP
    >>> csa_floats(hdr, "SliceNormalVector")                      # doctest: +SKIP
    [0.0, 0.10105629, 0.99488071]
    """
    raw = bytes(raw)

    def fail(why: str):
        return InvalidTagError(f"Siemens CSA header is unreadable: {why}", path=path, tag=tag)

    def ints(offset: int, count: int) -> tuple[int, ...]:
        if offset < 0 or offset + 4 * count > len(raw):
            raise fail(f"truncated at byte {offset} of {len(raw)}")
        return struct.unpack_from(f"<{count}i", raw, offset)

    if raw[:4] == b"SV10":
        n_tags, offset = ints(8, 1)[0], 16
    else:
        n_tags, offset = ints(0, 1)[0], 8
    if not 0 < n_tags <= _CSA_MAX_TAGS:
        raise fail(f"implausible number of tags {n_tags}")
    header: dict[str, list[str]] = {}
    for _ in range(n_tags):
        if offset + 84 > len(raw):
            raise fail(f"tag header truncated at byte {offset} of {len(raw)}")
        name = raw[offset:offset + 64].split(b"\0", 1)[0].decode("latin-1")
        vm = ints(offset + 64, 1)[0]
        n_items = ints(offset + 76, 1)[0]
        if not 0 <= n_items <= _CSA_MAX_ITEMS or vm < 0:
            raise fail(f"tag {name!r} declares {n_items} items, VM {vm}")
        offset += 84
        items = []
        for _ in range(n_items):
            length = ints(offset, 4)[1]
            offset += 16
            if length < 0 or offset + length > len(raw):
                raise fail(f"item of {name!r} runs past the end ({length} bytes at {offset})")
            items.append(raw[offset:offset + length].split(b"\0", 1)[0].decode("latin-1").strip())
            offset += length + (-length) % 4
        header[name] = items[:vm] if vm else [item for item in items if item]
    return header


def csa_floats(header: dict[str, list[str]], name: str) -> list[float] | None:
    """The numeric items of CSA tag ``name`` as floats, or None when absent or empty/unparseable.

    Units are the tag's own (e.g. ``SliceNormalVector`` unit LPS vector, ``B_value`` s/mm^2,
    ``MosaicRefAcqTimes`` ms); empty items are skipped.

    Example
    -------
    >>> csa_floats({"B_value": ["1000"], "Empty": [""]}, "B_value"), csa_floats({}, "B_value")
    ([1000.0], None)
    """
    try:
        values = [float(item) for item in header.get(name, []) if item != ""]
    except ValueError:
        return None
    return values or None


def csa_header(ds, which: str = "image", *, path=None) -> dict[str, list[str]]:
    """Parsed CSA ``"image"`` (0029,xx10) or ``"series"`` (0029,xx20) header; ``{}`` if absent.

    Errors name ``path`` and the element as ``(0029,1010)``-style tag.

    Example
    -------
    >>> image = csa_header(ds, "image", path="mosaic.dcm")         # doctest: +SKIP
    >>> image["NumberOfImagesInMosaic"]                           # doctest: +SKIP
    ['35']
    """
    element = _csa_element(ds, which)
    if element is None or not element.value:
        return {}
    tag = f"({element.tag.group:04X},{element.tag.element:04X})"
    return dict(_parse_cached(bytes(element.value), None if path is None else str(path), tag))


@functools.lru_cache(maxsize=16)
def _parse_cached(raw: bytes, path, tag: str) -> dict[str, list[str]]:
    """parse_csa, memoised: one mosaic's header is read by several functions in a row."""
    return parse_csa(raw, path=path, tag=tag)


def _csa_element(ds, which: str):
    offset = _CSA_IMAGE if which == "image" else _CSA_SERIES
    try:
        block = ds.private_block(0x0029, CSA_HEADER)
    except KeyError:
        return None
    return block[offset] if offset in block else None


# --- the series protocol (ASCCONV text inside the CSA series header) ---------------------------
_ASCCONV = re.compile(rb"### ASCCONV BEGIN.*?###\s*\n(.*?)### ASCCONV END", re.S)
_ASSIGN = re.compile(r"^\s*([A-Za-z_][\w.\[\]]*)\s*=\s*(.*?)\s*(?:#.*)?$")


def ascconv(series_header: dict[str, list[str]]) -> dict[str, str]:
    """The ``key = value`` lines of the series protocol's ASCCONV block (``{}`` if none).

    Read from ``MrPhoenixProtocol``, else ``MrProtocol``; values are text with surrounding double
    quotes and trailing ``#`` comments removed.

    Example
    -------
    >>> protocol = ascconv(csa_header(ds, "series"))              # doctest: +SKIP
    >>> protocol["sSliceArray.lSize"]                             # doctest: +SKIP
    '25'
    """
    for name in ("MrPhoenixProtocol", "MrProtocol"):
        text = "".join(series_header.get(name, []))
        match = _ASCCONV.search(text.encode("latin-1"))
        if match:
            lines = match.group(1).decode("latin-1").splitlines()
            return {m.group(1): m.group(2).strip('"') for m in map(_ASSIGN.match, lines) if m}
    return {}


def protocol_vector(protocol: dict[str, str], prefix: str) -> np.ndarray:
    """A Siemens (Sag, Cor, Tra) vector from the protocol; missing components are 0.

    Returns float64 ``(3,)`` in LPS axis order (x, y, z), in the field's unit (mm for
    ``sPosition``, unitless for ``sNormal``).

    Example
    -------
    >>> protocol_vector({"sSliceArray.asSlice[0].sNormal.dTra": "1"},
    ...                 "sSliceArray.asSlice[0].sNormal").tolist()
    [0.0, 0.0, 1.0]
    """
    return np.array([float(protocol.get(f"{prefix}.d{axis}", 0.0)) for axis in ("Sag", "Cor", "Tra")])
