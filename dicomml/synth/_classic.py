"""Classic multi-frame objects (no functional groups) with ground truth:
:func:`write_classic_multiframe`.

Kinds (one file each, frames in the stored order the kind implies):

- ``"MR"`` / ``"CT"``: MR / CT Image Storage with Number of Frames, one Image Position
  (Patient) for frame 0, frames stacked along ``+cross(row, column)`` by Spacing Between
  Slices (``spacing_tag="SpacingBetweenSlices"``) or, with ``spacing_tag="SliceThickness"``,
  by Slice Thickness only (a reader must then *assume* the spacing and say so).
- ``"RTDOSE"``: RT Dose Storage, 32-bit dose grid, Grid Frame Offset Vector in the
  ``gfov="relative"`` (first offset 0) or ``"absolute"`` (patient z; axial only) form of
  PS3.3 C.8.8.3.2, Dose Grid Scaling as the value scale (Gy per stored unit).
- ``"NM"``: NM Image Storage (reconstructed tomo), position and orientation only in the
  Detector Information Sequence, frames stored in shuffled slice order and located by
  Slice Vector (Frame Increment Pointer = Slice Vector).
- ``"US"``, ``"SC"``, ``"XA"``: cine loops without Image Position / Orientation (Patient)
  (Frame Increment Pointer = Frame Time); SC carries Pixel Spacing, XA Imager Pixel Spacing,
  US one Sequence of Ultrasound Regions item in cm. Ground truth geometry ``"none"``: frame
  ``k`` at ``(0, 0, k)`` mm, rows along +y, columns along +x (the placeholder of
  :mod:`dicomml.geometry.classic`).

The truth is a :class:`~dicomml.synth.SynthSeries`: ``array`` (frames sorted along the slice
normal, real-world values: stored * slope + intercept, or * Dose Grid Scaling), ``affine``
(index (slice, row, column, 1) -> LPS mm), ``meta["geometry"]`` ("patient" / "none"),
``meta["spacing_assumed"]`` and ``meta["stored_order"]`` (the sorted slice of each stored
frame).

Example
-------
>>> import tempfile
>>> truth = write_classic_multiframe(tempfile.mkdtemp(), kind="RTDOSE", shape=(4, 6, 5))
>>> truth.array.shape, truth.meta["geometry"], float(truth.affine[2, 0])
((4, 6, 5), 'patient', 2.5)
"""

from __future__ import annotations

import pathlib

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from . import _geometry as geo
from ._encode import encode_pixel_data
from ._phantom import phantom

KINDS = ("MR", "CT", "RTDOSE", "NM", "US", "SC", "XA")
_SOP = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2",
        "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2", "NM": "1.2.840.10008.5.1.4.1.1.20",
        "US": "1.2.840.10008.5.1.4.1.1.3.1", "SC": "1.2.840.10008.5.1.4.1.1.7.3",
        "XA": "1.2.840.10008.5.1.4.1.1.12.1"}
_UNLOCATED = ("US", "SC", "XA")
FRAME_TIME, SLICE_VECTOR, GRID_FRAME_OFFSET = 0x00181063, 0x00540080, 0x3004000C


def write_classic_multiframe(folder, *, kind="MR", shape=(6, 16, 12), spacing=(2.5, 0.8, 0.7),
                             orientation="axial", origin=(-40.0, -30.0, -20.0),
                             spacing_tag="SpacingBetweenSlices", gfov="relative",
                             dose_scaling=2.5e-4, transfer_syntax=ExplicitVRLittleEndian,
                             seed=0, series_uid=None, name=None, instance_number=1):
    """Write one classic multi-frame file of ``kind`` into ``folder``; return its truth.

    ``shape`` = (frames, rows, columns); ``spacing`` = (frame step, row, column) mm;
    ``orientation``: as :func:`dicomml.synth.orientation_cosines` (RTDOSE "absolute" needs
    axial). ``series_uid`` / ``instance_number`` let several files form one series. Existing
    files are never overwritten (``FileExistsError``).
    """
    from ._series import SynthSeries, _write

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    frames, rows, columns = shape
    rng = np.random.default_rng([seed, 4242])
    values = phantom(shape, modality="CT" if kind == "CT" else "MR", seed=seed)
    stored, slope, intercept = _quantise(values, kind, dose_scaling)
    stored_order = rng.permutation(frames) if kind == "NM" else np.arange(frames)
    iop = np.asarray(geo.orientation_cosines(orientation), float)
    ds = _header(kind, shape, spacing, iop, origin, spacing_tag, gfov, slope, intercept,
                 stored_order, series_uid, seed)
    ds.InstanceNumber = instance_number
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SeriesInstanceUID, str(instance_number)])
    bits = 32 if kind == "RTDOSE" else 16
    encoded = encode_pixel_data(stored[stored_order], transfer_syntax,
                                bits_stored=bits if kind == "RTDOSE" else 12)
    ds.add_new("PixelData", encoded.vr, encoded.value)
    if encoded.encapsulated:
        ds["PixelData"].is_undefined_length = True
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = _write(folder / (name or f"{kind}_classic_{seed}.dcm"), ds, transfer_syntax)
    affine, positions, geometry = _truth_geometry(kind, shape, spacing, iop, origin, ds)
    meta = dict(geometry=geometry, stored_order=stored_order.tolist(), slope=slope,
                intercept=intercept, kind=kind,
                spacing_assumed=kind in ("MR", "CT", "NM") and spacing_tag == "SliceThickness")
    return SynthSeries(
        paths=[path], array=stored * slope + intercept, stored=stored, affine=affine,
        positions=positions, orientation=iop if geometry == "patient" else None,
        spacing=tuple(spacing), patient_id=str(ds.PatientID), study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID, modality=kind, transfer_syntax=str(transfer_syntax),
        meta=meta)


def _quantise(values: np.ndarray, kind: str, dose_scaling: float):
    """(stored integers, slope, intercept) of the phantom's values."""
    if kind == "RTDOSE":  # a positive dose distribution: stored * scaling = Gy
        dose = (values - values.min()) / (np.ptp(values) or 1.0) * 60.0
        return np.round(dose / dose_scaling).astype(np.uint32), dose_scaling, 0.0
    if kind == "CT":
        return np.clip(np.round(values + 1024), 0, 4095).astype(np.uint16), 1.0, -1024.0
    return np.clip(np.round(values), 0, 4095).astype(np.uint16), 1.0, 0.0


def _header(kind, shape, spacing, iop, origin, spacing_tag, gfov, slope, intercept,
            stored_order, series_uid, seed) -> Dataset:
    frames, rows, columns = shape
    ds = Dataset()
    ds.SOPClassUID = _SOP[kind]
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(series_uid), kind, str(seed), "sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[kind, str(seed), "study"])
    ds.SeriesInstanceUID = series_uid or generate_uid(entropy_srcs=[kind, str(seed), "series"])
    ds.PatientID, ds.PatientName, ds.Modality = f"CLASSIC{seed:03d}", "Classic^Phantom", kind
    ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "dicomml-synth", 1, 1
    ds.StudyDate = ds.SeriesDate = "20240102"
    ds.ImageType = ["ORIGINAL", "PRIMARY"] + (["RECON TOMO"] if kind == "NM" else [])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.BitsAllocated = 32 if kind == "RTDOSE" else 16
    ds.BitsStored = 32 if kind == "RTDOSE" else 12
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    if kind in _UNLOCATED:
        _unlocated(ds, kind, spacing)
        return ds
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[kind, str(seed), "for"])
    placed = ds
    if kind == "NM":
        placed = Dataset()
        ds.DetectorInformationSequence = [placed]
        ds.NumberOfSlices = frames
        ds.SliceVector = [int(k) + 1 for k in stored_order]
        ds.FrameIncrementPointer = SLICE_VECTOR
    placed.ImagePositionPatient = geo.ds_strings(origin)
    placed.ImageOrientationPatient = geo.ds_strings(iop)
    ds.PixelSpacing = geo.ds_strings(spacing[1:])
    if kind == "RTDOSE":
        ds.DoseGridScaling = f"{slope:.6g}"
        ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
        ds.FrameIncrementPointer = GRID_FRAME_OFFSET
        offsets = np.arange(frames) * spacing[0]
        if gfov == "absolute":
            offsets = offsets + float(geo.ds_strings([origin[2]])[0])
        ds.GridFrameOffsetVector = geo.ds_strings(offsets)
    else:
        ds.SliceThickness = geo.ds_strings([spacing[0]])[0]
        if spacing_tag == "SpacingBetweenSlices":
            ds.SpacingBetweenSlices = geo.ds_strings([spacing[0]])[0]
        if kind == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    return ds


def _unlocated(ds: Dataset, kind: str, spacing) -> None:
    ds.FrameIncrementPointer = FRAME_TIME
    ds.FrameTime = "33.3"
    if kind == "SC":
        ds.PixelSpacing = geo.ds_strings(spacing[1:])
    elif kind == "XA":
        ds.ImagerPixelSpacing = geo.ds_strings(spacing[1:])
    else:  # US: one region in cm (PS3.3 C.8.5.5)
        region = Dataset()
        region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1 = region.RegionLocationMaxY1 = 0
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3
        region.PhysicalDeltaX, region.PhysicalDeltaY = spacing[2] / 10, spacing[1] / 10
        ds.SequenceOfUltrasoundRegions = [region]


def _truth_geometry(kind, shape, spacing, iop, origin, ds):
    """(affine, sorted frame positions, "patient" | "none"), from the written values."""
    frames = shape[0]
    if kind in _UNLOCATED:
        pixel = tuple(float(v) for v in spacing[1:])
        affine = np.zeros((4, 4))
        affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = 1.0, pixel[0], pixel[1], 1.0
        positions = np.array([(0.0, 0.0, float(k)) for k in range(frames)])
        return affine, positions, "none"
    written = np.array([float(v) for v in geo.ds_strings(origin)])
    step = float(geo.ds_strings([spacing[0]])[0])
    positions = written + np.arange(frames)[:, None] * step * geo.slice_normal(iop)
    affine = geo.ground_truth_affine(iop, positions, spacing[1:], step)
    return affine, positions, "patient"
