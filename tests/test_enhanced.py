"""Enhanced multi-frame objects: per-frame geometry from functional groups.

References, none of them our own reader:
- ``dicomml.synth`` enhanced files (shuffled frames, oblique, every patient position, 4D by echo
  or temporal position) with their ground truth computed without any reader;
- a real scanner series (the T1 sagittal of ``../shared/data/dcm_qa_decubitus``) converted into a
  Legacy Converted Enhanced MR object by highdicom, compared with dcm2niix's ``Ref`` conversion of
  the original single-frame files;
- dcm2niix run in the test on a synthetic enhanced file;
- pydicom's real segmentation file ``liver_1frame.dcm`` for broken frame counts.
Affines are built here, in the test, from the plane table (docs/conventions.md), not with dicomml.
"""

from __future__ import annotations

import random

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomml
from dicomml import synth
from dicomml.errors import InvalidTagError, MissingTagError
from dicomml.geometry import enhanced

nib = pytest.importorskip("nibabel")


def sorted_volume(ds, planes):
    """Frames sorted along the normal (stored values) and the LPS affine built from the table."""
    positions = np.stack(planes["position"].to_numpy())
    cosines = np.array(planes.loc[0, "orientation"])
    order = np.argsort(positions @ np.cross(cosines[:3], cosines[3:]))
    d_row, d_col = planes.loc[0, "pixel_spacing"]
    lps = np.eye(4)
    lps[:3, 0] = positions[order[1]] - positions[order[0]]
    lps[:3, 1], lps[:3, 2] = cosines[3:] * d_row, cosines[:3] * d_col
    lps[:3, 3] = positions[order[0]]
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    return frames[planes["frame"].to_numpy()[order]], lps


def to_nifti(volume, lps):
    ras = (np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)[:, [2, 1, 0, 3]]
    return nib.Nifti1Image(np.transpose(volume, (2, 1, 0)), ras)


def assert_same_image(image, reference, *, unscaled=False):
    if unscaled:  # compare stored integers (dcm2niix keeps them, with scl_slope/scl_inter)
        reference = nib.Nifti1Image(reference.dataobj.get_unscaled(), reference.affine)
    ours, ref = nib.as_closest_canonical(image), nib.as_closest_canonical(reference)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(ref.dataobj))


# --- synthetic ground truth -------------------------------------------------------------------
CASES = [
    dict(modality="CT", shape=(7, 12, 10), orientation="oblique", patient_position="HFS"),
    dict(modality="CT", shape=(5, 9, 11), orientation="axial", patient_position="FFP"),
    dict(modality="MR", shape=(6, 8, 8), orientation="sagittal", patient_position="HFDL"),
    dict(modality="MR", shape=(3, 5, 8, 8), orientation="oblique", patient_position="FFDR",
         fourth_dim="echo"),
    dict(modality="MR", shape=(4, 6, 8, 8), orientation="coronal", patient_position="HFP",
         fourth_dim="temporal"),
    dict(modality="MR", shape=(5, 7, 9), patient_position="FFS",  # a random rotation
         orientation=tuple(np.linalg.qr(np.random.default_rng(11).normal(size=(3, 3)))[0][:, :2]
                           .T.ravel())),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['modality']}-{str(c['orientation'])[:8]}-"
                         f"{c['patient_position']}-{len(c['shape'])}d")
def test_frame_planes_match_synthetic_truth(tmp_path, case):
    truth = synth.write_series(tmp_path, multiframe=True, seed=3, **case)
    path = truth.paths[0]
    planes = enhanced.frame_planes(pydicom.dcmread(path, stop_before_pixels=True), path)
    frame_index = truth.meta["frame_index"]  # (volume, slice) of each stored frame
    assert len(planes) == len(frame_index) and planes["frame"].tolist() == list(range(len(planes)))
    positions = np.stack(planes["position"].to_numpy())
    slices = [s for _, s in frame_index]
    np.testing.assert_allclose(positions, np.asarray(truth.positions)[slices], atol=1e-4)
    np.testing.assert_allclose(np.stack(planes["orientation"].to_numpy()),
                               np.tile(truth.orientation, (len(planes), 1)), atol=1e-6)
    np.testing.assert_allclose(np.stack(planes["pixel_spacing"].to_numpy()),
                               np.tile(truth.spacing[1:], (len(planes), 1)))
    assert (planes["slope"] == truth.meta["slope"]).all()
    assert (planes["intercept"] == truth.meta["intercept"]).all()
    volumes = [v for v, _ in frame_index]
    # one key per volume, and different volumes never share a key
    keys = {}
    for key, volume in zip(planes["volume_key"], volumes):
        keys.setdefault(key, set()).add(volume)
    assert all(len(v) == 1 for v in keys.values()) and len(keys) == len(set(volumes))
    if case.get("fourth_dim") == "echo":
        np.testing.assert_allclose(planes["echo"], np.asarray(truth.meta["echo_times"])[volumes])
    if case.get("fourth_dim") == "temporal":
        assert planes.groupby("temporal").ngroups == case["shape"][0]
        assert all(planes.groupby("temporal")["volume_key"].nunique() == 1)


@pytest.mark.parametrize("case", CASES[:1] + CASES[3:], ids=["3d-oblique", "4d-echo", "4d-time",
                                                             "3d-random"])
def test_load_series_of_enhanced_matches_synthetic_truth(tmp_path, case):
    truth = synth.write_series(tmp_path, multiframe=True, seed=5, **case)
    volume = dicomml.load_series(tmp_path)
    assert volume.array.shape == truth.array.shape
    np.testing.assert_allclose(volume.affine, truth.affine, atol=1e-6)
    np.testing.assert_allclose(volume.array, truth.array, atol=1e-4)


def test_synthetic_enhanced_matches_dcm2niix(tmp_path, run_dcm2niix):
    truth = synth.write_series(tmp_path / "in", modality="MR", shape=(9, 14, 12),
                               orientation="oblique", patient_position="FFS", multiframe=True)
    path = truth.paths[0]
    ds = pydicom.dcmread(path)
    volume, lps = sorted_volume(ds, enhanced.frame_planes(ds, path))
    assert_same_image(to_nifti(volume, lps), nib.load(run_dcm2niix(path, tmp_path / "out") / "out.nii"), unscaled=True)


# --- real scanner data via highdicom's legacy conversion ----------------------------------------
@pytest.fixture(scope="module")
def legacy_enhanced_t1(shared_data, tmp_path_factory):
    """The HFDL T1 sagittal (35 single-frame files, shuffled) as one Legacy Converted Enhanced
    MR file, plus dcm2niix's reference for the original files."""
    hd = pytest.importorskip("highdicom")
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    folder = shared_data / "dcm_qa_decubitus" / "In" / "HFDL" / "2_t1_fl2d_sag"
    sources = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    random.Random(7).shuffle(sources)
    converted = LegacyConvertedEnhancedMRImage(
        sources, series_instance_uid=hd.UID(), series_number=99, sop_instance_uid=hd.UID(),
        instance_number=1)
    path = tmp_path_factory.mktemp("legacy") / "t1_enhanced.dcm"
    converted.save_as(path)
    reference = shared_data / "dcm_qa_decubitus" / "Ref" / "HFDL" / "2_t1_fl2d_sag.nii"
    return path, nib.load(reference)


def test_legacy_converted_real_series_matches_dcm2niix(legacy_enhanced_t1):
    path, reference = legacy_enhanced_t1
    ds = pydicom.dcmread(path)
    planes = enhanced.frame_planes(ds, path)
    assert len(planes) == 35 and planes["stack"].nunique() == 1
    volume, lps = sorted_volume(ds, planes)
    assert_same_image(to_nifti(volume, lps), reference)


def test_load_series_of_legacy_converted_real_series(legacy_enhanced_t1):
    path, reference = legacy_enhanced_t1
    volume = dicomml.load_series([path])
    assert volume.array.shape == (35, 256, 256)
    assert_same_image(volume.to_nifti(), reference)


# --- functional-group rules ------------------------------------------------------------------
def _synthetic_ct(tmp_path, **options):
    truth = synth.write_series(tmp_path, modality="CT", shape=(4, 6, 6), multiframe=True,
                               **options)
    return truth, truth.paths[0], pydicom.dcmread(truth.paths[0])


def _macro(**values) -> Sequence:
    """A one-item functional-group sequence holding ``values``."""
    item = Dataset()
    for name, value in values.items():
        setattr(item, name, value)
    return Sequence([item])


def test_per_frame_values_override_shared(tmp_path):
    truth, path, ds = _synthetic_ct(tmp_path)
    ds.PerFrameFunctionalGroupsSequence[2].PixelValueTransformationSequence = _macro(
        RescaleSlope=2.5, RescaleIntercept=-7,
        RescaleType="US")
    ds.PerFrameFunctionalGroupsSequence[1].PixelMeasuresSequence = _macro(
        PixelSpacing=[0.5, 0.25])
    planes = enhanced.frame_planes(ds, path)
    assert (planes.loc[2, "slope"], planes.loc[2, "intercept"]) == (2.5, -7.0)
    assert (planes.loc[0, "slope"], planes.loc[0, "intercept"]) == (1.0, -1024.0)  # shared
    assert planes.loc[1, "pixel_spacing"] == (0.5, 0.25)
    assert planes.loc[3, "pixel_spacing"] == (0.75, 0.75)


def test_per_frame_rescale_is_applied_by_the_loader(tmp_path):
    truth, path, ds = _synthetic_ct(tmp_path / "in", shuffle=False)
    frame = 2
    ds.PerFrameFunctionalGroupsSequence[frame].PixelValueTransformationSequence = _macro(
        RescaleSlope=2, RescaleIntercept=5, RescaleType="US")
    (tmp_path / "edited").mkdir()
    edited = tmp_path / "edited" / "ct.dcm"
    ds.save_as(edited)
    volume = dicomml.load_series([edited])
    _, slice_index = truth.meta["frame_index"][frame]
    stored = ds.pixel_array[frame].astype(np.float64)
    np.testing.assert_allclose(volume.array[slice_index], stored * 2 + 5)
    others = [s for s in range(4) if s != slice_index]
    np.testing.assert_allclose(volume.array[others], truth.array[others])


def test_complex_component_is_reported(tmp_path):
    _, path, ds = _synthetic_ct(tmp_path)
    for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item.MRImageFrameTypeSequence = _macro(
            FrameType=["ORIGINAL", "PRIMARY", "M", "NONE"],
            ComplexImageComponent="PHASE" if index % 2 else "MAGNITUDE")
    planes = enhanced.frame_planes(ds, path)
    assert planes["complex_component"].tolist() == ["MAGNITUDE", "PHASE"] * 2


def test_dimension_names_and_volume_keys_of_a_real_segmentation():
    ds = pydicom.dcmread(get_testdata_file("liver_1frame.dcm"), stop_before_pixels=True)
    names = [d["name"] for d in enhanced.dimensions(ds)]
    assert names == ["ReferencedSegmentNumber", "ImagePositionPatient"]
    ds.NumberOfFrames = len(ds.PerFrameFunctionalGroupsSequence)
    planes = enhanced.frame_planes(ds, "liver.dcm")
    index_values = [tuple(item.FrameContentSequence[0].DimensionIndexValues)
                    for item in ds.PerFrameFunctionalGroupsSequence]
    assert planes["dimension_index"].tolist() == index_values
    assert planes["volume_key"].tolist() == [(v[0],) for v in index_values]


# --- errors ------------------------------------------------------------------------------------
def test_missing_number_of_frames_in_real_file():
    path = get_testdata_file("liver_1frame.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert "NumberOfFrames" not in ds
    with pytest.raises(MissingTagError) as info:
        enhanced.frame_planes(ds, path)
    assert info.value.tag == "NumberOfFrames" and path in str(info.value)


def test_frame_count_disagreeing_with_per_frame_items():
    path = get_testdata_file("liver_1frame.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ds.NumberOfFrames = len(ds.PerFrameFunctionalGroupsSequence) + 1
    with pytest.raises(InvalidTagError) as info:
        enhanced.frame_planes(ds, path)
    assert info.value.tag == "PerFrameFunctionalGroupsSequence"


def test_missing_plane_position_names_the_frame(tmp_path):
    _, path, ds = _synthetic_ct(tmp_path)
    del ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence
    ds.ImagePositionPatient = [0, 0, 0]  # a stray top-level IPP must not stand in for frame 3
    with pytest.raises(MissingTagError, match="frame 3") as info:
        enhanced.frame_planes(ds, path)
    assert "ImagePositionPatient" in info.value.tag and str(path) in str(info.value)


def test_missing_shared_orientation(tmp_path):
    _, path, ds = _synthetic_ct(tmp_path)
    del ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
    with pytest.raises(MissingTagError, match="ImageOrientationPatient"):
        enhanced.frame_planes(ds, path)


@pytest.mark.parametrize("spacing", [[0.0, 0.75], [0.75]])
def test_unusable_pixel_spacing(tmp_path, spacing):
    _, path, ds = _synthetic_ct(tmp_path)
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = spacing
    with pytest.raises(InvalidTagError, match="PixelSpacing"):
        enhanced.frame_planes(ds, path)


def test_no_per_frame_groups_for_several_frames(tmp_path):
    _, path, ds = _synthetic_ct(tmp_path)
    del ds.PerFrameFunctionalGroupsSequence
    with pytest.raises(MissingTagError, match="PerFrameFunctionalGroupsSequence"):
        enhanced.frame_planes(ds, path)


def test_not_enhanced():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert not enhanced.is_enhanced(ds)
    with pytest.raises(MissingTagError):
        enhanced.frame_planes(ds, path)
