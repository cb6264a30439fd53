"""PALETTE COLOR (PS3.3 C.7.6.3.1.5): the one place indices become RGB, for ``read_pixels``
and ``load_series`` alike. The lookup table is built once per file by pydicom's
``apply_color_lut`` over every index the descriptor covers (segmented tables included), then
applied with one gather: index ``i`` maps to row ``clip(i - first, 0, entries - 1)``.

Example
-------
>>> import pydicom
>>> from pydicom.data import get_testdata_file
>>> path = get_testdata_file("examples_palette.dcm")
>>> lut = palette_lut(pydicom.dcmread(path, stop_before_pixels=True), path)
>>> lut[0].shape, lut[1]
((256, 3), 0)
"""

from __future__ import annotations

import numpy as np

from dicomml.errors import InvalidTagError, MissingTagError


def palette_lut(header, path: str) -> tuple[np.ndarray, int]:
    """``(table, first)``: the (entries, 3) RGB table of a PALETTE COLOR header (uint8 or
    uint16, by the LUTs' bits) and the first index it maps; index ``i`` maps to row
    ``clip(i - first, 0, entries - 1)`` (PS3.3 C.7.6.3.1.5; the table is built by pydicom's
    ``apply_color_lut``). MissingTagError naming the file and the descriptor or data element
    when the header lacks one."""
    from pydicom.pixels.processing import apply_color_lut

    for colour in ("Red", "Green", "Blue"):
        descriptor = f"{colour}PaletteColorLookupTableDescriptor"
        if descriptor not in header:
            raise MissingTagError("a PALETTE COLOR image needs its lookup tables",
                                  path=path, tag=descriptor)
        data = f"{colour}PaletteColorLookupTableData"
        if data not in header and f"Segmented{data}" not in header:
            raise MissingTagError("a PALETTE COLOR image needs its lookup tables",
                                  path=path, tag=data)
    entries, first = _palette_range(header, path)
    indices = np.arange(first, first + entries, dtype=np.uint16 if first + entries > 256
                        else np.uint8)  # every index the table covers, in order
    try:
        table = apply_color_lut(indices, header)
    except Exception as exc:  # noqa: BLE001 - a malformed table, named by file and tag
        raise InvalidTagError(f"unusable palette lookup table: {exc}", path=path,
                              tag="RedPaletteColorLookupTableData") from exc
    return table, int(first)


def _palette_range(header, path: str) -> tuple[int, int]:
    """``(entries, first)`` of the red descriptor (0 entries means 65536), the entries cut to
    the indices a stored value of at most 16 bits can take (``first + entries <= 65536``: the
    rest are unreachable, and ``read_pixels``, through pydicom, ignores them too);
    InvalidTagError unless it holds three numbers with ``0 <= first <= 65535``."""
    tag = "RedPaletteColorLookupTableDescriptor"
    try:
        entries, first, _ = (int(v) for v in header[tag].value)
    except Exception as exc:  # noqa: BLE001 - wrong count, VR or value of the descriptor
        raise InvalidTagError(f"unusable palette descriptor: {exc}", path=path, tag=tag) from exc
    if not 0 <= first <= 65535:
        raise InvalidTagError(f"the palette descriptor's first mapped value {first} is not "
                              "in 0..65535", path=path, tag=tag)
    return min(entries or 65536, 65536 - first), first


def apply_palette(indices: np.ndarray, lut: tuple[np.ndarray, int]) -> np.ndarray:
    """``indices`` (any shape, stored values) -> RGB with a trailing axis of 3, in the table's
    dtype, through ``lut`` = :func:`palette_lut`'s ``(table, first)``."""
    table, first = lut
    return table[np.clip(indices.astype(np.int64) - first, 0, len(table) - 1)]
