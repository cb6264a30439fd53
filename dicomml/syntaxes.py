"""The transfer syntax table: every UID dicomml knows, grouped by how pixel data is stored.

The one home of transfer syntax UIDs (a leaf module: it imports nothing from dicomml, so the
catalog's header parser and the decoders both use it); ``dicomml.decode.syntaxes`` re-exports
it. A new transfer syntax is added here, then given a decoder in :mod:`dicomml.decode`.

Example
-------
>>> from dicomml.syntaxes import describe, JPEG_LS_LOSSLESS
>>> describe(JPEG_LS_LOSSLESS)
'JPEG-LS Lossless (1.2.840.10008.1.2.4.80)'
"""

from __future__ import annotations

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG2000 = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
#: Deflated Image Frame Compression (PS3.5 8.2.16): each frame deflated on its own and
#: encapsulated; the data set itself is plain Explicit VR Little Endian.
DEFLATED_IMAGE_FRAME = "1.2.840.10008.1.2.8.1"
#: JPIP Referenced Deflate and JPIP HTJ2K Referenced Deflate (PS3.5 A.7, A.12): a deflated data
#: set whose pixels are not in the file but referenced by a JPIP URL (no pixels to decode).
JPIP_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.95"
JPIP_HTJ2K_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.205"

#: UID -> short human name, in the order ``dicomml doctor`` lists them.
NAMES: dict[str, str] = {
    IMPLICIT_VR_LE: "Implicit VR Little Endian",
    EXPLICIT_VR_LE: "Explicit VR Little Endian",
    DEFLATED_EXPLICIT_VR_LE: "Deflated Explicit VR Little Endian",
    EXPLICIT_VR_BE: "Explicit VR Big Endian",
    RLE_LOSSLESS: "RLE Lossless",
    JPEG_BASELINE: "JPEG Baseline (8-bit)",
    JPEG_EXTENDED: "JPEG Extended (12-bit)",
    JPEG_LOSSLESS: "JPEG Lossless (Process 14)",
    JPEG_LOSSLESS_SV1: "JPEG Lossless SV1",
    JPEG_LS_LOSSLESS: "JPEG-LS Lossless",
    JPEG_LS_NEAR_LOSSLESS: "JPEG-LS Near-Lossless",
    JPEG2000_LOSSLESS: "JPEG 2000 Lossless",
    JPEG2000: "JPEG 2000",
    HTJ2K_LOSSLESS: "HTJ2K Lossless",
    HTJ2K_LOSSLESS_RPCL: "HTJ2K Lossless RPCL",
    HTJ2K: "HTJ2K",
    DEFLATED_IMAGE_FRAME: "Deflated Image Frame Compression",
}

#: Syntaxes whose data set (not only the pixel data) is a raw deflate stream (PS3.5 A.5, A.7,
#: A.12).
DEFLATED_DATA_SET = frozenset({DEFLATED_EXPLICIT_VR_LE, JPIP_REFERENCED_DEFLATE,
                               JPIP_HTJ2K_REFERENCED_DEFLATE})
#: Pixel data stored uncompressed (one contiguous buffer for all frames).
NATIVE = frozenset({IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE})
#: Pixel data stored as encapsulated, compressed frames.
ENCAPSULATED = frozenset(NAMES) - NATIVE
#: Syntaxes whose decoders may legitimately differ by a few grey levels (lossy codecs).
LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR_LOSSLESS, JPEG2000, HTJ2K})
JPEG_FAMILY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1})
JPEG_LS_FAMILY = frozenset({JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS})
J2K_FAMILY = frozenset({JPEG2000_LOSSLESS, JPEG2000})
HTJ2K_FAMILY = frozenset({HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, HTJ2K})


def describe(uid: str) -> str:
    """``'<name> (<uid>)'`` for a transfer syntax UID, ``'unknown (<uid>)'`` if unknown."""
    return f"{NAMES.get(str(uid), 'unknown transfer syntax')} ({uid})"


__all__ = [
    "IMPLICIT_VR_LE", "EXPLICIT_VR_LE", "DEFLATED_EXPLICIT_VR_LE", "EXPLICIT_VR_BE",
    "RLE_LOSSLESS", "JPEG_BASELINE", "JPEG_EXTENDED", "JPEG_LOSSLESS", "JPEG_LOSSLESS_SV1",
    "JPEG_LS_LOSSLESS", "JPEG_LS_NEAR_LOSSLESS", "JPEG2000_LOSSLESS", "JPEG2000",
    "HTJ2K_LOSSLESS", "HTJ2K_LOSSLESS_RPCL", "HTJ2K", "DEFLATED_IMAGE_FRAME",
    "JPIP_REFERENCED_DEFLATE", "JPIP_HTJ2K_REFERENCED_DEFLATE", "DEFLATED_DATA_SET",
    "NAMES", "NATIVE", "ENCAPSULATED", "LOSSY", "JPEG_FAMILY", "JPEG_LS_FAMILY", "J2K_FAMILY",
    "HTJ2K_FAMILY", "describe",
]
