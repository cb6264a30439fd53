"""Pixel decoding: every common transfer syntax, exact, bounded, and parallel.

Public API
----------
``read_pixels(path, frames=None, *, values=None, window=None, normalize=True, record=False,
rescale=False, threads=None, decoder=None, isolate=False, timeout=60.0) -> np.ndarray``
    One file's pixels, ``(frames, rows, columns)`` or ``(frames, rows, columns, 3)`` (RGB,
    channel last, as pydicom's ``pixel_array``; YBR_FULL/_422 converted; PALETTE COLOR looked
    up to RGB). ``values="stored"`` (default): stored values in the BitsAllocated dtype
    (signedness and BitsStored handled as pydicom does; float32 / float64 for Float / Double
    Float Pixel Data); ``"modality"``: float32 Rescale Slope / Intercept or Modality LUT
    Sequence; ``"presentation"``: float32 [0, 1] after the VOI window / LUT and MONOCHROME1 /
    INVERSE (:mod:`dicomml.decode.stages`, the one owner of the value transforms).
    ``record=True`` returns ``PixelValues(array, record, padding_mask)``. ``rescale=True``
    (older) gives float32 ``slope * value + intercept`` (for float pixel data without a
    Modality LUT: its one linear Real World Value Mapping, if any).
``read_many(paths, *, values=None, window=None, normalize=True, record=False, rescale=False,
threads=None, decoder=None, out=None) -> np.ndarray``
    All frames of several files (a series), decoded concurrently, stacked on axis 0
    (into ``out`` when given); ``values=`` as in ``read_pixels``, file by file.
    ``paths`` may also be a catalog's rows (``catalog.series_instances(key)``): the catalog's
    Pixel Data offsets and group 0028 values are then used and no header is parsed again
    (:mod:`dicomml.decode.located`; a file changed since the scan is read the full way).
``decoders() -> dict``
    The registry: transfer syntax UID -> ``{'name', 'available': [names, in the order
    tried], 'missing': [(name, package, install hint)], 'opt_in': [names]}``.
    ``dicomml doctor`` prints it.

Lower level, for the loader and datasets
----------------------------------------
``fill([Request(source, out, frames)]) -> list``
    The one way from bytes to stored values (:mod:`dicomml.decode.stored`), used by
    ``read_many`` and ``load_series`` alike: fills caller-provided arrays with the stored
    values (bits corrected) of a file's frames, any transfer syntax; ``source`` is a
    :class:`Location` (catalog facts), a path, or loaded :class:`EncodedPixels`.
``load_encoded(path) -> EncodedPixels``
    Header + per-frame encoded bytes (``.info``: :class:`FrameInfo`, ``.frames``), no
    decoding; sizes checked against what the file holds. The header is walked by a small
    bounded parser (:mod:`dicomml.decode.fastheader`, ~10x cheaper than a pydicom Dataset);
    files it does not handle go through ``pydicom.dcmread`` and keep ``.dataset``.
``load_located(location) -> EncodedPixels``, ``locations_from_frame(rows)``
    The same from a catalog's facts (:mod:`dicomml.decode.located`): one ``pread`` of the
    Pixel Data value, no header walk.
``read_frames(encoded, frames=None, *, out=None, threads=None, decoder=None)``
    Decode some frames of a loaded file, optionally straight into ``out`` (e.g. a slice of
    the volume being built: ``read_frames(enc, out=volume[k:k + 1])``).
``decode_frame(encoded_bytes, info, decoders=None, *, index=None) -> np.ndarray``
    One frame ``(rows, columns[, 3])``; ``info`` is a :class:`FrameInfo` (build one by hand
    or with :func:`frame_info` from a pydicom data set).
``Decoder``, ``register(decoder)``, ``get_decoder(name)``, ``decoders_for(uid)``
    The plugin interface and registry.

Threads: ``threads=None`` means 1 inside a torch DataLoader worker (detected only when torch
is already imported), else ``min(cores, 8)`` when the first-choice decoder releases the GIL
(imagecodecs, numpy), else 1. Safety: every native decoder call is wrapped (even
``BaseException`` such as Rust panics) and re-raised as :class:`~dicomml.errors.DecodeError`
naming file and frame; codestream headers are checked against Rows/Columns/Samples before
decoding and the output size after; native pixel data must fit in the file; RLE segment offsets must lie inside the frame;
deflated data sets are inflated incrementally, no further than the header justifies (8 MiB
before Pixel Data plus the declared frames); a header cut short is a TruncatedFileError; ``isolate=True`` runs the decode in a child process with a timeout for
untrusted data (a crash or hang becomes a DecodeError). python-gdcm is never used.

Example
-------
>>> import dicomml
>>> from pydicom.data import get_testdata_file
>>> dicomml.read_pixels(get_testdata_file("MR_small_RLE.dcm")).shape
(1, 64, 64)
"""

from __future__ import annotations

from dicomml.decode.base import Decoder
from dicomml.decode.frames import EncodedPixels, load_encoded
from dicomml.decode.info import FrameInfo, frame_info
from dicomml.decode.located import Location, load_located, locations_from_frame
from dicomml.decode.pipeline import decode_frame
from dicomml.decode.reader import PixelValues, read_frames, read_many, read_pixels
from dicomml.decode.registry import decoders, decoders_for, get_decoder, register
from dicomml.decode.stored import Request, fill

__all__ = ["Decoder", "EncodedPixels", "FrameInfo", "Location", "PixelValues", "Request",
           "decode_frame", "decoders", "decoders_for", "fill", "frame_info", "get_decoder", "load_encoded", "load_located",
           "locations_from_frame", "read_frames", "read_many", "read_pixels", "register"]
