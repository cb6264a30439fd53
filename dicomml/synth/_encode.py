"""Pixel Data encoding for each transfer syntax the synthetic writer supports.

Native (uncompressed) syntaxes are written by pydicom from raw little- or big-endian bytes.
Compressed syntaxes are encoded frame by frame and encapsulated (Basic Offset Table
included): RLE (pydicom's own encoder), JPEG-LS (pyjpegls via pydicom), JPEG 2000
(pylibjpeg-openjpeg via pydicom; imagecodecs for frames under 32 pixels), HTJ2K lossless and the JPEG processes (imagecodecs).
:func:`supported_transfer_syntaxes` lists what this installation can write.

Not offered: the RPCL-ordered HTJ2K lossless variant (imagecodecs cannot choose the
progression order).

Example
-------
>>> import numpy as np
>>> from pydicom.uid import ExplicitVRLittleEndian
>>> frames = np.arange(8, dtype="<u2").reshape(1, 2, 4)
>>> encoded = encode_pixel_data(frames, ExplicitVRLittleEndian, bits_stored=16)
>>> len(encoded.value), encoded.vr, encoded.lossy
(16, 'OW', False)
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np
from pydicom.encaps import encapsulate
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

NATIVE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                   DeflatedExplicitVRLittleEndian)

# lossy settings: JPEG-LS allowed error, JPEG 2000 compression ratio, JPEG quality
JPEGLS_NEAR_ERROR = 2
J2K_RATIO = 4
J2K_PSNR = 60
HTJ2K_STEP = 0.0002
JPEG_QUALITY = 90


@dataclass(frozen=True)
class EncodedPixels:
    """The Pixel Data value, its VR, and whether (and how) the encoding lost information."""

    value: bytes
    vr: str
    lossy: bool
    encapsulated: bool = False
    method: str = ""          # LossyImageCompressionMethod, for lossy encodings


@dataclass(frozen=True)
class _Codec:
    encode: object            # (frame, kwargs) -> bytes
    lossy: bool
    method: str
    needs: str                # module that must be importable
    max_bits: int = 16


def encode_pixel_data(frames: np.ndarray, transfer_syntax: str, *, bits_stored: int,
                      photometric: str = "MONOCHROME2") -> EncodedPixels:
    """Encode ``frames`` (n, rows, columns) of stored integers for ``transfer_syntax``.

    Raises ``ValueError`` for a syntax this installation cannot write, or one that cannot
    hold the data (e.g. JPEG baseline with more than 8 bits stored).
    """
    transfer_syntax = check_transfer_syntax(transfer_syntax, bits_stored)
    if transfer_syntax in NATIVE_SYNTAXES:
        return _native(frames, big_endian=transfer_syntax == ExplicitVRBigEndian)
    codec = _CODECS[transfer_syntax]
    kwargs = _pixel_kwargs(frames, bits_stored, photometric)
    fragments = [codec.encode(np.ascontiguousarray(f), kwargs) for f in frames]
    return EncodedPixels(encapsulate(fragments, has_bot=True), "OB", lossy=codec.lossy,
                         encapsulated=True, method=codec.method)


def check_transfer_syntax(transfer_syntax: str, bits_stored: int) -> UID:
    """``transfer_syntax`` as a UID; ``ValueError`` unless it can be written here with
    ``bits_stored`` bits."""
    transfer_syntax = UID(transfer_syntax)
    if transfer_syntax not in supported_transfer_syntaxes():
        raise ValueError(f"dicomml.synth cannot write transfer syntax {transfer_syntax} "
                         f"({transfer_syntax.name}); supported here: "
                         f"{', '.join(supported_transfer_syntaxes())}")
    codec = _CODECS.get(transfer_syntax)
    if codec is not None and bits_stored > codec.max_bits:
        raise ValueError(f"{transfer_syntax.name} holds at most {codec.max_bits} bits stored, "
                         f"got {bits_stored}")
    return transfer_syntax


def supported_transfer_syntaxes() -> tuple[str, ...]:
    """The transfer syntax UIDs this installation can write."""
    compressed = tuple(uid for uid, codec in _CODECS.items() if _importable(codec.needs))
    return NATIVE_SYNTAXES + compressed


def is_lossy(transfer_syntax: str) -> bool:
    """Whether writing ``transfer_syntax`` loses information."""
    codec = _CODECS.get(transfer_syntax)
    return bool(codec and codec.lossy)


@functools.cache
def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _native(frames: np.ndarray, *, big_endian: bool) -> EncodedPixels:
    dtype = frames.dtype.newbyteorder(">" if big_endian else "<")
    raw = np.ascontiguousarray(frames, dtype=dtype).tobytes()
    if len(raw) % 2:
        raw += b"\x00"
    return EncodedPixels(raw, "OW" if frames.dtype.itemsize == 2 else "OB", lossy=False)


def _pixel_kwargs(frames, bits_stored, photometric) -> dict:
    """The image-pixel description pydicom's encoders need for one frame."""
    return dict(rows=frames.shape[1], columns=frames.shape[2], samples_per_pixel=1,
                bits_allocated=frames.dtype.itemsize * 8, bits_stored=bits_stored,
                pixel_representation=int(frames.dtype.kind == "i"),
                photometric_interpretation=photometric, number_of_frames=1)


def _pydicom_encoder(name: str, plugin: str, **options):
    """An encode function using pydicom's encoder ``name`` with ``plugin``."""
    def encode(frame, kwargs):
        from pydicom.pixels import encoders

        encoder = getattr(encoders, name)
        return encoder.encode(frame, encoding_plugin=plugin, **kwargs, **options)
    return encode


def _j2k(*, lossless: bool):
    """JPEG 2000 by pylibjpeg-openjpeg through pydicom; frames under 32 pixels, which its
    fixed 6 resolution levels cannot hold, by imagecodecs with fewer levels."""
    via_pydicom = _pydicom_encoder(
        "JPEG2000LosslessEncoder" if lossless else "JPEG2000Encoder", "pylibjpeg",
        **({} if lossless else {"j2k_cr": [J2K_RATIO]}))

    def encode(frame, kwargs):
        if min(frame.shape) >= 32:
            return via_pydicom(frame, kwargs)
        import imagecodecs

        levels = max(1, int(np.log2(min(frame.shape))) - 1)
        quality = {"level": 0, "reversible": True} if lossless else {"level": J2K_PSNR}
        return imagecodecs.jpeg2k_encode(frame, codecformat=imagecodecs.JPEG2K.CODEC.J2K,
                                         bitspersample=kwargs["bits_stored"],
                                         resolutions=levels, **quality)
    return encode


def _bit_pattern(frame: np.ndarray, bits_stored: int) -> np.ndarray:
    """Unsigned view of the stored bits (two's complement for signed data)."""
    unsigned = frame.view(frame.dtype.str.replace("i", "u"))
    return unsigned & np.array((1 << bits_stored) - 1, dtype=unsigned.dtype)


def _jpeg(*, lossless: bool, predictor: int = 1):
    """imagecodecs' libjpeg-turbo: lossless (process 14) or lossy (process 1 or 2/4)."""
    def encode(frame, kwargs):
        import imagecodecs

        bits = kwargs["bits_stored"]
        data = _bit_pattern(frame, bits)
        if lossless:
            return imagecodecs.jpeg8_encode(data, lossless=True, predictor=predictor,
                                            bitspersample=bits)
        precision = 8 if data.dtype.itemsize == 1 else 12
        return imagecodecs.jpeg8_encode(data, level=JPEG_QUALITY, bitspersample=precision)
    return encode


def _htj2k(*, lossless: bool):
    """imagecodecs' OpenJPH: reversible, or irreversible with quantisation step
    :data:`HTJ2K_STEP` (relative to the dynamic range)."""
    def encode(frame, kwargs):
        import imagecodecs

        if lossless:
            return imagecodecs.htj2k_encode(frame, reversible=True)
        return imagecodecs.htj2k_encode(frame, level=HTJ2K_STEP, reversible=False)
    return encode


_CODECS = {
    RLELossless: _Codec(_pydicom_encoder("RLELosslessEncoder", "pydicom"), False, "", "pydicom"),
    JPEGLSLossless: _Codec(_pydicom_encoder("JPEGLSLosslessEncoder", "pyjpegls"), False, "",
                           "jpeg_ls"),
    JPEGLSNearLossless: _Codec(
        _pydicom_encoder("JPEGLSNearLosslessEncoder", "pyjpegls", jls_error=JPEGLS_NEAR_ERROR),
        True, "ISO_14495_1", "jpeg_ls"),
    JPEG2000Lossless: _Codec(_j2k(lossless=True), False, "", "openjpeg"),
    JPEG2000: _Codec(_j2k(lossless=False), True, "ISO_15444_1", "openjpeg"),
    HTJ2KLossless: _Codec(_htj2k(lossless=True), False, "", "imagecodecs"),
    HTJ2K: _Codec(_htj2k(lossless=False), True, "ISO_15444_15", "imagecodecs"),
    JPEGBaseline8Bit: _Codec(_jpeg(lossless=False), True, "ISO_10918_1", "imagecodecs", 8),
    JPEGExtended12Bit: _Codec(_jpeg(lossless=False), True, "ISO_10918_1", "imagecodecs", 12),
    JPEGLosslessSV1: _Codec(_jpeg(lossless=True, predictor=1), False, "", "imagecodecs"),
    JPEGLossless: _Codec(_jpeg(lossless=True, predictor=6), False, "", "imagecodecs"),
}
