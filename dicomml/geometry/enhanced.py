"""Per-frame geometry of enhanced multi-frame objects (Enhanced CT / MR / PET, legacy converted, ...).

An enhanced object keeps every frame's attributes in functional groups: the
SharedFunctionalGroupsSequence (one item, valid for all frames) and the
PerFrameFunctionalGroupsSequence (one item per frame). Each functional group is a one-item
sequence ("macro") holding attributes, e.g. PlanePositionSequence > ImagePositionPatient. A macro
present in a frame's item overrides the shared one; attributes missing from both fall back to the
top-level data set (rescale, pixel spacing, slice thickness; position and orientation only for a
single-frame object).

:func:`frame_planes` turns a header into a plane table (see :mod:`dicomml.geometry.planes`): one row
per frame with its position (LPS mm), orientation, pixel spacing (Δrow, Δcol mm), rescale and
the values that tell the volumes of a 4D object apart (temporal position, effective echo time,
diffusion b-value and gradient, stack). Frames are *not* sorted here: the loader sorts by position
along the slice normal.

Extra columns beyond the contract: ``in_stack_position`` (InStackPositionNumber, float),
``slice_thickness`` / ``spacing_between_slices`` (mm, NaN if absent), ``complex_component``
(MR Image Frame Type's ComplexImageComponent: MAGNITUDE, PHASE, REAL, ... or None; Philips
files may hold magnitude and phase frames at the same positions), ``dimension_index``
(the DimensionIndexValues tuple or None) and ``volume_key`` (the DimensionIndexValues of the
non-spatial dimensions only — the ones that are not position, in-stack position or stack — a
tuple that is equal for all frames of one 3D volume; None when there is no dimension index);
for Philips files ``philips_scale_slope`` / ``philips_scale_intercept`` (private (2005,xx0E) /
(2005,xx0D) per frame, :mod:`dicomml.geometry.philips`; NaN when absent).

Example
-------
>>> import pydicom
>>> ds = pydicom.dcmread("enhanced_mr.dcm", stop_before_pixels=True)  # doctest: +SKIP
>>> planes = frame_planes(ds, "enhanced_mr.dcm")                     # doctest: +SKIP
>>> planes[["frame", "position", "echo", "b_value"]].head(2)          # doctest: +SKIP
   frame                  position  echo  b_value
0      0  (-110.0, -120.3, -30.2)   9.5      NaN
1      1  (-110.0, -120.3, -27.2)   9.5      NaN
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dicomml._numbers import integer_string
from dicomml.errors import InvalidTagError, MissingTagError
from dicomml.geometry import philips
from dicomml.geometry.planes import plane_table
from dicomml.geometry.tagvalues import tag_number, tag_vector

#: dimension index pointers that locate a frame in space (not a separate volume)
SPATIAL_POINTERS = {Tag(0x0020, 0x0032), Tag(0x0020, 0x9057), Tag(0x0020, 0x9056),
                    Tag(0x0020, 0x0037)}  # IPP, InStackPositionNumber, StackID, IOP
_MAX_FRAMES = 1_000_000


def is_enhanced(ds) -> bool:
    """True when ``ds`` carries functional groups (any enhanced / multi-frame functional-group IOD).

    Example
    -------
    >>> is_enhanced(pydicom.dcmread(get_testdata_file("CT_small.dcm")))  # doctest: +SKIP
    False
    """
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def number_of_frames(ds, *, path=None) -> int:
    """NumberOfFrames as an int, checked against the per-frame functional groups.

    Raises :class:`~dicomml.errors.MissingTagError` when absent and
    :class:`~dicomml.errors.InvalidTagError` when not a positive integer or when the
    PerFrameFunctionalGroupsSequence holds a different number of items.
    """
    value = ds.get("NumberOfFrames")
    if value is None or value == "":
        raise MissingTagError("multi-frame object without NumberOfFrames", path=path,
                              tag="NumberOfFrames")
    try:
        frames = integer_string(value)
    except ValueError as err:
        raise InvalidTagError(f"NumberOfFrames is not an integer: {value!r}", path=path,
                              tag="NumberOfFrames") from err
    if not 0 < frames <= _MAX_FRAMES:
        raise InvalidTagError(f"implausible NumberOfFrames {frames}", path=path,
                              tag="NumberOfFrames")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != frames:
        raise InvalidTagError(f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for "
                              f"{frames} frames", path=path, tag="PerFrameFunctionalGroupsSequence")
    return frames


def dimensions(ds) -> list[dict]:
    """The DimensionIndexSequence as a list of ``{"name", "pointer", "group"}`` dicts.

    ``name`` is the DimensionDescriptionLabel, else the keyword of the DimensionIndexPointer;
    ``pointer`` / ``group`` are the pointed-to attribute and functional group (pydicom Tags;
    group None when absent). Order = order of the values in DimensionIndexValues.

    Example
    -------
    >>> [d["name"] for d in dimensions(ds)]                      # doctest: +SKIP
    ['StackID', 'InStackPositionNumber', 'EffectiveEchoTime']
    """
    result = []
    for item in ds.get("DimensionIndexSequence") or []:
        pointer = item.get("DimensionIndexPointer")
        pointer = None if pointer is None else Tag(pointer)
        group = item.get("FunctionalGroupPointer")
        label = str(item.get("DimensionDescriptionLabel") or "").strip()
        name = label or (keyword_for_tag(pointer) if pointer is not None else "") or str(pointer)
        result.append({"name": name, "pointer": pointer,
                       "group": None if group is None else Tag(group)})
    return result


class FrameGroups:
    """Look up a functional-group macro for one frame: the frame's own item first, then shared.

    Example
    -------
    >>> FrameGroups(ds, 0).macro("PlanePositionSequence").ImagePositionPatient  # doctest: +SKIP
    [-110.0, -120.3, -30.2]
    """

    def __init__(self, ds, index: int, shared: dict[str, Dataset] | None = None):
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        if shared is None:
            shared = shared_macros(ds)
        self.macros = dict(shared)
        if index < len(per_frame):
            self.macros.update(_macros(per_frame[index]))

    def macro(self, keyword: str) -> Dataset | None:
        """First item of the functional group ``keyword`` (frame overrides shared), or None."""
        return self.macros.get(keyword)

    def value(self, macro: str, keyword: str, default=None):
        """``keyword`` inside ``macro`` (frame, then shared), else ``default``."""
        item = self.macro(macro)
        value = None if item is None else item.get(keyword)
        return default if value is None or value == "" else value


def shared_macros(ds) -> dict[str, Dataset]:
    """``{functional group keyword: its item}`` of the SharedFunctionalGroupsSequence."""
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    return _macros(shared[0]) if len(shared) else {}


def _macros(item: Dataset) -> dict[str, Dataset]:
    """The one-item sequences (functional groups) of a functional-groups item, by keyword."""
    return {element.keyword: element.value[0] for element in item
            if element.VR == "SQ" and element.value is not None and len(element.value)}


def frame_planes(ds, path) -> pd.DataFrame:
    """Plane table with one row per frame of an enhanced multi-frame object.

    ``ds`` is the header (pixels not needed), ``path`` the file name recorded in ``path`` and
    used in errors. An object without any patient geometry (no Plane Position / Orientation
    macro anywhere, e.g. Enhanced XA or US) gets the placeholder rows of
    :func:`dicomml.geometry.classic.classic_rows` (``geometry`` = "none"). Raises
    :class:`~dicomml.errors.MissingTagError` naming frame and tag when a
    frame has no position, orientation or pixel spacing, and
    :class:`~dicomml.errors.InvalidTagError` for unusable values or inconsistent frame counts.

    Example
    -------
    >>> t = frame_planes(ds, "mr.dcm")                            # doctest: +SKIP
    >>> t.loc[0, ["frame", "rows", "columns", "slope"]].tolist()  # doctest: +SKIP
    [0, 64, 64, 1.0]
    """
    return plane_table(frame_rows(ds, path))


def frame_rows(ds, path) -> list[dict]:
    """The rows of :func:`frame_planes` as plain dicts (for one table over many files)."""
    if not is_enhanced(ds):
        raise MissingTagError("not an enhanced multi-frame object (no functional groups)",
                              path=path, tag="PerFrameFunctionalGroupsSequence")
    frames = number_of_frames(ds, path=path)
    if "PerFrameFunctionalGroupsSequence" not in ds and frames > 1:
        raise MissingTagError(f"{frames} frames but no PerFrameFunctionalGroupsSequence",
                              path=path, tag="PerFrameFunctionalGroupsSequence")
    shared = shared_macros(ds)
    if not _patient_geometry(ds, shared):  # e.g. Enhanced XA / US: placeholder geometry
        from dicomml.geometry import classic

        return classic.classic_rows(ds, path)
    rows, columns = _size(ds, "Rows", path), _size(ds, "Columns", path)
    spatial = [i for i, d in enumerate(dimensions(ds)) if d["pointer"] in SPATIAL_POINTERS]
    common = dict(path=str(path), tile=-1, rows=rows, columns=columns,
                  instance=tag_number(ds.get("InstanceNumber")))
    # top-level IPP/IOP (not allowed in enhanced IODs) are trusted only for a single frame
    top = ds if frames == 1 else Dataset()
    rows = [dict(common, **_frame_row(ds, i, path, spatial, shared, top))
            for i in range(frames)]
    if philips.is_philips(ds):  # private scale slope per frame (dicomml.loader.philips)
        for row, (slope, intercept) in zip(rows, philips.frame_scales(ds)):
            row["philips_scale_slope"], row["philips_scale_intercept"] = slope, intercept
    return rows


def _frame_row(ds, index: int, path, spatial: list[int], shared: dict, top: Dataset) -> dict:
    groups = FrameGroups(ds, index, shared)
    where = f"frame {index}"
    position = _vector(groups.value("PlanePositionSequence", "ImagePositionPatient",
                                    top.get("ImagePositionPatient")), 3,
                       "PlanePositionSequence > ImagePositionPatient", where, path)
    orientation = _vector(groups.value("PlaneOrientationSequence", "ImageOrientationPatient",
                                       top.get("ImageOrientationPatient")), 6,
                          "PlaneOrientationSequence > ImageOrientationPatient", where, path)
    spacing = _vector(groups.value("PixelMeasuresSequence", "PixelSpacing", ds.get("PixelSpacing")),
                      2, "PixelMeasuresSequence > PixelSpacing", where, path)
    if (spacing <= 0).any():
        raise InvalidTagError(f"{where}: PixelSpacing must be positive, got {spacing.tolist()}",
                              path=path, tag="PixelMeasuresSequence > PixelSpacing")
    index_values = groups.value("FrameContentSequence", "DimensionIndexValues")
    index_values = None if index_values is None else _int_tuple(index_values)
    b_value, gradient = _diffusion(groups)
    return dict(
        frame=index, position=tuple(position), orientation=tuple(orientation),
        pixel_spacing=tuple(spacing),
        slope=tag_number(groups.value("PixelValueTransformationSequence", "RescaleSlope",
                                   ds.get("RescaleSlope")), 1.0),
        intercept=tag_number(groups.value("PixelValueTransformationSequence", "RescaleIntercept",
                                       ds.get("RescaleIntercept")), 0.0),
        temporal=_temporal(groups),
        echo=tag_number(groups.value("MREchoSequence", "EffectiveEchoTime")),
        b_value=b_value, gradient=gradient,
        stack=_text(groups.value("FrameContentSequence", "StackID")),
        in_stack_position=tag_number(groups.value("FrameContentSequence", "InStackPositionNumber")),
        slice_thickness=tag_number(groups.value("PixelMeasuresSequence", "SliceThickness",
                                             ds.get("SliceThickness"))),
        spacing_between_slices=tag_number(groups.value("PixelMeasuresSequence",
                                                    "SpacingBetweenSlices",
                                                    ds.get("SpacingBetweenSlices"))),
        complex_component=_text(groups.value("MRImageFrameTypeSequence",
                                             "ComplexImageComponent")),
        dimension_index=index_values,
        volume_key=None if index_values is None else tuple(
            v for i, v in enumerate(index_values) if i not in spatial),
    )


def _patient_geometry(ds, shared: dict) -> bool:
    """False when no frame can be placed in the patient: no Plane Position / Orientation
    macro (shared or in the first frame) and no top-level Image Position / Orientation."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    first = _macros(per_frame[0]) if len(per_frame) else {}
    names = ("PlanePositionSequence", "PlaneOrientationSequence")
    return any(n in shared or n in first for n in names) or \
        "ImagePositionPatient" in ds or "ImageOrientationPatient" in ds


def _temporal(groups: FrameGroups) -> float:
    """TemporalPositionIndex, else the nominal cardiac trigger delay (ms); NaN when neither."""
    value = tag_number(groups.value("FrameContentSequence", "TemporalPositionIndex"))
    if math.isnan(value):
        value = tag_number(groups.value("CardiacSynchronizationSequence",
                                     "NominalCardiacTriggerDelayTime"))
    return value


def _diffusion(groups: FrameGroups) -> tuple[float, tuple[float, float, float] | None]:
    """MR diffusion b-value (s/mm^2) and unit gradient direction (LPS), or (NaN, None)."""
    item = groups.macro("MRDiffusionSequence")
    if item is None:
        return math.nan, None
    b_value = tag_number(item.get("DiffusionBValue"))
    gradient = None
    directions = item.get("DiffusionGradientDirectionSequence") or []
    if len(directions) and directions[0].get("DiffusionGradientOrientation") is not None:
        vector = np.array([float(v) for v in directions[0].DiffusionGradientOrientation])
        norm = float(np.linalg.norm(vector)) if vector.shape == (3,) else 0.0
        if norm > 1e-6 and np.isfinite(vector).all():
            gradient = tuple(float(v) for v in vector / norm)
    return b_value, gradient


# --- value helpers --------------------------------------------------------------------------------
def _size(ds, keyword: str, path) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise MissingTagError(f"{keyword} is required", path=path, tag=keyword)
    if int(value) <= 0:
        raise InvalidTagError(f"{keyword} must be positive, got {value}", path=path, tag=keyword)
    return int(value)


def _vector(value, length: int, tag: str, where: str, path) -> np.ndarray:
    return tag_vector(value, length, tag, path=path, where=where)



def _int_tuple(value) -> tuple[int, ...]:
    if isinstance(value, int | float):
        return (int(value),)
    return tuple(int(v) for v in value)


def _text(value) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None
