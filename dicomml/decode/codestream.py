"""Cheap parsers for the headers of JPEG, JPEG-LS and JPEG 2000 codestreams.

They read a few dozen bytes so that the decode pipeline can check a frame's declared size
against the DICOM header *before* a native decoder allocates anything, and learn the
component IDs / JFIF marker (JPEG color space) and precision / signedness (JPEG 2000).

Example
-------
>>> import imagecodecs, numpy as np
>>> j2k = imagecodecs.jpeg2k_encode(np.zeros((4, 6), np.uint16), codecformat="J2K")
>>> j2k_header(j2k)["rows"], j2k_header(j2k)["columns"]
(4, 6)
"""

from __future__ import annotations

import struct

# Start-of-frame markers of the JPEG family (SOF0..SOF15 minus DHT/JPG/DAC) and JPEG-LS SOF55.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                          0xCD, 0xCE, 0xCF, 0xF7})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_J2K_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def jpeg_header(src: bytes | memoryview, limit: int = 1 << 20) -> dict | None:
    """Parse JPEG / JPEG-LS markers up to the start of frame.

    Returns ``{'rows', 'columns', 'components', 'precision', 'component_ids', 'jfif',
    'marker'}`` or ``None`` when no SOF marker is found in the first ``limit`` bytes.
    """
    view = _byte_view(src)[:limit]  # no copy: only the SOF / APP0 segments are copied
    if bytes(view[:2]) != b"\xff\xd8":
        return None
    pos, jfif, size = 2, False, len(view)
    while pos + 4 <= size:
        if view[pos] != 0xFF:
            return None
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = (view[pos + 2] << 8) | view[pos + 3]
        if marker == 0xE0 and bytes(view[pos + 4:pos + 2 + length]).startswith(b"JFIF"):
            jfif = True
        if marker in _SOF_MARKERS:
            segment = bytes(view[pos + 4:pos + 2 + length])
            if len(segment) >= 6:
                return _sof_fields(segment, marker, jfif)
        pos += 2 + length
    return None


def _byte_view(src) -> memoryview:
    """``src`` as a flat memoryview of unsigned bytes (copied only if it is not one)."""
    view = memoryview(src)
    if view.format in ("B", "b", "c") and view.ndim == 1 and view.c_contiguous:
        return view.cast("B") if view.format != "B" else view
    return memoryview(bytes(view))


def _sof_fields(segment: bytes, marker: int, jfif: bool) -> dict:
    """The fields of a start-of-frame segment (its bytes after the length)."""
    precision, rows, columns, components = struct.unpack(">BHHB", segment[:6])
    ids = [segment[6 + 3 * i] for i in range(components) if 6 + 3 * i < len(segment)]
    return {"rows": rows, "columns": columns, "components": components,
            "precision": precision, "component_ids": ids, "jfif": jfif, "marker": marker}


def has_end_marker(src: bytes | memoryview, max_padding: int = 8) -> bool:
    """True when the codestream ends with EOI/EOC (``FF D9``), ignoring trailing padding
    (``00`` or ``FF`` bytes, which some writers append).

    JPEG, JPEG-LS and JPEG 2000 all end so; a frame without it was truncated, and decoders
    then either return a silently incomplete image or (CharLS) spin for many seconds.
    """
    tail = bytes(src[-(max_padding + 2):])
    end = tail.rfind(b"\xff\xd9")
    return end >= 0 and not tail[end + 2:].strip(b"\x00\xff")


#: JPEG lossless (process 14, and its selection value 1) frames may lack the end-of-image
#: marker and still decode, when their data hold the whole frame (:func:`holds_whole_frame`)
END_MARKER_OPTIONAL = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
#: bytes appended to probe a frame without end marker: bits 1010... (never a marker byte)
_PROBE = b"\xaa" * 64 + b"\xff\xd9"


def holds_whole_frame(src: bytes | memoryview, decode) -> tuple[bool, object]:
    """Whether a JPEG frame without end-of-image marker still holds every pixel's data, and
    its decoded image.

    ``decode(stream) -> ndarray`` is a decoder of the frame's size. Trailing ``FF`` fill
    bytes are dropped; then the frame is decoded
    twice: with ``FF D9`` appended (a truncated stream is then zero-filled by the decoder, as
    libjpeg does at a marker) and with 64 bytes ``AA`` (bits 1010...) before ``FF D9``. A
    decoder reads past the given data only when the frame lacks entropy-coded data for some
    pixel; then the two fills decode differently (the first missing bit is 0 in one, 1 in
    the other). Equal images: the data hold the whole frame. This replaces the end-marker
    check (a marker says nothing about the data before it; its absence alone does not mean
    a pixel is missing). A decoder that raises on the short stream raises here too.
    Returns ``(whole, image decoded with FF D9 appended)``.

    Example
    -------
    >>> import imagecodecs, numpy as np
    >>> frame = np.random.default_rng(0).integers(0, 4096, (16, 20)).astype(np.uint16)
    >>> jpeg = imagecodecs.jpeg8_encode(frame, lossless=True, bitspersample=12)
    >>> holds_whole_frame(jpeg[:-2], imagecodecs.jpeg8_decode)[0]      # no FF D9, data whole
    True
    >>> holds_whole_frame(jpeg[:-12], imagecodecs.jpeg8_decode)[0]     # 10 data bytes lost
    False
    """
    import warnings

    import numpy as np

    data = bytes(src).rstrip(b"\xff")  # fill bytes may precede a marker (T.81 B.1.1.2)
    image = decode(data + b"\xff\xd9")
    with warnings.catch_warnings():  # a decoder refusing the probe is no news to the user
        warnings.simplefilter("ignore")
        probe = decode(data + _PROBE)
    return bool(np.array_equal(np.asarray(image), np.asarray(probe))), image


def j2k_header(src: bytes | memoryview) -> dict | None:
    """Parse the SIZ segment of a JPEG 2000 / HTJ2K codestream (J2K, or JP2-wrapped).

    Returns ``{'rows', 'columns', 'components', 'precision', 'signed'}`` or ``None``.
    """
    data = bytes(src[:4096])
    if data.startswith(_J2K_SIGNATURE):
        start = data.find(b"\xff\x4f\xff\x51")
        if start < 0:
            return None
        data = data[start:]
    if data[:4] != b"\xff\x4f\xff\x51" or len(data) < 4 + 38 + 3:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[8:24])
    (components,) = struct.unpack(">H", data[40:42])
    ssiz = data[42]
    return {"rows": ysiz - yosiz, "columns": xsiz - xosiz, "components": components,
            "precision": (ssiz & 0x7F) + 1, "signed": bool(ssiz & 0x80)}


def rle_offsets(src: bytes | memoryview) -> list[int] | str:
    """The segment offsets of a DICOM RLE frame's 64-byte header, or why they are unusable.

    Valid: 1 to 15 segments, the first at byte 64, offsets strictly increasing and inside
    the frame. Native RLE decoders trust these offsets (an offset beyond the frame makes
    imagecodecs read out of bounds), so they are checked before any decoder runs.

    Example
    -------
    >>> rle_offsets(struct.pack("<16I", 1, 64, *[0] * 14) + b"\\x00\\x00")
    [64]
    >>> rle_offsets(struct.pack("<16I", 2, 64, 2**32 - 248, *[0] * 13) + b"\\x00\\x00")
    'RLE segment 2 starts at byte 4294967048, beyond the 66-byte frame'
    """
    if len(src) < 64:
        return f"RLE frame of {len(src)} bytes is shorter than its 64-byte header"
    header = struct.unpack_from("<16I", src, 0)
    count, offsets = header[0], list(header[1:1 + min(header[0], 15)])
    if not 1 <= count <= 15:
        return f"RLE header declares {count} segments (1 to 15 allowed)"
    if offsets[0] != 64:
        return f"RLE segment 1 starts at byte {offsets[0]}, not 64"
    for number, (before, offset) in enumerate(zip(offsets, offsets[1:]), start=2):
        if offset >= len(src):
            return (f"RLE segment {number} starts at byte {offset}, beyond the "
                    f"{len(src)}-byte frame")
        if offset <= before:
            return f"RLE segment {number} starts at byte {offset}, before segment {number - 1}"
    return offsets
