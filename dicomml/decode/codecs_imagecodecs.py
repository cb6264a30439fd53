"""imagecodecs (extra ``fast``): libjpeg-turbo, CharLS, OpenJPEG, OpenJPH and its own DICOM
RLE and lossless-JPEG decoders. All release the GIL while decoding.

Example
-------
>>> sorted(d.name for d in imagecodecs_decoders())[:2]
['imagecodecs-dicomrle', 'imagecodecs-htj2k']
"""

from __future__ import annotations

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.codecs_pylibjpeg import planar_to_interleaved
from dicomml.decode.info import FrameInfo
from dicomml.decode.threads import default_threads, on_decode_pool


class _Imagecodecs(Decoder):
    package = "imagecodecs"
    module = "imagecodecs"
    extra = "fast"
    releases_gil = True
    decodes_into = True  # imagecodecs checks out's shape and itemsize against the stream
    codec = ""  # imagecodecs' codec class name, checked for availability
    function = ""  # imagecodecs' decode function for one-sample frames

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return getattr(self.lib, self.function)(src)

    def decode_into(self, src: bytes, info: FrameInfo, out: np.ndarray) -> np.ndarray:
        result = getattr(self.lib, self.function)(src, out=out)
        if result is not out:
            raise ValueError(f"{self.name} did not decode into the buffer given")
        return out

    def _load(self):
        lib = super()._load()
        if lib is None or not getattr(getattr(lib, self.codec, None), "available", False):
            return None
        return lib


class ImagecodecsJpeg8(_Imagecodecs):
    """libjpeg-turbo 3 (8- and 12-bit DCT JPEG, and lossless SOF3)."""

    name = "imagecodecs-jpeg8"
    codec = "JPEG8"
    function = "jpeg8_decode"
    transfer_syntaxes = ts.JPEG_FAMILY

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        if info.samples_per_pixel == 3:  # raw components: the pipeline converts color
            return self.lib.jpeg8_decode(src, colorspace="RGB", outcolorspace="RGB")
        return self.lib.jpeg8_decode(src)


class ImagecodecsLjpeg(_Imagecodecs):
    """liblj92 lossless JPEG (process 14, any predictor)."""

    name = "imagecodecs-ljpeg"
    codec = "LJPEG"
    function = "ljpeg_decode"
    transfer_syntaxes = frozenset({ts.JPEG_LOSSLESS, ts.JPEG_LOSSLESS_SV1})


class ImagecodecsJpegSof3(_Imagecodecs):
    """imagecodecs' own lossless JPEG (SOF3) decoder."""

    name = "imagecodecs-jpegsof3"
    codec = "JPEGSOF3"
    function = "jpegsof3_decode"
    transfer_syntaxes = frozenset({ts.JPEG_LOSSLESS, ts.JPEG_LOSSLESS_SV1})


class ImagecodecsJpegls(_Imagecodecs):
    """CharLS (JPEG-LS lossless and near-lossless)."""

    name = "imagecodecs-jpegls"
    codec = "JPEGLS"
    function = "jpegls_decode"
    transfer_syntaxes = ts.JPEG_LS_FAMILY


class ImagecodecsJpeg2k(_Imagecodecs):
    """OpenJPEG (JPEG 2000, and HTJ2K since OpenJPEG 2.5)."""

    name = "imagecodecs-jpeg2k"
    codec = "JPEG2K"
    function = "jpeg2k_decode"
    transfer_syntaxes = ts.J2K_FAMILY | ts.HTJ2K_FAMILY

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.lib.jpeg2k_decode(src, planar=False, numthreads=frame_threads(info))

    def decode_into(self, src: bytes, info: FrameInfo, out: np.ndarray) -> np.ndarray:
        if self.lib.jpeg2k_decode(src, numthreads=frame_threads(info), out=out) is not out:
            raise ValueError(f"{self.name} did not decode into the buffer given")
        return out


#: Frames of at least this many pixels (a mammogram, a radiograph) are decoded by OpenJPEG on
#: several threads when nothing else uses the cores; smaller frames gain nothing from it.
THREADED_FRAME_PIXELS = 1 << 20


def frame_threads(info: FrameInfo) -> int:
    """Threads OpenJPEG may use inside one frame: 1 for small frames, inside DataLoader
    workers and on the decode pool's own threads (frames are then decoded side by side);
    else the cores :func:`~dicomml.decode.threads.default_threads` allows."""
    if info.rows * info.columns < THREADED_FRAME_PIXELS or on_decode_pool():
        return 1
    return default_threads(releases_gil=True)


class ImagecodecsHtj2k(_Imagecodecs):
    """OpenJPH (HTJ2K only)."""

    name = "imagecodecs-htj2k"
    codec = "HTJ2K"
    function = "htj2k_decode"
    transfer_syntaxes = ts.HTJ2K_FAMILY

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.lib.htj2k_decode(src, planar=False)


class ImagecodecsDicomRle(_Imagecodecs):
    """imagecodecs' DICOM RLE decoder."""

    name = "imagecodecs-dicomrle"
    codec = "DICOMRLE"
    transfer_syntaxes = frozenset({ts.RLE_LOSSLESS})

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        dtype = np.dtype(f"<u{info.dtype.itemsize}")
        out = self.lib.dicomrle_decode(src, dtype)
        return planar_to_interleaved(np.frombuffer(out, dtype=dtype), info)

    def decode_into(self, src: bytes, info: FrameInfo, out: np.ndarray) -> np.ndarray:
        dtype = np.dtype(f"<u{info.dtype.itemsize}")
        flat = out.view(np.uint8).reshape(-1)  # little-endian bytes, as the segments hold
        result = self.lib.dicomrle_decode(src, dtype, out=flat)
        if result.size != flat.size:  # a short stream fills only part of the buffer
            raise ValueError(f"{self.name} decoded {result.size} bytes, the frame has "
                             f"{flat.size}")
        return out


def imagecodecs_decoders() -> list[Decoder]:
    """One instance of every imagecodecs-backed decoder."""
    return [ImagecodecsJpeg8(), ImagecodecsLjpeg(), ImagecodecsJpegSof3(), ImagecodecsJpegls(),
            ImagecodecsJpeg2k(), ImagecodecsHtj2k(), ImagecodecsDicomRle()]
