"""pylibjpeg plugins: openjpeg (JPEG 2000, HTJ2K), libjpeg (JPEG, JPEG-LS; GPL, extra
``fast``) and the Rust RLE decoder (pylibjpeg-rle, whose panics are BaseExceptions: the
pipeline catches them).

Example
-------
>>> PylibjpegOpenJpeg().package
'pylibjpeg-openjpeg'
"""

from __future__ import annotations

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.info import FrameInfo


def planar_to_interleaved(raw: np.ndarray, info: FrameInfo) -> np.ndarray:
    """``(samples * rows * columns,)`` in sample planes -> ``(rows, columns[, samples])``."""
    if info.samples_per_pixel == 1:
        return raw.reshape(info.rows, info.columns)
    planes = raw.reshape(info.samples_per_pixel, info.rows, info.columns)
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


class PylibjpegOpenJpeg(Decoder):
    """OpenJPEG through pylibjpeg-openjpeg (core dependency)."""

    name = "pylibjpeg-openjpeg"
    package = "pylibjpeg-openjpeg"
    module = "openjpeg"
    transfer_syntaxes = ts.J2K_FAMILY | ts.HTJ2K_FAMILY
    releases_gil = False

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.lib.decode(bytes(src))


class PylibjpegLibjpeg(Decoder):
    """Thomas Richter's libjpeg through pylibjpeg-libjpeg (GPL-3; extra ``fast``)."""

    name = "pylibjpeg-libjpeg"
    package = "pylibjpeg-libjpeg"
    module = "libjpeg"
    extra = "fast"
    transfer_syntaxes = ts.JPEG_FAMILY | ts.JPEG_LS_FAMILY
    releases_gil = False

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.lib.decode(bytes(src), colour_transform=0)


class PylibjpegRle(Decoder):
    """DICOM RLE Lossless through pylibjpeg-rle (Rust; core dependency)."""

    name = "pylibjpeg-rle"
    package = "pylibjpeg-rle"
    module = "rle.rle"
    transfer_syntaxes = frozenset({ts.RLE_LOSSLESS})
    releases_gil = False

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        out = self.lib.decode_frame(bytes(src), info.rows * info.columns,
                                    info.bits_allocated, "<")
        dtype = np.dtype(f"<u{info.dtype.itemsize}")
        return planar_to_interleaved(np.frombuffer(out, dtype=dtype), info)
