"""Decode one encoded frame safely and normalise it the way pydicom's ``pixel_array`` does.

Steps: (1) check the codestream's own header against the DICOM header (size, samples) so no
decoder is asked to allocate more than the declared frame; (2) run the decoders in order of
preference, catching *everything* a native extension can raise (Rust panics are
``BaseException``); (3) reject output whose size is not the declared frame size; (4) cast to
the stored dtype and apply pydicom's sign / unused-bit corrections; (5) convert YBR_FULL and
YBR_FULL_422 to RGB.

Example
-------
>>> import imagecodecs, numpy as np
>>> from dicomml.decode.info import FrameInfo
>>> frame = np.arange(12, dtype=np.uint16).reshape(3, 4)
>>> info = FrameInfo("1.2.840.10008.1.2.4.80", rows=3, columns=4, bits_stored=12)
>>> decode_frame(imagecodecs.jpegls_encode(frame), info).tolist()[0]
[0, 1, 2, 3]
"""

from __future__ import annotations

import warnings

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.codestream import (
    END_MARKER_OPTIONAL,
    has_end_marker,
    holds_whole_frame,
    j2k_header,
    jpeg_header,
    rle_offsets,
)
from dicomml.decode.info import FrameInfo
from dicomml.errors import DecodeError, DecoderWarning

_NOT_CAUGHT = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _error(message: str, info: FrameInfo, index: int | None) -> DecodeError:
    return DecodeError(f"{message} [{ts.describe(info.transfer_syntax)}]", path=info.path,
                       frame=index, transfer_syntax=info.transfer_syntax)


def codestream_header(src, info: FrameInfo, index: int | None = None, *,
                      strict: bool = True) -> dict | None:
    """Parse and check the frame's codestream header against ``info`` (None for RLE/native).

    ``strict`` also requires the end-of-image marker (a frame without it was truncated).
    RLE frames get their segment offsets checked (:func:`~dicomml.decode.codestream.rle_offsets`).

    Raises :class:`DecodeError` when the codestream declares another size or sample count
    than the DICOM header: decoding it would allocate an undeclared amount of memory.
    """
    syntax = info.transfer_syntax
    if syntax == ts.RLE_LOSSLESS:
        offsets = rle_offsets(src)
        if isinstance(offsets, str):
            raise _error(offsets, info, index)
        return None
    if syntax in ts.JPEG_FAMILY or syntax in ts.JPEG_LS_FAMILY:
        header = jpeg_header(src)
        kind = "JPEG"
    elif syntax in ts.J2K_FAMILY or syntax in ts.HTJ2K_FAMILY:
        header = j2k_header(src)
        kind = "JPEG 2000"
    else:
        return None
    if header is None:
        raise _error(f"frame is not a {kind} codestream (no start-of-frame header)", info, index)
    if strict and not has_end_marker(src) and syntax not in END_MARKER_OPTIONAL:
        raise _error(f"{kind} codestream is truncated (no end-of-image marker)", info, index)
    declared = (info.rows, info.columns, info.samples_per_pixel)
    found = (header["rows"], header["columns"], header["components"])
    if found != declared:
        raise _error(f"codestream is {found[0]}x{found[1]}x{found[2]} but the header declares "
                     f"{declared[0]}x{declared[1]}x{declared[2]} (rows x columns x samples)",
                     info, index)
    if header["precision"] > 8 * info.dtype.itemsize:
        raise _error(f"codestream precision {header['precision']} exceeds BitsAllocated "
                     f"{info.bits_allocated}", info, index)
    return header


def _conform_shape(arr, info: FrameInfo, decoder: Decoder) -> np.ndarray:
    kinds = "f" if info.float_data else "ui"
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in kinds:
        raise ValueError(f"{decoder.name} returned {type(arr).__name__} "
                         f"{getattr(arr, 'dtype', '')}, not an "
                         f"{'float' if info.float_data else 'integer'} array")
    if arr.size != info.frame_pixels:
        raise ValueError(f"{decoder.name} returned {arr.size} samples {arr.shape}, the header "
                         f"declares {info.frame_pixels} {info.frame_shape}")
    if arr.dtype.itemsize > info.dtype.itemsize:
        raise ValueError(f"{decoder.name} returned {arr.dtype} samples, wider than "
                         f"BitsAllocated {info.bits_allocated}")
    return arr if arr.shape == info.frame_shape else arr.reshape(info.frame_shape)


def _into_buffer(out: np.ndarray | None, info: FrameInfo, header: dict | None):
    """An unsigned view of ``out`` a decoder may write into, or None (no ``out``; color;
    a codestream whose precision makes the decoder return another sample width)."""
    if out is None or info.samples_per_pixel != 1 or info.float_data \
            or not out.flags.c_contiguous \
            or out.shape != info.frame_shape or out.dtype != info.dtype:
        return None
    if header is not None:
        width = 1 if header["precision"] <= 8 else 2 if header["precision"] <= 16 else 4
        if width != info.dtype.itemsize:
            return None
    return out.view(f"u{info.dtype.itemsize}")


def _decode_with(decoder: Decoder, src, info: FrameInfo, into: np.ndarray | None):
    if into is not None and decoder.decodes_into:
        try:
            return decoder.decode_into(src, info, into)
        except ValueError as exc:  # imagecodecs' own check of out against the stream
            if not str(exc).startswith("invalid out"):
                raise
    return decoder.decode(src, info)


def run_decoders(src, info: FrameInfo, decoders: list[Decoder],
                 index: int | None = None, into: np.ndarray | None = None
                 ) -> tuple[np.ndarray, Decoder]:
    """Try ``decoders`` in order; the first output of the declared size wins.

    A decoder marked ``fallback_on_error = False`` is only used as the first choice.
    ``into`` (from :func:`_into_buffer`) lets decoders that can write straight into it.
    Raises :class:`DecodeError` naming the file, frame and every decoder's failure.
    """
    failures = []
    for position, decoder in enumerate(decoders):
        if position and not getattr(decoder, "fallback_on_error", True):
            continue
        try:
            arr = _conform_shape(_decode_with(decoder, src, info, into), info, decoder)
        except _NOT_CAUGHT:
            raise
        except BaseException as exc:  # noqa: BLE001 - native panics are BaseExceptions
            failures.append(f"{decoder.name}: {type(exc).__name__}: {exc}")
            continue
        if failures:
            warnings.warn(f"{info.path}: frame {index}: fell back to {decoder.name} after "
                          f"{'; '.join(failures)}", DecoderWarning, stacklevel=3)
        return arr, decoder
    raise _error("could not decode: " + "; ".join(failures), info, index)


def _whole_frame(src, info: FrameInfo, decoders: list[Decoder], index: int | None):
    """A JPEG lossless frame without end-of-image marker, decoded when its data hold every
    pixel (:func:`~dicomml.decode.codestream.holds_whole_frame`), else DecodeError."""
    whole, arr = holds_whole_frame(src, lambda data: run_decoders(data, info, decoders,
                                                                   index)[0])
    if not whole:
        raise _error("JPEG codestream is truncated (no end-of-image marker, and its data end "
                     "before the last pixel)", info, index)
    return arr


def high_bits_clear(arr: np.ndarray, bits: int) -> bool:
    """True when dropping the top ``bits`` bits of every value would change nothing: unsigned
    values below ``2**(width - bits)``, signed ones inside the two's complement range of
    ``width - bits`` bits. One or two read-only passes, cheaper than the mask (one read-write
    pass) or the two shifts (two) that they save on the usual, clean data.

    Example
    -------
    >>> high_bits_clear(np.array([0, 4095], np.uint16), 4), high_bits_clear(np.array([-2049], np.int16), 4)
    (True, False)
    """
    kept = 8 * arr.dtype.itemsize - bits
    if arr.dtype.kind == "u":
        return int(arr.max()) < (1 << kept)
    return int(arr.max()) < (1 << (kept - 1)) and int(arr.min()) >= -(1 << (kept - 1))


def _shift(arr: np.ndarray, bits: int, out: np.ndarray | None = None) -> np.ndarray:
    """Drop the top ``bits`` bits: sign-extends signed arrays, masks unsigned ones.

    Writes into ``out`` when given (saves a copy of read-only decoder output); returns
    ``arr`` itself when there is nothing to drop (:func:`high_bits_clear`).
    """
    if bits <= 0 or high_bits_clear(arr, bits):
        return arr
    if out is None:
        out = arr if arr.flags.writeable else np.empty_like(arr)
    if arr.dtype.kind == "u":  # one pass: keep the low bits
        mask = (1 << (8 * arr.dtype.itemsize - bits)) - 1
        np.bitwise_and(arr, arr.dtype.type(mask), out=out)
        return out
    np.left_shift(arr, bits, out=out)
    np.right_shift(out, bits, out=out)
    return out


def correct_bits(arr: np.ndarray, info: FrameInfo, header: dict | None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Cast to the stored dtype and apply pydicom 3's sign / unused-bit corrections.

    The result may be written into ``out`` (same shape, ``info.dtype``) or not: callers
    copy it there if ``result is not out``.
    """
    if arr.dtype.itemsize == info.dtype.itemsize:
        arr = arr.view(info.dtype)  # reinterpret, no copy
    else:
        arr = arr.astype(info.dtype)
    if info.float_data:  # IEEE values: no bits to drop
        return arr
    container_bits = 8 * info.dtype.itemsize
    syntax = info.transfer_syntax
    if syntax in ts.J2K_FAMILY or syntax in ts.HTJ2K_FAMILY:
        signed = header["signed"] if header else bool(info.pixel_representation)
        precision = header["precision"] if header else info.bits_stored
        if info.photometric_interpretation.startswith("MONOCHROME") and \
                signed != bool(info.pixel_representation):
            return _shift(arr, container_bits - precision, out)
        return arr
    if syntax in ts.JPEG_LS_FAMILY:
        if info.pixel_representation == 1:
            precision = header["precision"] if header else info.bits_stored
            return _shift(arr, container_bits - precision, out)
        return arr
    if info.bits_allocated > info.bits_stored and info.bits_allocated > 1:
        return _shift(arr, info.bits_allocated - info.bits_stored, out)
    return arr


def output_photometric(info: FrameInfo, header: dict | None) -> str:
    """The color space of a decoded frame, before any conversion (pydicom's rules)."""
    pi = info.photometric_interpretation
    syntax = info.transfer_syntax
    if syntax in ts.J2K_FAMILY or syntax in ts.HTJ2K_FAMILY:
        return "RGB" if pi in ("YBR_ICT", "YBR_RCT") else pi
    if info.samples_per_pixel == 3 and header is not None:
        if header["component_ids"] in ([82, 71, 66], [114, 103, 98]):  # 'RGB' / 'rgb'
            return "RGB"
        if header["jfif"] and "YBR" not in pi:
            return "YBR_FULL_422" if syntax == ts.JPEG_BASELINE else "YBR_FULL"
    return pi


def to_rgb(arr: np.ndarray, photometric: str, info: FrameInfo | None = None) -> np.ndarray:
    """YBR_FULL / YBR_FULL_422 -> RGB with pydicom's own conversion; others unchanged.
    DecodeError (naming BitsAllocated) when the samples are not 8-bit: the conversion is
    defined for 8-bit YCbCr only (a 16-bit header over an 8-bit JPEG stream)."""
    if photometric in ("YBR_FULL", "YBR_FULL_422") and arr.ndim == 3 and arr.shape[-1] == 3:
        from pydicom.pixels.processing import convert_color_space

        if arr.dtype.itemsize != 1:
            raise DecodeError(f"{photometric} samples must be 8-bit to convert to RGB, the "
                              f"frame decodes to {arr.dtype}",
                              path=None if info is None else info.path, tag="BitsAllocated")

        return convert_color_space(arr, "YBR_FULL", "RGB")
    return arr


def decode_frame(src, info: FrameInfo, decoders: list[Decoder] | None = None, *,
                 index: int | None = None, strict: bool = True,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Decode one frame's bytes to stored values ``(rows, columns[, samples])``, RGB color.

    ``src`` is the frame's encoded bytes (for native syntaxes: exactly its stored bytes);
    ``decoders`` defaults to the registry's order for ``info.transfer_syntax``. Palette
    color is *not* applied here (it needs the file's LUTs; :func:`read_pixels` does it).
    """
    if decoders is None:
        from dicomml.decode.registry import decoders_for

        decoders = decoders_for(info.transfer_syntax, path=info.path)
    header = codestream_header(src, info, index, strict=strict)
    into = None
    if strict and info.transfer_syntax in END_MARKER_OPTIONAL and not has_end_marker(src):
        arr = _whole_frame(src, info, decoders, index)
    else:
        into = _into_buffer(out, info, header)
        arr, _ = run_decoders(src, info, decoders, index, into)
    if into is not None and arr is into:  # decoded in place: only the bit corrections left
        correct_bits(arr, info, header, out)  # in place, or a view of the same memory
        return out
    if _copies_straight(arr, out, info, header):  # copy first: the check then reads cache
        np.copyto(out, arr.view(out.dtype))
        correct_bits(out, info, header, out)
        return out
    arr = to_rgb(correct_bits(arr, info, header, out), output_photometric(info, header), info)
    if out is None:
        return arr if arr.flags.writeable else arr.copy()
    if not _same_buffer(arr, out):
        out[...] = arr
    return out


def _copies_straight(arr: np.ndarray, out: np.ndarray | None, info: FrameInfo,
                     header: dict | None) -> bool:
    """True when ``arr`` (a decoder's output) goes into ``out`` as it is: same shape and
    sample width, stored values (no cast) and no color conversion."""
    return out is not None and arr.shape == out.shape and out.dtype == info.dtype \
        and arr.dtype.itemsize == out.dtype.itemsize and out.flags.c_contiguous \
        and output_photometric(info, header) not in ("YBR_FULL", "YBR_FULL_422")


def _same_buffer(arr: np.ndarray, out: np.ndarray) -> bool:
    """True when ``arr`` is ``out``'s memory with its shape and dtype (nothing to copy)."""
    return arr is out or (arr.shape == out.shape and arr.dtype == out.dtype
                          and arr.strides == out.strides
                          and arr.__array_interface__["data"][0]
                          == out.__array_interface__["data"][0])
