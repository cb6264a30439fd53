"""Deflated Image Frame Compression (1.2.840.10008.1.2.8.1, PS3.5 section 8.2.16, Supplement
244): each frame is the native little-endian frame, compressed on its own with Deflate (RFC
1951, no zlib or gzip wrapper) and encapsulated in Pixel Data fragments. The data set itself
is not deflated (unlike Deflated Explicit VR Little Endian). 1-bit frames (segmentations) are
bit-packed, least significant bit first, each frame starting on a byte boundary.

Inflation is bounded by the frame's declared size: a stream that would inflate further is
refused before any larger buffer exists.

Example
-------
>>> import zlib
>>> import numpy as np
>>> from dicomml.decode.info import FrameInfo
>>> info = FrameInfo("1.2.840.10008.1.2.8.1", rows=1, columns=2, bits_allocated=16)
>>> packer = zlib.compressobj(wbits=-15)
>>> stream = packer.compress(b"\\x01\\x00\\x02\\x00") + packer.flush()
>>> DeflateFrameDecoder().decode(stream, info)
array([[1, 2]], dtype=uint16)
"""

from __future__ import annotations

import zlib

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.codecs_native import NativeDecoder
from dicomml.decode.info import FrameInfo


def inflate_frame(src: bytes, size: int) -> bytes:
    """The raw Deflate stream ``src`` inflated to exactly ``size`` bytes.

    Raises ``ValueError`` when the stream is corrupt, ends before ``size`` bytes, or holds
    more than ``size`` bytes (nothing beyond ``size + 1`` bytes is ever allocated).
    """
    inflater = zlib.decompressobj(wbits=-15)
    try:
        data = inflater.decompress(bytes(src), size + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt Deflate stream: {exc}") from None
    if len(data) > size:
        raise ValueError(f"Deflate stream inflates beyond the frame's {size} bytes")
    if len(data) < size:
        raise ValueError(f"Deflate stream inflates to {len(data)} bytes, the frame needs {size}")
    return data


class DeflateFrameDecoder(Decoder):
    """Inflates each frame with the standard library's zlib, then reads it as native data."""

    name = "zlib-deflate"
    package = "python"
    module = "zlib"
    transfer_syntaxes = frozenset({ts.DEFLATED_IMAGE_FRAME})
    releases_gil = True  # zlib releases the GIL while inflating

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        """One frame: ``(rows, columns[, samples])`` stored values, samples interleaved."""
        raw = inflate_frame(src, info.stored_frame_nbytes)
        if info.bits_allocated == 1:
            bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
            return bits[:info.frame_pixels].reshape(info.frame_shape)
        return _NATIVE.decode(raw, info)


_NATIVE = NativeDecoder()
