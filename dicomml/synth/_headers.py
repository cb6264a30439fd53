"""DICOM headers of synthetic images: patient/study/series modules, image plane, pixel module.

The builders fill a :class:`pydicom.Dataset` from a :class:`~dicomml.synth._plan.Plan`; the
writer adds pixel data and file meta.

Example
-------
>>> from dicomml.synth._plan import make_plan
>>> plan = make_plan(shape=(2, 4, 4))
>>> ds = single_frame_dataset(plan, volume=0, slice_index=1, instance_number=2)
>>> ds.Modality, int(ds.InstanceNumber), ds.Rows
('CT', 2, 4)
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ._geometry import ds_strings
from ._vendor import STYLES as VENDOR_STYLES
from ._vendor import add_vendor_diffusion

STUDY_DATE = "20240102"
STUDY_TIME = "101500"


def sop_instance_uid(plan, *parts) -> str:
    """A deterministic SOP Instance UID for one file of ``plan``. The parts are joined with a
    separator: pydicom hashes the concatenated sources, so (volume 1, slice 11) and (volume 11,
    slice 1) would otherwise get the same UID."""
    return generate_uid(entropy_srcs=[plan.series_uid, "instance", "/".join(map(str, parts))])


def single_frame_dataset(plan, *, volume: int, slice_index: int, instance_number: int,
                         template: Dataset | None = None) -> Dataset:
    """The header of one single-frame CT/MR Image Storage instance (no pixel data).

    ``template`` (from :func:`volume_template` for the same ``volume``) saves rebuilding
    the attributes shared by every slice.
    """
    ds = Dataset(template if template is not None else volume_template(plan, volume))
    ds.SOPInstanceUID = sop_instance_uid(plan, volume, slice_index)
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = ds_strings(plan.positions[slice_index])
    ds.SliceLocation = ds_strings([plan.slice_locations[slice_index]])[0]
    ds.ContentTime = f"1016{slice_index % 60:02d}"
    return ds


def volume_template(plan, volume: int) -> Dataset:
    """The attributes every slice of ``volume`` shares."""
    ds = Dataset()
    ds.SOPClassUID = plan.sop_class_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if plan.modality == "CT" else "M"]
    common_modules(ds, plan)
    ds.AcquisitionNumber = plan.acquisition_number
    ds.ImageOrientationPatient = ds_strings(plan.iop)
    _image_pixel_module(ds, plan)
    _modality_details(ds, plan, volume)
    ds.ContentDate = STUDY_DATE
    return ds


def common_modules(ds: Dataset, plan) -> None:
    """Patient, study, series, frame of reference and equipment modules."""
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = STUDY_TIME
    ds.AccessionNumber = f"ACC{plan.seed:06d}"
    ds.Modality = plan.modality
    ds.Manufacturer = "dicomml-synth"
    ds.ManufacturerModelName = "Phantom"
    ds.InstitutionName = "Synthetic Hospital"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic phantom study"
    ds.SeriesDescription = plan.series_description
    ds.PatientName = plan.patient_name
    ds.PatientID = plan.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = plan.body_part
    ds.PatientPosition = plan.patient_position
    ds.StudyInstanceUID = plan.study_uid
    ds.SeriesInstanceUID = plan.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = plan.series_number
    ds.FrameOfReferenceUID = plan.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""


def pixel_description(ds: Dataset, plan) -> None:
    """Samples, photometric interpretation, matrix and bit layout (single- and multi-frame)."""
    fmt = plan.fmt
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = plan.photometric
    ds.Rows, ds.Columns = plan.shape[-2:]
    ds.BitsAllocated = fmt.bits_allocated
    ds.BitsStored = fmt.bits_stored
    ds.HighBit = fmt.bits_stored - 1
    ds.PixelRepresentation = int(fmt.signed)


def _image_pixel_module(ds: Dataset, plan) -> None:
    """Pixel description, spacing, rescale (CT) and window."""
    pixel_description(ds, plan)
    ds.PixelSpacing = ds_strings(plan.spacing[1:])
    ds.SliceThickness = ds_strings([plan.spacing[0]])[0]
    if plan.write_rescale:
        ds.RescaleIntercept = ds_strings([plan.intercept])[0]
        ds.RescaleSlope = ds_strings([plan.slope])[0]
        ds.RescaleType = "HU" if plan.modality == "CT" else "US"
    ds.WindowCenter = ds_strings([plan.window[0]])[0]
    ds.WindowWidth = ds_strings([plan.window[1]])[0]


def _modality_details(ds: Dataset, plan, volume: int) -> None:
    """CT or MR acquisition attributes; the 4th dimension (time or echo) of ``volume``."""
    if plan.modality == "CT":
        ds.KVP = "120"
        ds.GantryDetectorTilt = ds_strings([plan.gantry_tilt])[0]
        ds.ConvolutionKernel = "STANDARD"
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.MagneticFieldStrength = "1.5"
        ds.RepetitionTime = "500"
        ds.SpacingBetweenSlices = ds_strings([plan.spacing[0]])[0]
        ds.EchoTime = ds_strings([plan.echo_time(volume)])[0]
        ds.EchoNumbers = volume + 1 if plan.fourth_dim == "echo" else 1
        ds.EchoTrainLength = 1
    if plan.fourth_dim in VENDOR_STYLES:
        add_vendor_diffusion(ds, plan.fourth_dim, volume, plan.n_volumes)
    if plan.n_volumes > 1 and plan.fourth_dim == "temporal":
        ds.TemporalPositionIdentifier = volume + 1
        ds.NumberOfTemporalPositions = plan.n_volumes
        ds.TriggerTime = ds_strings([plan.temporal_spacing_ms * volume])[0]
