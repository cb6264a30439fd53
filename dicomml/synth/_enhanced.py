"""Headers of Enhanced CT / MR Image Storage (multi-frame) synthetic objects.

One file holds every frame of the series, in the order given by ``frame_index`` (shuffled by
the writer). The SharedFunctionalGroupsSequence carries PixelMeasures, PlaneOrientation,
PixelValueTransformation and FrameVOILUT; each PerFrameFunctionalGroupsSequence item carries
PlanePosition and FrameContent (StackID, InStackPositionNumber — the 1-based sorted slice
index —, TemporalPositionIndex for temporal 4D, DimensionIndexValues) and, for MR, MREcho.

Dimensions (DimensionIndexSequence): StackID, InStackPositionNumber, then
TemporalPositionIndex (temporal 4D) or EffectiveEchoTime (multi-echo 4D).

Example
-------
>>> from dicomml.synth._plan import make_plan
>>> plan = make_plan(modality="MR", shape=(2, 3, 4, 4), multiframe=True)
>>> ds = enhanced_dataset(plan, [(v, s) for v in range(2) for s in range(3)])
>>> int(ds.NumberOfFrames), len(ds.PerFrameFunctionalGroupsSequence)
(6, 6)
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ._geometry import ds_strings
from ._headers import (
    STUDY_DATE,
    STUDY_TIME,
    common_modules,
    pixel_description,
    sop_instance_uid,
)


def enhanced_dataset(plan, frame_index: list[tuple[int, int]]) -> Dataset:
    """The header (no pixel data) of the enhanced object whose frame ``i`` is
    (volume, sorted slice) ``frame_index[i]``."""
    ds = Dataset()
    ds.SOPClassUID = plan.sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid(plan, "enhanced")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    common_modules(ds, plan)
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = plan.acquisition_number
    ds.ContentDate = STUDY_DATE
    ds.ContentTime = STUDY_TIME
    ds.AcquisitionDateTime = STUDY_DATE + STUDY_TIME
    ds.ContentQualification = "PRODUCT"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "INVERSE" if plan.photometric == "MONOCHROME1" else "IDENTITY"
    _enhanced_image_attributes(ds, plan)
    pixel_description(ds, plan)
    ds.NumberOfFrames = len(frame_index)
    _dimensions(ds, plan)
    ds.SharedFunctionalGroupsSequence = [_shared_groups(plan)]
    ds.PerFrameFunctionalGroupsSequence = [_frame_groups(plan, v, s) for v, s in frame_index]
    return ds


def _enhanced_image_attributes(ds: Dataset, plan) -> None:
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    if plan.modality == "MR":
        ds.ComplexImageComponent = "MAGNITUDE"
        ds.AcquisitionContrast = "T2" if plan.fourth_dim == "echo" else "T1"
        ds.MagneticFieldStrength = "1.5"
        ds.MRAcquisitionType = "2D"
    else:
        ds.KVP = "120"


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _shared_groups(plan) -> Dataset:
    measures = _item(PixelSpacing=ds_strings(plan.spacing[1:]),
                     SliceThickness=ds_strings([plan.spacing[0]])[0])
    if plan.modality == "MR":
        measures.SpacingBetweenSlices = ds_strings([plan.spacing[0]])[0]
    group = _item(
        PixelMeasuresSequence=[measures],
        PlaneOrientationSequence=[_item(ImageOrientationPatient=ds_strings(plan.iop))],
        FrameVOILUTSequence=[_item(WindowCenter=ds_strings([plan.window[0]])[0],
                                   WindowWidth=ds_strings([plan.window[1]])[0])])
    if plan.write_rescale:
        group.PixelValueTransformationSequence = [_item(
            RescaleIntercept=ds_strings([plan.intercept])[0],
            RescaleSlope=ds_strings([plan.slope])[0],
            RescaleType="HU" if plan.modality == "CT" else "US")]
    if plan.modality == "CT":
        group.CTAcquisitionDetailsSequence = [_item(
            GantryDetectorTilt=ds_strings([plan.gantry_tilt])[0])]
    else:
        group.MRTimingAndRelatedParametersSequence = [_item(RepetitionTime="500",
                                                            EchoTrainLength=1)]
    return group


def _frame_groups(plan, volume: int, slice_index: int) -> Dataset:
    dims = [1, slice_index + 1]
    content = _item(StackID="1", InStackPositionNumber=slice_index + 1,
                    FrameAcquisitionNumber=volume + 1)
    if plan.n_volumes > 1:
        dims.append(volume + 1)
        if plan.fourth_dim == "temporal":
            content.TemporalPositionIndex = volume + 1
    content.DimensionIndexValues = dims
    group = _item(
        FrameContentSequence=[content],
        PlanePositionSequence=[_item(ImagePositionPatient=ds_strings(
            plan.positions[slice_index]))])
    if plan.modality == "MR":
        group.MREchoSequence = [_item(EffectiveEchoTime=plan.echo_time(volume))]
    return group


def _dimensions(ds: Dataset, plan) -> None:
    organisation = generate_uid(entropy_srcs=[plan.series_uid, "dimensions"])
    ds.DimensionOrganizationSequence = [_item(DimensionOrganizationUID=organisation)]
    pointers = [("StackID", "FrameContentSequence"),
                ("InStackPositionNumber", "FrameContentSequence")]
    if plan.n_volumes > 1:
        pointers.append(("TemporalPositionIndex", "FrameContentSequence")
                        if plan.fourth_dim == "temporal"
                        else ("EffectiveEchoTime", "MREchoSequence"))
    ds.DimensionIndexSequence = [
        _item(DimensionOrganizationUID=organisation,
              DimensionIndexPointer=tag_for_keyword(index),
              FunctionalGroupPointer=tag_for_keyword(group))
        for index, group in pointers]
