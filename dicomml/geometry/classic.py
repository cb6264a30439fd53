"""Per-frame geometry of *classic* multi-frame objects (no functional groups) and of images
that carry no patient geometry at all.

Classic multi-frame IODs (NM, US, XA/RF, multi-frame SC, RT Dose, and vendor MR/CT written
without functional groups) give one Image Position (Patient) for the whole object, or none.
The frames are placed here, one plane-table row each (contract: :mod:`dicomml.geometry.planes`):

- **RT Dose** (Grid Frame Offset Vector (3004,000C), PS3.3 C.8.8.3.2): frame ``k`` lies at
  ``IPP + (o_k - base) * n`` with ``n = row cosine x column cosine``. ``base = 0`` for the
  *relative* form (first offset 0, the recommended one); for the *absolute* form (first offset
  equal to IPP's z and Image Orientation (Patient) 1\\0\\0\\0\\1\\0) ``base = o_0``, so that the
  offsets are patient z coordinates. Any other first offset is not defined by the standard: it
  is read like the absolute form (frame 0 at IPP, as Image Position (Patient) is the first
  plane's position) and a warning is recorded. Dose Grid Scaling (3004,000E) is the rescale
  slope (stored value x scaling = dose in Dose Units).
- **NM** with Slice Vector (0054,0080) in Frame Increment Pointer (0028,0009): frame ``k`` is
  slice ``SliceVector[k] - 1``; the other vectors the pointer names (Energy Window, Detector,
  Phase, R-R Interval, Time Slot, Rotation, Angular View, Time Slice) tell volumes apart
  (``temporal`` = the rank of their value combination). Position and orientation come from
  the top level, else from the first Detector Information Sequence (0054,0022) item.
- **Time frames** (Frame Increment Pointer naming only Frame Time (0018,1063) / Frame Time
  Vector (0018,1065)) of an object with geometry: every frame at IPP, one volume per frame.
- **Otherwise** frame ``k`` lies at ``IPP + k * step * n`` with ``step`` = Spacing Between
  Slices (0018,0088), else Slice Thickness (0018,0050) with the warning *spacing assumed*, else
  1 mm with a warning (absolute values: the frames progress along ``+n``).
- **No geometry** (neither Image Position nor Image Orientation (Patient), e.g. US, SC, XA): a
  placeholder; frames along +z, 1 mm apart, rows along +y and columns along +x (Image
  Orientation 1\\0\\0\\0\\1\\0), pixel spacing from Pixel Spacing, else Imager Pixel Spacing,
  else the ultrasound regions' physical deltas (:func:`ultrasound_spacing`), else 1 mm;
  ``geometry`` = ``"none"``. Several such files of one series are stacked in
  Instance Number order (:func:`place_unlocated`).

Every row also holds ``geometry`` (``"patient"`` or ``"none"``) and ``geometry_note`` (a
warning text, or None); :func:`notes` gathers them for ``Volume.metadata``.

Headers are read through ``ds.get(keyword)`` only (a pydicom ``Dataset`` or any mapping of
keywords to values): no DICOM parser is imported here. Units: mm; positions LPS.

Example
-------
>>> ds = {"NumberOfFrames": 3, "Rows": 4, "Columns": 5, "Modality": "MR",
...       "ImagePositionPatient": [0, 0, 10], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
...       "PixelSpacing": [0.5, 0.5], "SpacingBetweenSlices": 2.0}
>>> [row["position"] for row in classic_rows(ds, "mf.dcm")]
[(0.0, 0.0, 10.0), (0.0, 0.0, 12.0), (0.0, 0.0, 14.0)]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dicomml._numbers import declared_frames
from dicomml.errors import InvalidTagError, MissingTagError
from dicomml.geometry.spacing import SPACING_TAGS, pixel_spacing
from dicomml.geometry.tagvalues import tag_number, tag_vector

#: ``geometry`` of frames without Image Position / Orientation (Patient)
NONE = "none"
PATIENT = "patient"
#: the placeholder orientation: rows along +x, columns along +y (patient frame, LPS)
PLACEHOLDER_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_AXIAL = np.array(PLACEHOLDER_ORIENTATION)
GRID_FRAME_OFFSET = 0x3004000C
SLICE_VECTOR = 0x00540080
#: NM frame vectors (PS3.3 C.8.4.8) other than Slice Vector: they tell NM volumes apart
NM_VOLUME_VECTORS = {0x00540010: "EnergyWindowVector", 0x00540020: "DetectorVector",
                     0x00540030: "PhaseVector", 0x00540050: "RotationVector",
                     0x00540060: "RRIntervalVector", 0x00540070: "TimeSlotVector",
                     0x00540090: "AngularViewVector", 0x00540100: "TimeSliceVector"}
TIME_POINTERS = {0x00181063, 0x00181065}  # Frame Time, Frame Time Vector
_MAX_FRAMES = 1_000_000


def classic_rows(ds, path) -> list[dict]:
    """One plane-table row per frame of a classic (or single-frame, header-read) image.

    Raises :class:`~dicomml.errors.MissingTagError` / :class:`~dicomml.errors.InvalidTagError`
    naming ``path`` and the tag for unusable values (a Grid Frame Offset Vector of the wrong
    length, a Slice Vector out of range, five orientation cosines, ...).
    """
    frames = frame_count(ds, path)
    common = dict(path=str(path), tile=-1, rows=_size(ds, "Rows", path),
                  columns=_size(ds, "Columns", path), instance=tag_number(ds.get("InstanceNumber")),
                  acquisition=tag_number(ds.get("AcquisitionNumber")))
    common.update(_rescale(ds, path))
    placed = _placement(ds, path, frames)
    return [dict(common, frame=k, position=placed["positions"][k],
                 orientation=placed["orientation"], pixel_spacing=placed["spacing"],
                 temporal=placed["temporal"][k], geometry=placed["geometry"],
                 geometry_note=placed["note"]) for k in range(frames)]


def frame_count(ds, path) -> int:
    """Number of Frames (1 when absent or 0: :func:`dicomml._numbers.declared_frames`), checked
    to be a whole number in 1..1,000,000."""
    found = ds.get("NumberOfFrames")
    try:
        frames = declared_frames(found)
    except ValueError:
        frames = 0
    if not 0 < frames <= _MAX_FRAMES:
        raise InvalidTagError(f"NumberOfFrames must be a whole number in 1..{_MAX_FRAMES}, "
                              f"got {found!r}", path=path, tag="NumberOfFrames")
    return frames


def _placement(ds, path, frames: int) -> dict:
    """positions (one 3-tuple per frame), orientation, spacing, temporal, geometry, note."""
    ipp, iop = _patient_geometry(ds, path)
    nothing = [math.nan] * frames
    if ipp is None or iop is None:
        spacing = _projection_spacing(ds, path)
        positions = [(0.0, 0.0, float(k)) for k in range(frames)]
        note = None if ipp is None and iop is None else (
            "Image Position (Patient) without Image Orientation (Patient) or the reverse: "
            "placeholder geometry")
        return dict(positions=positions, orientation=PLACEHOLDER_ORIENTATION, spacing=spacing,
                    temporal=nothing, geometry=NONE, note=note)
    spacing = _spacing(ds, path, "PixelSpacing")
    normal = np.cross(iop[:3], iop[3:])
    offsets, temporal, note = _offsets(ds, path, frames, ipp, iop)
    positions = [tuple(float(v) for v in ipp + o * normal) for o in offsets]
    return dict(positions=positions, orientation=tuple(float(v) for v in iop), spacing=spacing,
                temporal=temporal, geometry=PATIENT, note=note)


def _offsets(ds, path, frames: int, ipp, iop) -> tuple[np.ndarray, list, str | None]:
    """Frame offsets along the normal (mm), temporal values, warning."""
    nothing = [math.nan] * frames
    pointers = _pointers(ds)
    if ds.get("GridFrameOffsetVector") is not None and (
            GRID_FRAME_OFFSET in pointers or str(ds.get("Modality", "")).upper() == "RTDOSE"):
        offsets, note = grid_frame_offsets(ds.get("GridFrameOffsetVector"), frames, ipp, iop,
                                           path=path)
        return offsets, nothing, note
    if frames == 1:
        return np.zeros(1), nothing, None
    if SLICE_VECTOR in pointers:
        return _nm_offsets(ds, path, frames, pointers)
    if pointers and pointers <= TIME_POINTERS:
        return np.zeros(frames), [float(k) for k in range(frames)], None
    step, note = frame_step(ds)
    return np.arange(frames) * step, nothing, note


def grid_frame_offsets(vector, frames: int, ipp, iop, *, path=None) -> tuple[np.ndarray, str]:
    """Offsets (mm) along the normal from Image Position (Patient) of each RT Dose frame, and
    which form of Grid Frame Offset Vector (PS3.3 C.8.8.3.2) was read.

    >>> grid_frame_offsets([-5, -3, -1], 3, np.array([0, 0, -5.]), _AXIAL)[0].tolist()
    [0.0, 2.0, 4.0]
    """
    values = _as_list(vector)
    extra = None
    if len(values) > frames:  # e.g. frames cut out of a dose grid, the vector left whole
        values, extra = values[:frames], (
            f"Grid Frame Offset Vector holds {len(values)} offsets for {frames} frame(s): "
            f"the first {frames} used")
    offsets = tag_vector(values, frames, "GridFrameOffsetVector", path=path)
    if offsets[0] == 0:
        return offsets, extra
    if np.allclose(iop, _AXIAL, atol=1e-6) and math.isclose(offsets[0], ipp[2], abs_tol=1e-3):
        return offsets - offsets[0], extra
    return offsets - offsets[0], extra or (
        f"Grid Frame Offset Vector starts at {offsets[0]:g} mm, neither 0 (relative) nor "
        f"Image Position (Patient) z {ipp[2]:g} with axial orientation (absolute): read "
        f"relative to the first frame")


def frame_step(ds) -> tuple[float, str | None]:
    """Distance between consecutive frames (mm, > 0) and the warning when it is assumed."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        step = abs(tag_number(ds.get(keyword)))
        if math.isfinite(step) and step > 0:
            note = None if keyword == "SpacingBetweenSlices" else (
                f"no Spacing Between Slices: frame spacing assumed equal to Slice Thickness "
                f"({step:g} mm)")
            return step, note
    return 1.0, "no Spacing Between Slices or Slice Thickness: frame spacing assumed 1 mm"


def _nm_offsets(ds, path, frames: int, pointers: set) -> tuple[np.ndarray, list, str | None]:
    """NM slices from Slice Vector, volumes from the other frame vectors."""
    slices = _frame_vector(ds, "SliceVector", frames, path)
    if (slices < 1).any():
        raise InvalidTagError("SliceVector values must be >= 1", path=path, tag="SliceVector")
    others = [_frame_vector(ds, NM_VOLUME_VECTORS[p], frames, path)
              for p in sorted(pointers & set(NM_VOLUME_VECTORS))]
    temporal = [math.nan] * frames
    if others:
        keys = list(zip(*(v.tolist() for v in others)))
        rank = {key: i for i, key in enumerate(sorted(set(keys)))}
        temporal = [float(rank[key]) for key in keys] if len(rank) > 1 else temporal
    step, note = frame_step(ds)
    return (slices - 1) * step, temporal, note


def _frame_vector(ds, keyword: str, frames: int, path) -> np.ndarray:
    found = ds.get(keyword)
    if found is None:
        raise MissingTagError(f"{keyword} is named by Frame Increment Pointer but absent",
                              path=path, tag=keyword)
    return tag_vector(_as_list(found), frames, keyword, path=path)


def _pointers(ds) -> set[int]:
    """Frame Increment Pointer (0028,0009) as a set of ints (tags)."""
    found = ds.get("FrameIncrementPointer")
    if found is None or found == "":
        return set()
    try:
        return {int(v) for v in _as_list(found)}
    except (TypeError, ValueError):
        return set()


def _patient_geometry(ds, path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Image Position / Orientation (Patient), each from the top level, else (NM) from the
    first Detector Information Sequence item; None for what is absent."""
    detectors = ds.get("DetectorInformationSequence") or []
    found = {}
    for keyword, size in (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6)):
        value, where = ds.get(keyword), ""
        if value in (None, "") and len(detectors):
            value, where = detectors[0].get(keyword), "DetectorInformationSequence item 1"
        found[keyword] = None if value in (None, "") else tag_vector(
            _as_list(value), size, keyword, path=path, where=where)
    ipp, iop = found["ImagePositionPatient"], found["ImageOrientationPatient"]
    if iop is not None:
        row, column = iop[:3], iop[3:]
        if min(np.linalg.norm(row), np.linalg.norm(column)) < 1e-6 or \
                np.linalg.norm(np.cross(row, column)) < 1e-3:
            raise InvalidTagError(f"ImageOrientationPatient cosines are zero or parallel: "
                                  f"{iop.tolist()}", path=path, tag="ImageOrientationPatient")
        iop = np.concatenate([row / np.linalg.norm(row), column / np.linalg.norm(column)])
    return ipp, iop


def ultrasound_spacing(ds) -> tuple[float, float] | None:
    """(row, column) spacing in mm from the Sequence of Ultrasound Regions (0018,6011) when
    every region measures both directions in cm (Physical Units X/Y Direction = 3, PS3.3
    C.8.5.5.1) with the same Physical Delta X / Y; None otherwise.

    >>> ultrasound_spacing({"SequenceOfUltrasoundRegions": [{"PhysicalUnitsXDirection": 3,
    ...     "PhysicalUnitsYDirection": 3, "PhysicalDeltaX": 0.02, "PhysicalDeltaY": 0.03}]})
    (0.3, 0.2)
    """
    regions = ds.get("SequenceOfUltrasoundRegions") or []
    found = set()
    for region in regions:
        units = (region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection"))
        deltas = (tag_number(region.get("PhysicalDeltaY")), tag_number(region.get("PhysicalDeltaX")))
        if units != (3, 3) or not all(math.isfinite(d) and d > 0 for d in deltas):
            return None
        found.add(tuple(round(10.0 * d, 9) for d in deltas))
    return found.pop() if len(found) == 1 else None


def _projection_spacing(ds, path) -> tuple[float, float]:
    """(row, column) spacing in mm of an image without patient geometry: the rule of
    :func:`dicomml.geometry.spacing.pixel_spacing` in the patient plane (Imager Pixel Spacing
    divided by the Estimated Radiographic Magnification Factor, a calibrated Pixel Spacing
    as it is...), each spacing present checked first (typed errors naming the tag); else the
    ultrasound regions' spacing, else 1 mm."""
    values = {keyword: ds.get(keyword) for keyword in SPACING_TAGS}
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        if values[keyword] not in (None, ""):
            values[keyword] = _spacing(ds, path, keyword)
    factor = "EstimatedRadiographicMagnificationFactor"
    values[factor] = tag_number(values[factor])
    spacing, rule = pixel_spacing(values, "patient")
    if rule.startswith("none"):
        return ultrasound_spacing(ds) or (1.0, 1.0)
    return float(spacing[0]), float(spacing[1])


def _spacing(ds, path, keyword: str) -> tuple[float, float]:
    """``keyword`` (a spacing pair, mm) as two positive finite floats; a typed error naming
    the tag when it is absent or not such a pair."""
    found = ds.get(keyword)
    if found in (None, ""):
        raise MissingTagError(f"{keyword} is required to place the frames", path=path,
                              tag=keyword)
    spacing = tag_vector(_as_list(found), 2, keyword, path=path)
    if (spacing <= 0).any():
        raise InvalidTagError(f"{keyword} must be positive (mm), got {spacing.tolist()}",
                              path=path, tag=keyword)
    return float(spacing[0]), float(spacing[1])


def _rescale(ds, path) -> dict:
    """slope / intercept: Dose Grid Scaling for RT Dose, else Rescale Slope / Intercept."""
    if str(ds.get("Modality", "")).upper() == "RTDOSE" and ds.get("DoseGridScaling") is not None:
        scaling = tag_number(ds.get("DoseGridScaling"))
        if not math.isfinite(scaling) or scaling == 0:
            raise InvalidTagError(f"DoseGridScaling must be a finite non-zero number, got "
                                  f"{ds.get('DoseGridScaling')!r}", path=path,
                                  tag="DoseGridScaling")
        return dict(slope=scaling, intercept=0.0)
    return dict(slope=tag_number(ds.get("RescaleSlope"), 1.0),
                intercept=tag_number(ds.get("RescaleIntercept"), 0.0))


def place_unlocated(planes: pd.DataFrame) -> pd.DataFrame:
    """Stack the planes without patient geometry (``geometry == "none"``) of several files one
    after the other along +z, 1 mm apart, in (Instance Number, path, frame) order; a copy when
    anything moves. A single file keeps its frame order.
    """
    if "geometry" not in planes.columns:
        return planes
    unlocated = (planes["geometry"] == NONE).to_numpy()
    if not unlocated.any() or planes.loc[unlocated, "path"].nunique() < 2:
        return planes
    rows = planes.loc[unlocated]
    instance = np.nan_to_num(rows["instance"].to_numpy(dtype=np.float64), nan=np.inf)
    order = np.lexsort((rows["frame"].to_numpy(), rows["path"].astype(str).to_numpy(), instance))
    z = np.empty(len(rows))
    z[order] = np.arange(len(rows), dtype=np.float64)
    positions = planes["position"].tolist()
    for index, value in zip(np.flatnonzero(unlocated).tolist(), z.tolist()):
        positions[index] = (0.0, 0.0, value)
    planes = planes.copy()
    planes["position"] = positions
    return planes


def notes(planes: pd.DataFrame, used: np.ndarray | None = None) -> dict:
    """``{"geometry": "patient" | "none", "geometry_warnings": [...]}`` of the planes ``used``
    (row indices; all when None). Planes from other readers (single-frame, enhanced, mosaic)
    always have patient geometry: ``{"geometry": "patient"}``."""
    if "geometry" not in planes.columns:
        return {"geometry": PATIENT}
    rows = planes if used is None else planes.iloc[np.asarray(used).ravel()]
    kinds = [k for k in rows["geometry"].tolist() if isinstance(k, str)]
    if not kinds:
        return {"geometry": PATIENT}
    found = {"geometry": NONE if NONE in kinds else PATIENT}
    warnings = sorted({n for n in rows["geometry_note"].tolist() if isinstance(n, str)})
    if warnings:
        found["geometry_warnings"] = warnings
    return found


# --- value helpers --------------------------------------------------------------------------
def _as_list(value) -> list:
    """A multi-valued element (or a single value) as a list."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        return [value]
    return list(value)


def _size(ds, keyword: str, path) -> int:
    found = ds.get(keyword)
    if found is None or found == "":
        raise MissingTagError(f"{keyword} is required", path=path, tag=keyword)
    try:
        size = int(found)
    except (TypeError, ValueError) as err:
        raise InvalidTagError(f"{keyword} is not a whole number: {found!r}", path=path,
                              tag=keyword) from err
    if not 0 < size <= 65535:
        raise InvalidTagError(f"{keyword} must be in 1..65535, got {size}", path=path,
                              tag=keyword)
    return size

