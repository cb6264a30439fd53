"""Uncompressed (native) pixel data: little/big endian, 1-bit, planar, YBR_FULL_422.

Example
-------
>>> import numpy as np
>>> from dicomml.decode.info import FrameInfo
>>> info = FrameInfo("1.2.840.10008.1.2.2", rows=1, columns=2, bits_allocated=16)
>>> NativeDecoder().decode(b"\\x00\\x01\\x00\\x02", info)
array([[1, 2]], dtype=uint16)
"""

from __future__ import annotations

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.info import FrameInfo


def _expand_ybr_422(raw: np.ndarray, info: FrameInfo) -> np.ndarray:
    """``Y1 Y2 Cb Cr`` per horizontal pixel pair -> ``(rows, columns, 3)`` YBR_FULL."""
    pairs = raw.reshape(info.rows, info.columns // 2, 4)
    out = np.empty((info.rows, info.columns // 2, 2, 3), dtype=raw.dtype)
    out[:, :, 0, 0] = pairs[:, :, 0]
    out[:, :, 1, 0] = pairs[:, :, 1]
    out[:, :, :, 1] = pairs[:, :, 2:3]
    out[:, :, :, 2] = pairs[:, :, 3:4]
    return out.reshape(info.rows, info.columns, 3)


class NativeDecoder(Decoder):
    """Reinterprets stored bytes with numpy: byte order, planar configuration, 4:2:2."""

    name = "numpy"
    package = "numpy"
    module = "numpy"
    transfer_syntaxes = ts.NATIVE
    releases_gil = True

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        """Decode one native frame (``src`` already holds exactly this frame's bytes)."""
        if info.bits_allocated == 1:  # frames.py unpacks bits; src is one byte per pixel
            return np.frombuffer(src, np.uint8).reshape(info.frame_shape)
        order = ">" if info.transfer_syntax == ts.EXPLICIT_VR_BE else "<"
        dtype = info.dtype.newbyteorder(order)
        raw = np.frombuffer(src, dtype=dtype)
        if order == ">":
            raw = raw.astype(info.dtype)
        if info.photometric_interpretation == "YBR_FULL_422" and info.samples_per_pixel == 3:
            return _expand_ybr_422(raw, info)
        if info.samples_per_pixel > 1 and info.planar_configuration == 1:
            planes = raw.reshape(info.samples_per_pixel, info.rows, info.columns)
            return np.ascontiguousarray(planes.transpose(1, 2, 0))
        return raw.reshape(info.frame_shape)
