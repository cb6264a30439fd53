"""What a decoder needs to know about a frame: :class:`FrameInfo`, built from a header.

All sizes are in pixels or bytes as named; arrays are ``(rows, columns[, samples])`` per frame.

Example
-------
>>> from dicomml.decode.info import FrameInfo
>>> info = FrameInfo("1.2.840.10008.1.2.1", rows=512, columns=512, bits_allocated=16,
...                  bits_stored=12, pixel_representation=1)
>>> info.dtype, info.frame_shape, info.frame_nbytes
(dtype('int16'), (512, 512), 524288)
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from dicomml._numbers import declared_frames, integer_string
from dicomml.errors import InvalidDicomError, InvalidTagError, MissingTagError

_REQUIRED = ("Rows", "Columns", "BitsAllocated")


@dataclasses.dataclass(frozen=True)
class FrameInfo:
    """The image pixel description of one file (DICOM group 0028), plus its transfer syntax.

    ``photometric_interpretation`` is the header's value; decoders that convert color (JPEG
    baseline YBR -> RGB, JPEG 2000 RCT/ICT) report what they return via the decode pipeline.
    """

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    photometric_interpretation: str = "MONOCHROME2"
    planar_configuration: int = 0
    number_of_frames: int = 1
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    path: str | None = None
    #: True for Float Pixel Data (7FE0,0008) and Double Float Pixel Data (7FE0,0009): IEEE
    #: floats of BitsAllocated 32 / 64 bits, no Bits Stored or sign to apply (PS3.3 C.7.6.3)
    float_data: bool = False

    @functools.cached_property
    def dtype(self) -> np.dtype:
        """Output dtype of stored values: (u)int8/16/32 by BitsAllocated (1 bit -> uint8);
        float32 / float64 for float pixel data."""
        nbytes = max(1, math.ceil(self.bits_allocated / 8))
        if self.float_data:
            return np.dtype(f"f{nbytes}")
        kind = "i" if self.pixel_representation == 1 and self.bits_allocated > 1 else "u"
        return np.dtype(f"{kind}{nbytes}")

    @functools.cached_property
    def frame_shape(self) -> tuple[int, ...]:
        """``(rows, columns)`` or ``(rows, columns, samples)`` of one decoded frame."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

    @functools.cached_property
    def frame_pixels(self) -> int:
        """Number of samples in one frame (rows * columns * samples per pixel)."""
        return self.rows * self.columns * self.samples_per_pixel

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one decoded frame at ``dtype`` (the cap on any decoder's output)."""
        return self.frame_pixels * self.dtype.itemsize

    @property
    def stored_frame_nbytes(self) -> int:
        """Bytes one frame takes in native (uncompressed) pixel data."""
        if self.bits_allocated == 1:
            return math.ceil(self.rows * self.columns * self.samples_per_pixel / 8)
        pixels = self.frame_pixels
        if self.photometric_interpretation == "YBR_FULL_422":
            pixels = self.rows * self.columns * 2  # two luma + two chroma per pixel pair
        return pixels * math.ceil(self.bits_allocated / 8)

    @functools.cached_property
    def format_key(self) -> tuple:
        """Every field but ``path`` and the rescale values: frames of two files with equal
        keys decode the same way into arrays of the same shape and dtype."""
        return (self.transfer_syntax, self.rows, self.columns, self.samples_per_pixel,
                self.bits_allocated, self.bits_stored, self.pixel_representation,
                self.photometric_interpretation, self.planar_configuration,
                self.number_of_frames, self.float_data)

    def with_path(self, path: str | None) -> FrameInfo:
        """This description for another file (a cheap copy; cached properties kept)."""
        if path == self.path:
            return self
        copy = object.__new__(FrameInfo)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["path"] = path
        return copy

    def replace(self, **changes) -> FrameInfo:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _get(ds, keyword: str, default, path):
    """``ds.get(keyword, default)``; pydicom converts raw elements on access and raises
    NotImplementedError (unknown VR), ValueError, ... for broken ones: InvalidDicomError."""
    try:
        return ds.get(keyword, default)
    except Exception as exc:  # noqa: BLE001 - whatever pydicom's value conversion raises
        raise InvalidDicomError(f"{keyword} cannot be read: {type(exc).__name__}: {exc}",
                                path=path, tag=keyword) from exc


def _int_value(ds, keyword: str, default, path) -> int:
    value = _get(ds, keyword, default, path)
    if value is None or value == "":
        if default is None:
            raise MissingTagError(f"{keyword} is required to decode pixels", path=path,
                                  tag=keyword)
        return default
    try:
        return integer_string(value)
    except ValueError as exc:
        raise InvalidTagError(f"{keyword} is not an integer: {value!r}", path=path,
                              tag=keyword) from exc


def _frame_count(ds, path) -> int:
    value = _get(ds, "NumberOfFrames", None, path)
    try:
        return declared_frames(value)
    except ValueError as exc:
        raise InvalidTagError(f"NumberOfFrames is not a whole number: {value!r}", path=path,
                              tag="NumberOfFrames") from exc


def _float_value(ds, keyword: str, default: float, path) -> float:
    value = _get(ds, keyword, None, path)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidTagError(f"{keyword} is not a number: {value!r}", path=path,
                              tag=keyword) from exc
    if not math.isfinite(number):
        raise InvalidTagError(f"{keyword} is not finite: {value!r}", path=path, tag=keyword)
    return number


def _validate(info: FrameInfo) -> None:
    path = info.path
    if info.rows <= 0 or info.columns <= 0:
        raise InvalidTagError(f"image size {info.rows}x{info.columns} is empty", path=path,
                              tag="Rows")
    if info.bits_allocated not in (1, 8, 16, 32, 64):
        raise InvalidTagError(f"BitsAllocated {info.bits_allocated} is not supported",
                              path=path, tag="BitsAllocated")
    if info.float_data and info.bits_allocated not in (32, 64):
        raise InvalidTagError(f"BitsAllocated {info.bits_allocated} is not 32 (Float Pixel "
                              f"Data) or 64 (Double Float Pixel Data)", path=path,
                              tag="BitsAllocated")
    if not 1 <= info.bits_stored <= info.bits_allocated:
        raise InvalidTagError(f"BitsStored {info.bits_stored} does not fit BitsAllocated "
                              f"{info.bits_allocated}", path=path, tag="BitsStored")
    if info.samples_per_pixel not in (1, 3, 4):
        raise InvalidTagError(f"SamplesPerPixel {info.samples_per_pixel} is not 1, 3 or 4",
                              path=path, tag="SamplesPerPixel")
    if info.pixel_representation not in (0, 1):
        raise InvalidTagError(f"PixelRepresentation {info.pixel_representation} is not 0 or 1",
                              path=path, tag="PixelRepresentation")
    if info.number_of_frames < 1:
        raise InvalidTagError(f"NumberOfFrames {info.number_of_frames} is below 1",
                              path=path, tag="NumberOfFrames")


def _has_float_pixels(ds) -> bool:
    """True when the header holds Float / Double Float Pixel Data instead of Pixel Data."""
    return "PixelData" not in ds and ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds)


def _real_world(ds, info: FrameInfo) -> FrameInfo:
    """``info`` with the linear Real World Value Mapping (0040,9096) of float pixel data as
    its rescale, when the header has exactly one (top level, or the shared functional groups
    of an enhanced object such as a Parametric Map); ``info`` as it is otherwise (none, a LUT,
    several mappings to choose from)."""
    found = _get(ds, "RealWorldValueMappingSequence", None, info.path)
    if not found:
        shared = _get(ds, "SharedFunctionalGroupsSequence", None, info.path)
        found = _get(shared[0], "RealWorldValueMappingSequence", None, info.path) \
            if shared else None
    if not found or len(found) != 1:
        return info
    slope = _float_value(found[0], "RealWorldValueSlope", float("nan"), info.path)
    if slope != slope:
        return info
    return info.replace(rescale_slope=slope, rescale_intercept=_float_value(
        found[0], "RealWorldValueIntercept", 0.0, info.path))


#: FrameInfo of recently seen header value dicts (a series repeats one or a few)
_RECENT: dict = {}
_RECENT_MAX = 512


def frame_info(ds, transfer_syntax: str, path=None) -> FrameInfo:
    """Build a validated :class:`FrameInfo` from a pydicom ``Dataset`` (or the plain dict of
    group 0028 values that :mod:`dicomml.decode.fastheader` returns).

    Raises :class:`~dicomml.errors.MissingTagError` / :class:`~dicomml.errors.InvalidTagError`
    naming ``path`` and the tag when the header cannot describe a frame.
    """
    path = None if path is None else str(path)
    if type(ds) is not dict:
        return _build(ds, transfer_syntax, path)
    key = (transfer_syntax, tuple(ds.items()))  # the walker's values are hashable
    known = _RECENT.get(key)
    if known is None:
        known = _build(ds, transfer_syntax, path)
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.clear()
        _RECENT[key] = known
    return known.with_path(path)


def _build(ds, transfer_syntax: str, path: str | None) -> FrameInfo:
    for keyword in _REQUIRED:
        if keyword not in ds:
            raise MissingTagError(f"{keyword} is required to decode pixels", path=path,
                                  tag=keyword)
    bits_allocated = _int_value(ds, "BitsAllocated", None, path)
    info = FrameInfo(
        transfer_syntax=str(transfer_syntax),
        rows=_int_value(ds, "Rows", None, path),
        columns=_int_value(ds, "Columns", None, path),
        samples_per_pixel=_int_value(ds, "SamplesPerPixel", 1, path),
        bits_allocated=bits_allocated,
        bits_stored=_int_value(ds, "BitsStored", bits_allocated, path),
        pixel_representation=_int_value(ds, "PixelRepresentation", 0, path),
        photometric_interpretation=str(_get(ds, "PhotometricInterpretation", "", path)
                                       or "MONOCHROME2").strip().upper(),
        planar_configuration=_int_value(ds, "PlanarConfiguration", 0, path),
        number_of_frames=_frame_count(ds, path),
        rescale_slope=_float_value(ds, "RescaleSlope", 1.0, path),
        rescale_intercept=_float_value(ds, "RescaleIntercept", 0.0, path),
        path=path,
        float_data=_has_float_pixels(ds),
    )
    if info.float_data and "RescaleSlope" not in ds and "RescaleIntercept" not in ds:
        info = _real_world(ds, info)
    _validate(info)
    return info
