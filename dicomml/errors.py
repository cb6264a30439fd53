"""Every exception and warning dicomml raises.

All errors derive from :class:`DicommlError` and carry the offending ``path`` (a file, or a
series key where no single file is to blame) and, where one tag is to blame, the DICOM ``tag``
keyword. ``str(err)`` always names both, so a log line is enough to find the problem.

Example
-------
>>> from dicomml.errors import MissingTagError
>>> err = MissingTagError("ImagePositionPatient is required", path="/data/a.dcm",
...                       tag="ImagePositionPatient")
>>> str(err)
'/data/a.dcm: ImagePositionPatient is required [tag ImagePositionPatient]'

See ``docs/errors.md`` for what causes each error and how to fix or skip it.
"""

from __future__ import annotations

import os


class DicommlError(Exception):
    """Base of every dicomml error: a message, plus the file (``path``) and tag (``tag``)."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 tag: str | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.tag = tag
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message
        if self.path is not None:
            text = f"{self.path}: {text}"
        if self.tag is not None:
            text = f"{text} [tag {self.tag}]"
        return text

    def __reduce__(self):  # keep path/tag across DataLoader worker processes
        return (_rebuild, (type(self), self.message, self.path, self.tag, self.__dict__))


def _rebuild(cls, message, path, tag, state):
    err = cls.__new__(cls)
    DicommlError.__init__(err, message, path=path, tag=tag)
    err.__dict__.update(state)
    return err


# --- reading files -------------------------------------------------------------------------
class InvalidDicomError(DicommlError):
    """The file is not DICOM, or its header cannot be parsed (truncated, broken meta header,
    element lengths beyond the end of the file, inflation bomb)."""


class NotDicomError(InvalidDicomError):
    """The file has no DICOM signature and does not parse as a bare data set."""


class TruncatedFileError(InvalidDicomError):
    """The file ends before an element (or the pixel data) it declares."""


class MissingTagError(DicommlError):
    """A tag the operation needs is absent or empty (``tag`` names it)."""


class NoPixelDataError(MissingTagError):
    """The object has no Pixel Data: it is not an image (a structured report, an RT structure
    set, a Philips raw-data object...). ``sop_class_uid`` is its SOP Class UID (None when
    unknown); the message names the SOP class, e.g. ``has no Pixel Data (RT Structure Set
    Storage)``; ``tag`` is ``"PixelData"``.

    Example
    -------
    >>> str(NoPixelDataError(path="rs.dcm", sop_class_uid="1.2.840.10008.5.1.4.1.1.481.3"))
    'rs.dcm: has no Pixel Data (RT Structure Set Storage) [tag PixelData]'
    """

    def __init__(self, message: str | None = None, *, path=None,
                 sop_class_uid: str | None = None):
        self.sop_class_uid = sop_class_uid
        if message is None:
            message = f"has no Pixel Data ({sop_class_name(sop_class_uid)})"
        super().__init__(message, path=path, tag="PixelData")


def sop_class_name(uid) -> str:
    """The name of a SOP Class UID (PS3.6 Annex A, via pydicom's UID dictionary), the UID
    itself when it is not a standard one, ``"unknown SOP class"`` when absent.

    >>> sop_class_name("1.2.840.10008.5.1.4.1.1.66")
    'Raw Data Storage'
    """
    if uid is None or (isinstance(uid, float) and uid != uid) or not str(uid).strip():
        return "unknown SOP class"
    from pydicom.uid import UID

    uid = str(uid).strip()
    name = UID(uid).name
    return name if name and name != uid else f"SOP class {uid}"


class InvalidTagError(DicommlError):
    """A tag is present but its value is unusable (NaN spacing, 5 orientation values, ...)."""


# --- pixel data --------------------------------------------------------------------------------
class DecodeError(DicommlError):
    """Pixel data could not be decoded; ``frame`` is the 0-based frame index when known."""

    def __init__(self, message: str, *, path=None, tag: str | None = "PixelData",
                 frame: int | None = None, transfer_syntax: str | None = None):
        self.frame = frame
        self.transfer_syntax = transfer_syntax
        if frame is not None:
            message = f"{message} (frame {frame})"
        super().__init__(message, path=path, tag=tag)


class DecoderNotAvailableError(DecodeError):
    """No installed decoder handles the transfer syntax; ``extra`` names what to install."""

    def __init__(self, message: str, *, path=None, transfer_syntax: str | None = None,
                 extra: str | None = None):
        self.extra = extra
        super().__init__(message, path=path, transfer_syntax=transfer_syntax)


# --- geometry and series -------------------------------------------------------------------
class GeometryError(DicommlError):
    """The slices of a series do not form a consistent volume."""


class DuplicateSliceError(GeometryError):
    """Two or more slices share one position along the slice normal."""


class MissingSliceError(GeometryError):
    """A gap: one or more slices are missing between others."""


class UnevenSpacingError(GeometryError):
    """Slice spacing varies beyond the tolerance."""


class GantryTiltError(GeometryError):
    """Slice positions do not move along the slice normal (CT gantry tilt)."""


class InconsistentSeriesError(GeometryError):
    """Slices differ in orientation, matrix size, or other per-series attributes."""


class MultipleSeriesError(DicommlError):
    """A folder or file list holds more than one (sub-)series; ``keys`` lists them."""

    def __init__(self, message: str, *, keys=(), path=None):
        self.keys = list(keys)
        if self.keys:
            message = f"{message}; series keys: {', '.join(map(str, self.keys))}"
        super().__init__(message, path=path)


class SeriesNotFoundError(DicommlError, KeyError):
    """No series with the requested key."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return DicommlError.__str__(self)


class LabelGeometryError(GeometryError):
    """A label object (DICOM SEG, RTSTRUCT, label file) does not fit the reference image's
    grid: another frame of reference, frames or contours off the grid's planes beyond the
    tolerance, a label file on another grid, a contour with NaN or fewer than 3 points.
    ``path`` is the label file; ``segment`` names the segment or ROI (number and name) where
    one is to blame.

    Example
    -------
    >>> str(LabelGeometryError("frame 3 lies 1.2 mm off plane 7", path="seg.dcm",
    ...                        segment="2 'liver'"))
    "seg.dcm: frame 3 lies 1.2 mm off plane 7 (segment 2 'liver')"
    """

    def __init__(self, message: str, *, path=None, tag: str | None = None,
                 segment: str | None = None):
        self.segment = segment
        if segment is not None:
            message = f"{message} (segment {segment})" if not str(segment).startswith("ROI") \
                else f"{message} ({segment})"
        super().__init__(message, path=path, tag=tag)


class CatalogError(DicommlError):
    """A catalog file is missing, unreadable, or from an incompatible version."""


class CacheError(DicommlError):
    """A decoded-volume cache entry is unreadable or corrupt."""


class SplitError(DicommlError, ValueError):
    """A split cannot be made as asked (also a ValueError): fractions that do not sum to 1,
    more folds than groups, a stratify class with fewer groups than splits, a ``keep=``
    assignment that two linked groups contradict. ``tag`` names the column when one is to
    blame."""


class LeakageError(DicommlError):
    """Two splits share a patient or a study (:func:`dicomml.check_leakage`); ``shared`` maps
    each column to ``{value: [split names]}``."""

    def __init__(self, message: str, *, shared=None, path=None, tag=None):
        self.shared = dict(shared or {})
        super().__init__(message, path=path, tag=tag)


class DicomWebError(DicommlError):
    """A DICOMweb server (:mod:`dicomml.web`) could not give what was asked; ``path`` is the
    URL (never with credentials), ``status`` the HTTP status (None: no response)."""

    def __init__(self, message: str, *, path=None, tag=None, status: int | None = None):
        self.status = status
        super().__init__(message, path=path, tag=tag)


class DicomWebAuthError(DicomWebError):
    """The server refused the credentials (HTTP 401 / 403): wrong user, password or token."""


class DicomWebUnavailableError(DicomWebError):
    """The server did not answer usefully within the retry budget: connection refused or
    reset, timeouts, 429 / 5xx answers every time (the last cause is in the message)."""


class DicomWebResponseError(DicomWebError):
    """The server answered with something unusable, every time within the retry budget: a
    truncated body, a wrong content type, an instance other than the one asked for, or data
    the catalog's header parser cannot read."""


# --- warnings ----------------------------------------------------------------------------------
class DicommlWarning(UserWarning):
    """Base of dicomml's warnings."""


class GeometryWarning(DicommlWarning):
    """A geometry finding that the chosen policy reports instead of raising."""


class DecoderWarning(DicommlWarning):
    """A decoder fell back to a slower or less trusted one."""


class SelectionWarning(DicommlWarning):
    """A split or selection made a documented choice the user should know about (series
    without PatientID grouped under a per-study placeholder...)."""


class LabelWarning(DicommlWarning):
    """A label object loaded with something left out or resolved: overlapping segments in a
    label map, an empty ROI, POINT / OPEN_PLANAR contours skipped, contours off every plane."""
