"""dicomml.synth: the written files, read back with pydicom, SimpleITK and dcm2niix, must say
exactly what the returned ground truth says."""

from __future__ import annotations

import glob

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

from dicomml import synth

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SRC_TO_NIFTI_INDEX = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
SMALL = dict(shape=(5, 12, 10), spacing=(3.0, 0.8, 0.9))
REQUIRED_TAGS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "PatientID", "PatientName", "StudyDate", "Modality",
    "SeriesNumber", "InstanceNumber", "AcquisitionNumber", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
    "PhotometricInterpretation", "WindowCenter", "WindowWidth", "BodyPartExamined",
    "PixelData",
)


# --- independent readers -------------------------------------------------------------------
def read_sorted(paths):
    """pydicom datasets sorted by their own IPP projected on their own slice normal."""
    datasets = [pydicom.dcmread(p) for p in paths]

    def along_normal(ds):
        iop = np.array(ds.ImageOrientationPatient, float)
        return float(np.dot(np.array(ds.ImagePositionPatient, float),
                            np.cross(iop[:3], iop[3:])))
    return sorted(datasets, key=along_normal)


def header_affine_point(ds, row, col):
    """LPS mm of pixel (row, col) from the header alone (DICOM PS3.3 C.7.6.2.1.1)."""
    iop = np.array(ds.ImageOrientationPatient, float)
    d_row, d_col = (float(v) for v in ds.PixelSpacing)
    return (np.array(ds.ImagePositionPatient, float)
            + iop[:3] * d_col * col + iop[3:] * d_row * row)


def sitk_read(folder):
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


# --- headers and pixels --------------------------------------------------------------------
@pytest.mark.parametrize("modality,sop_class", [("CT", CTImageStorage), ("MR", MRImageStorage)])
def test_headers_are_complete_and_files_have_preamble(tmp_path, modality, sop_class):
    truth = synth.write_series(tmp_path, modality=modality, **SMALL)
    assert len(truth.paths) == 5 and all(p.parent == tmp_path for p in truth.paths)
    sop_uids = set()
    for path in truth.paths:
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        missing = [k for k in REQUIRED_TAGS if k not in ds or ds[k].value in (None, "")]
        assert not missing
        assert ds.SOPClassUID == sop_class == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality) == (
            truth.patient_id, truth.study_uid, truth.series_uid, modality)
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                    ds.FrameOfReferenceUID):
            assert UID(uid).is_valid
        sop_uids.add(ds.SOPInstanceUID)
        if modality == "CT":
            assert "RescaleSlope" in ds and "RescaleIntercept" in ds and "KVP" in ds
        else:
            assert "RescaleSlope" not in ds
            assert float(ds.SpacingBetweenSlices) == 3.0 and ds.EchoNumbers == 1
    assert len(sop_uids) == 5


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_pixels_and_rescale_read_back_by_pydicom(tmp_path, modality):
    truth = synth.write_series(tmp_path, modality=modality, **SMALL)
    datasets = read_sorted(truth.paths)
    stored = np.stack([ds.pixel_array for ds in datasets])
    np.testing.assert_array_equal(stored, truth.stored)
    values = np.stack([apply_modality_lut(ds.pixel_array, ds) for ds in datasets])
    np.testing.assert_array_equal(values, truth.array)
    if modality == "CT":
        assert truth.meta["intercept"] == -1024.0 and truth.meta["slope"] == 1.0
        assert truth.array.min() >= -1024 and truth.array.max() > 1000  # HU, marker at 1900
    else:
        assert truth.array.min() >= 0


def test_phantom_is_asymmetric_along_every_axis():
    volume = synth.phantom((8, 16, 16), modality="CT", seed=0)
    for axis in range(3):
        assert not np.allclose(volume, np.flip(volume, axis))
    assert not np.allclose(volume, np.swapaxes(volume, 1, 2))
    assert not np.allclose(volume, np.roll(volume, 1, axis=0))
    assert volume.max() == 1900.0 and volume.min() == -1000.0


def test_same_seed_same_files_other_seed_other_content(tmp_path):
    first = synth.write_series(tmp_path / "a", seed=5, **SMALL)
    again = synth.write_series(tmp_path / "b", seed=5, **SMALL)
    other = synth.write_series(tmp_path / "c", seed=6, **SMALL)
    np.testing.assert_array_equal(first.array, again.array)
    assert [p.name for p in first.paths] == [p.name for p in again.paths]
    assert first.series_uid == again.series_uid != other.series_uid
    assert not np.array_equal(first.array, other.array)


# --- geometry ---------------------------------------------------------------------------------
@pytest.mark.parametrize("position", synth.PATIENT_POSITIONS)
@pytest.mark.parametrize("orientation", synth.ORIENTATIONS)
def test_affine_agrees_with_header_geometry(tmp_path, orientation, position):
    truth = synth.write_series(tmp_path, orientation=orientation, patient_position=position,
                               seed=11, **SMALL)
    datasets = read_sorted(truth.paths)
    np.testing.assert_array_equal(np.stack([ds.pixel_array for ds in datasets]), truth.stored)
    rng = np.random.default_rng(0)
    for _ in range(10):
        k, r, c = (int(rng.integers(n)) for n in truth.array.shape)
        expected = header_affine_point(datasets[k], r, c)
        np.testing.assert_allclose((truth.affine @ [k, r, c, 1])[:3], expected, atol=1e-6)
    np.testing.assert_allclose(
        truth.positions, [np.array(ds.ImagePositionPatient, float) for ds in datasets])
    assert all(ds.PatientPosition == position for ds in datasets)


@pytest.mark.parametrize("position", ["HFS", "FFP", "HFDL"])
@pytest.mark.parametrize("orientation", synth.ORIENTATIONS)
def test_ground_truth_matches_dcm2niix(tmp_path, orientation, position, run_dcm2niix):
    nib = pytest.importorskip("nibabel")
    truth = synth.write_series(tmp_path / "dicom", orientation=orientation,
                               patient_position=position, seed=3, **SMALL)
    out = run_dcm2niix(tmp_path / "dicom", tmp_path / "nifti", "x")
    reference = nib.as_closest_canonical(nib.load(glob.glob(str(out / "*.nii"))[0]))
    ours = nib.as_closest_canonical(nib.Nifti1Image(
        np.transpose(truth.array, (2, 1, 0)).astype(np.float32),
        LPS_TO_RAS @ truth.affine @ SRC_TO_NIFTI_INDEX))
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-4)
    np.testing.assert_array_equal(ours.get_fdata(), reference.get_fdata())


@pytest.mark.parametrize("orientation", synth.ORIENTATIONS)
def test_ground_truth_matches_simpleitk(tmp_path, orientation):
    truth = synth.write_series(tmp_path, orientation=orientation, seed=4, **SMALL)
    image = sitk_read(tmp_path)
    direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: x, y, z index axes
    np.testing.assert_allclose(image.GetOrigin(), truth.affine[:3, 3], atol=1e-6)
    np.testing.assert_allclose(image.GetSpacing(), [0.9, 0.8, 3.0], atol=1e-6)
    np.testing.assert_allclose(direction * image.GetSpacing(), truth.affine[:3, [2, 1, 0]],
                               atol=1e-6)
    import SimpleITK as sitk

    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), truth.array)


def test_named_orientations_and_oblique_rotation():
    np.testing.assert_array_equal(synth.orientation_cosines("axial"), [1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(synth.orientation_cosines("coronal"), [1, 0, 0, 0, 0, -1])
    np.testing.assert_array_equal(synth.orientation_cosines("sagittal"), [0, 1, 0, 0, 0, -1])
    obliques = [synth.orientation_cosines("oblique", seed=s) for s in (0, 1)]
    for iop in obliques:
        assert abs(np.linalg.norm(iop[:3]) - 1) < 1e-9 and abs(np.dot(iop[:3], iop[3:])) < 1e-9
        assert np.count_nonzero(np.abs(iop) > 1e-3) > 4  # truly oblique
    assert not np.allclose(*obliques)
    iops = {tuple(synth.orientation_cosines("axial", patient_position=p))
            for p in synth.PATIENT_POSITIONS}
    assert len(iops) == len(synth.PATIENT_POSITIONS)
    custom = synth.orientation_cosines([0, 0, 2, 1, 0, 0.1])
    np.testing.assert_allclose(custom, [0, 0, 1, 1, 0, 0], atol=1e-12)


def test_uneven_gaps_and_duplicates_follow_slice_offsets(tmp_path):
    offsets = [0.0, 2.0, 4.0, 4.0, 10.0, 11.5]
    truth = synth.write_series(tmp_path, slice_offsets=offsets[::-1], orientation="oblique",
                               shape=(1, 8, 8), seed=2)
    assert truth.array.shape == (6, 8, 8)
    normal = np.cross(truth.orientation[:3], truth.orientation[3:])
    along = (truth.positions - truth.positions[0]) @ normal
    np.testing.assert_allclose(along, offsets, atol=1e-4)
    datasets = read_sorted(truth.paths)
    positions = np.array([np.array(ds.ImagePositionPatient, float) for ds in datasets])
    assert len({tuple(p) for p in positions}) == 5  # one duplicate position
    np.testing.assert_allclose(truth.affine[:3, 0], (positions[-1] - positions[0]) / 5)


def test_gantry_tilt_shifts_slices_along_columns(tmp_path):
    truth = synth.write_series(tmp_path, gantry_tilt=15.0, **SMALL)
    datasets = read_sorted(truth.paths)
    assert all(float(ds.GantryDetectorTilt) == 15.0 for ds in datasets)
    step = np.diff([np.array(ds.ImagePositionPatient, float) for ds in datasets], axis=0)
    iop = truth.orientation
    np.testing.assert_allclose(step @ np.cross(iop[:3], iop[3:]), 3.0, atol=1e-4)
    np.testing.assert_allclose(step @ iop[3:], 3.0 * np.tan(np.deg2rad(15.0)), atol=1e-4)
    np.testing.assert_allclose(truth.affine[:3, 0], step.mean(axis=0), atol=1e-6)


def test_random_geometry_property(tmp_path_factory):
    """Any orientation, spacing, offsets and tilt: the affine reproduces each file's header."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=15, deadline=None, derandomize=True)
    @hypothesis.given(
        iop=st.lists(st.floats(-1, 1), min_size=6, max_size=6).filter(
            lambda v: np.linalg.norm(np.cross(v[:3], v[3:])) > 0.2),
        spacing=st.tuples(*[st.floats(0.3, 5.0)] * 3),
        offsets=st.lists(st.floats(-40, 40), min_size=2, max_size=4),
        tilt=st.sampled_from([0.0, -20.0, 7.5]))
    def check(iop, spacing, offsets, tilt):
        folder = tmp_path_factory.mktemp("prop")
        truth = synth.write_series(folder, orientation=iop, spacing=spacing,
                                   slice_offsets=offsets, gantry_tilt=tilt, shape=(1, 3, 4))
        slice_of = {path: s for path, (_, s) in zip(truth.paths, truth.meta["index_of_path"])}
        datasets = [pydicom.dcmread(p) for p in sorted(truth.paths, key=slice_of.get)]
        normal = np.cross(truth.orientation[:3], truth.orientation[3:])
        along = [float(np.dot(np.array(ds.ImagePositionPatient, float), normal))
                 for ds in datasets]
        assert along == sorted(along)  # ground-truth order ascends along the normal
        for k, ds in enumerate(datasets):
            np.testing.assert_array_equal(ds.pixel_array, truth.stored[k])
            np.testing.assert_allclose(truth.positions[k],
                                       np.array(ds.ImagePositionPatient, float))
        last = len(datasets) - 1  # the mean step is exact at both ends
        for k in (0, last):
            for r, c in ((0, 0), (2, 3), (1, 2)):
                np.testing.assert_allclose((truth.affine @ [k, r, c, 1])[:3],
                                           header_affine_point(datasets[k], r, c), atol=1e-6)

    check()


# --- pixel formats --------------------------------------------------------------------------
def test_monochrome1_mirrors_stored_values_and_keeps_the_modality_lut(tmp_path):
    mono1 = synth.write_series(tmp_path / "m1", photometric="MONOCHROME1", **SMALL)
    mono2 = synth.write_series(tmp_path / "m2", **SMALL)
    datasets = read_sorted(mono1.paths)
    assert all(ds.PhotometricInterpretation == "MONOCHROME1" for ds in datasets)
    stored = np.stack([ds.pixel_array for ds in datasets])
    np.testing.assert_array_equal(stored, 4095 - mono2.stored)  # 12 bits stored
    np.testing.assert_array_equal(np.stack([apply_modality_lut(ds.pixel_array, ds)
                                            for ds in datasets]), mono1.array)
    np.testing.assert_array_equal(mono1.meta["display_array"], mono2.array)
    np.testing.assert_array_equal(mono2.meta["display_array"], mono2.array)


@pytest.mark.parametrize("signed,bits", [(True, 16), (True, 12), (False, 16), (False, 12)])
def test_signed_and_bits_stored(tmp_path, signed, bits):
    truth = synth.write_series(tmp_path, signed=signed, bits_stored=bits, **SMALL)
    ds = pydicom.dcmread(truth.paths[0])
    assert (ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (
        int(signed), 16, bits, bits - 1)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    assert lo <= truth.stored.min() and truth.stored.max() <= hi
    assert (truth.stored.min() < 0) == signed  # signed CT stores air as negative numbers
    datasets = read_sorted(truth.paths)
    np.testing.assert_array_equal(np.stack([d.pixel_array for d in datasets]), truth.stored)
    np.testing.assert_array_equal(np.stack([apply_modality_lut(d.pixel_array, d)
                                            for d in datasets]), truth.array)


def test_rescale_slope_and_intercept(tmp_path):
    truth = synth.write_series(tmp_path, modality="MR", slope=0.25, intercept=-10.0,
                               bits_stored=16, **SMALL)
    ds = pydicom.dcmread(truth.paths[0])
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.25, -10.0)
    np.testing.assert_array_equal(truth.array, truth.stored * 0.25 - 10.0)
    phantom = synth.phantom((5, 12, 10), modality="MR", seed=0)
    assert np.abs(truth.array - phantom).max() <= 0.125 + 1e-9  # half a stored step


def test_eight_bit_mr(tmp_path):
    truth = synth.write_series(tmp_path, modality="MR", bits_allocated=8, bits_stored=8,
                               slope=8.0, **SMALL)
    datasets = read_sorted(truth.paths)
    assert datasets[0].BitsAllocated == 8 and truth.stored.dtype == np.uint8
    np.testing.assert_array_equal(np.stack([d.pixel_array for d in datasets]), truth.stored)


# --- 4D and enhanced multi-frame -----------------------------------------------------------
@pytest.mark.parametrize("fourth_dim", ["temporal", "echo"])
def test_four_d_single_frame_series(tmp_path, fourth_dim):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 4, 8, 8),
                               fourth_dim=fourth_dim)
    assert truth.array.shape == (3, 4, 8, 8) and truth.positions.shape == (4, 3)
    assert len(truth.paths) == 12
    volumes = {}
    for path in truth.paths:
        ds = pydicom.dcmread(path)
        assert ds.SeriesInstanceUID == truth.series_uid
        key = int(ds.TemporalPositionIdentifier if fourth_dim == "temporal"
                  else ds.EchoNumbers) - 1
        volumes.setdefault(key, []).append(ds)
    assert sorted(volumes) == [0, 1, 2]
    for volume, datasets in volumes.items():
        stack = np.stack([d.pixel_array for d in read_sorted([d.filename for d in datasets])])
        np.testing.assert_array_equal(stack, truth.stored[volume])
    echo_times = {float(ds.EchoTime) for group in volumes.values() for ds in group}
    assert len(echo_times) == (3 if fourth_dim == "echo" else 1)
    assert not np.array_equal(truth.array[0], truth.array[1])


@pytest.mark.parametrize("modality,sop_class,shape", [
    ("CT", EnhancedCTImageStorage, (6, 8, 10)),
    ("MR", EnhancedMRImageStorage, (2, 3, 8, 10)),
])
def test_enhanced_multiframe_frames_and_functional_groups(tmp_path, modality, sop_class,
                                                          shape):
    truth = synth.write_series(tmp_path, modality=modality, shape=shape, multiframe=True,
                               orientation="oblique", seed=9)
    assert len(truth.paths) == 1
    ds = pydicom.dcmread(truth.paths[0])
    assert ds.SOPClassUID == sop_class and ds.NumberOfFrames == np.prod(shape[:-2])
    shared = ds.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(
        np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float),
        truth.orientation)
    assert [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing] == [0.75, 0.75]
    if modality == "CT":
        transform = shared.PixelValueTransformationSequence[0]
        assert (float(transform.RescaleSlope), float(transform.RescaleIntercept)) == (1, -1024)
    stored = truth.stored if truth.stored.ndim == 4 else truth.stored[None]
    frames = ds.pixel_array
    sorted_index = []
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        content = item.FrameContentSequence[0]
        ipp = np.array(item.PlanePositionSequence[0].ImagePositionPatient, float)
        slice_index = int(np.argmin(np.linalg.norm(truth.positions - ipp, axis=1)))
        np.testing.assert_allclose(truth.positions[slice_index], ipp)
        assert content.InStackPositionNumber == slice_index + 1
        volume = content.DimensionIndexValues[2] - 1 if len(shape) == 4 else 0
        if len(shape) == 4:
            assert content.TemporalPositionIndex == volume + 1
        np.testing.assert_array_equal(frames[i], stored[volume, slice_index])
        sorted_index.append((volume, slice_index))
    assert sorted_index == truth.meta["frame_index"]
    assert sorted_index != sorted(sorted_index)  # frames are stored shuffled
    pointers = [item.DimensionIndexPointer for item in ds.DimensionIndexSequence]
    assert len(pointers) == len(ds.PerFrameFunctionalGroupsSequence[0]
                                .FrameContentSequence[0].DimensionIndexValues)


def test_enhanced_multi_echo_uses_effective_echo_time(tmp_path):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 2, 8, 8), multiframe=True,
                               fourth_dim="echo")
    ds = pydicom.dcmread(truth.paths[0])
    echo = {(v, float(item.MREchoSequence[0].EffectiveEchoTime))
            for (v, _), item in zip(truth.meta["frame_index"],
                                    ds.PerFrameFunctionalGroupsSequence)}
    assert echo == {(0, 15.0), (1, 35.0), (2, 55.0)}
    assert ds.DimensionIndexSequence[2].DimensionIndexPointer == 0x00189082


# --- transfer syntaxes ----------------------------------------------------------------------
@pytest.mark.parametrize("transfer_syntax", synth.supported_transfer_syntaxes(),
                         ids=lambda uid: UID(uid).keyword)
def test_every_supported_transfer_syntax_decodes_with_pydicom(tmp_path, transfer_syntax):
    eight_bit = UID(transfer_syntax).keyword == "JPEGBaseline8Bit"
    options = dict(modality="MR", bits_allocated=8, bits_stored=8, slope=8.0) if eight_bit \
        else dict(modality="CT")
    truth = synth.write_series(tmp_path, shape=(2, 16, 16), transfer_syntax=transfer_syntax,
                               multiframe=True, **options)
    ds = pydicom.dcmread(truth.paths[0])
    assert ds.file_meta.TransferSyntaxUID == transfer_syntax == truth.transfer_syntax
    assert ds["PixelData"].is_undefined_length == UID(transfer_syntax).is_compressed
    frames = ds.pixel_array
    expected = np.stack([truth.stored[s] for _, s in truth.meta["frame_index"]])
    lossy = synth.is_lossy(transfer_syntax)
    assert truth.meta["lossy"] == lossy and (ds.get("LossyImageCompression") == "01") == lossy
    if lossy:
        error = np.abs(frames.astype(float) - expected)
        assert error.mean() < 0.02 * np.ptp(expected)
    else:
        np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian,
                                             DeflatedExplicitVRLittleEndian])
def test_native_syntaxes_are_encoded_as_declared(tmp_path, transfer_syntax):
    truth = synth.write_series(tmp_path, transfer_syntax=transfer_syntax, shuffle=False,
                               signed=True, **SMALL)
    raw = truth.paths[0].read_bytes()
    if transfer_syntax == ExplicitVRBigEndian:
        assert truth.stored[0].astype(">i2").tobytes() in raw
    elif transfer_syntax == ImplicitVRLittleEndian:
        assert truth.stored[0].astype("<i2").tobytes() in raw
        assert b"\x10\x00\x20\x00LO" not in raw  # PatientID without an explicit VR
    else:
        assert truth.patient_id.encode() not in raw  # the data set is deflated
    np.testing.assert_array_equal(pydicom.dcmread(truth.paths[0]).pixel_array, truth.stored[0])


def test_unsupported_or_unfit_transfer_syntax_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        synth.write_series(tmp_path, transfer_syntax="1.2.840.10008.1.2.4.100")  # MPEG2
    if "1.2.840.10008.1.2.4.50" in synth.supported_transfer_syntaxes():
        with pytest.raises(ValueError, match="at most 8 bits"):
            synth.write_series(tmp_path, transfer_syntax="1.2.840.10008.1.2.4.50")


# --- files, names, options ------------------------------------------------------------------
def test_file_names_and_instance_numbers(tmp_path):
    shuffled = synth.write_series(tmp_path / "a", **SMALL)
    by_name = [pydicom.dcmread(p) for p in sorted(shuffled.paths)]
    slice_of = {tuple(np.round(p, 3)) for p in shuffled.positions}
    assert len(slice_of) == 5
    order = [int(np.argmin(np.linalg.norm(shuffled.positions
                                          - np.array(d.ImagePositionPatient, float), axis=1)))
             for d in by_name]
    assert order != sorted(order)
    ordered = synth.write_series(tmp_path / "b", shuffle=False, instance_numbers="reversed",
                                 extension="", **SMALL)
    assert all(p.suffix == "" for p in ordered.paths)
    datasets = [pydicom.dcmread(p) for p in sorted(ordered.paths)]
    np.testing.assert_array_equal(np.stack([d.pixel_array for d in datasets]), ordered.stored)
    assert [d.InstanceNumber for d in datasets] == [5, 4, 3, 2, 1]
    numbers = sorted(int(n) for n in shuffled.meta["instance_numbers"].ravel())
    assert numbers == [1, 2, 3, 4, 5]


def test_extra_tags_set_and_delete(tmp_path):
    truth = synth.write_series(tmp_path, SeriesDescription="custom", ImagePositionPatient=None,
                               **SMALL)
    ds = pydicom.dcmread(truth.paths[0])
    assert ds.SeriesDescription == "custom" and "ImagePositionPatient" not in ds
    with pytest.raises(TypeError, match="NotAKeyword"):
        synth.write_series(tmp_path / "x", NotAKeyword=1)


def test_never_overwrites(tmp_path):
    synth.write_series(tmp_path, **SMALL)
    with pytest.raises(FileExistsError):
        synth.write_series(tmp_path, **SMALL)


@pytest.mark.parametrize("options", [
    dict(modality="PT"), dict(orientation="diagonal"), dict(orientation=[1, 0, 0, 1, 0, 0]),
    dict(bits_stored=17), dict(photometric="RGB"), dict(shape=(0, 4, 4)),
    dict(instance_numbers="random"), dict(slope=0), dict(patient_position="XYZ"),
])
def test_invalid_options_raise_value_error(tmp_path, options):
    with pytest.raises(ValueError):
        synth.write_series(tmp_path, **options)


# --- corpus ---------------------------------------------------------------------------------
def test_corpus_is_mixed_and_readable(tmp_path):
    corpus = synth.write_corpus(tmp_path, n_patients=3)
    assert len(corpus) == 12
    assert len({s.patient_id for s in corpus}) == 3
    assert len({s.study_uid for s in corpus}) == 6
    assert len({s.series_uid for s in corpus}) == 12
    assert {s.modality for s in corpus} == {"CT", "MR"}
    assert any(UID(s.transfer_syntax).is_compressed for s in corpus)
    assert any(s.meta["multiframe"] for s in corpus)
    mixed = {s.patient_id for s in corpus if s.paths[0].parent == tmp_path / "mixed"}
    assert len(mixed) == 2
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == sum(len(s.paths) for s in corpus)
    assert any(p.suffix == "" for p in files)
    for series in corpus:
        ds = pydicom.dcmread(series.paths[0])
        assert ds.SeriesInstanceUID == series.series_uid
        assert ds.PatientID == series.patient_id


