"""Synthetic series read by dicomml vs dcm2niix (run here) and SimpleITK's ImageSeriesReader.

Both references are independent readers. Images are compared in world space: each side is
turned into a NIfTI image and reoriented with ``nibabel.as_closest_canonical``; affines must
agree to 1e-3 mm and voxels to float32 precision.
"""

from __future__ import annotations

import numpy as np
import pytest

import dicomml
from dicomml import synth
from dicomml.volume import Volume

nib = pytest.importorskip("nibabel")

CASES = [  # (orientation, patient position, spacing, modality)
    ("axial", "HFS", (2.5, 0.75, 0.75), "CT"),
    ("sagittal", "FFP", (1.2, 0.9, 1.1), "MR"),
    ("coronal", "HFDL", (3.0, 0.5, 0.6), "CT"),
    ("oblique", "FFDR", (2.0, 1.3, 0.8), "MR"),
    ("oblique", "HFP", (1.0, 0.7, 0.7), "CT"),
]


def _canonical(image):
    image = nib.as_closest_canonical(image)
    return image.affine, np.asarray(image.get_fdata(dtype=np.float64))


def _assert_same_image(ours, reference):
    ours_affine, ours_data = _canonical(ours)
    ref_affine, ref_data = _canonical(reference)
    assert ours_data.shape == ref_data.shape
    np.testing.assert_allclose(ours_affine, ref_affine, atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours_data, ref_data, rtol=1e-6, atol=1e-3)


def _write(tmp_path, case, seed):
    orientation, position, spacing, modality = case
    folder = tmp_path / "dicom"
    truth = synth.write_series(folder, modality=modality, shape=(9, 14, 11), spacing=spacing,
                               orientation=orientation, patient_position=position, seed=seed)
    return folder, truth


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_matches_dcm2niix(tmp_path, case, run_dcm2niix):
    folder, truth = _write(tmp_path, case, CASES.index(case))
    out = run_dcm2niix(folder, tmp_path / "nifti", "ref")
    (reference,) = out.glob("ref*.nii")
    volume = dicomml.load_series(folder)
    _assert_same_image(volume.to_nifti(), nib.load(reference))
    # and the ground truth, in our own (slice, row, column) LPS terms
    np.testing.assert_allclose(volume.affine, truth.affine, atol=1e-9)


def _sitk_volume(folder) -> Volume:
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: x (column), y, z axes
    spacing = image.GetSpacing()
    affine = np.eye(4)
    affine[:3, 0] = direction[:, 2] * spacing[2]
    affine[:3, 1] = direction[:, 1] * spacing[1]
    affine[:3, 2] = direction[:, 0] * spacing[0]
    affine[:3, 3] = image.GetOrigin()
    return Volume(sitk.GetArrayFromImage(image).astype(np.float64), affine)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_matches_simpleitk_image_series_reader(tmp_path, case):
    folder, _ = _write(tmp_path, case, 100 + CASES.index(case))
    volume = dicomml.load_series(folder)
    _assert_same_image(volume.to_nifti(), _sitk_volume(folder).to_nifti())


def test_monochrome1_where_dcm2niix_and_the_header_disagree_we_follow_the_standard(tmp_path, run_dcm2niix):
    """PS3.3 C.7.6.3.1.2: MONOCHROME1 means the *minimum* value is displayed white.

    dcm2niix writes the Modality LUT output as stored (so bright tissue has low values in its
    NIfTI); SimpleITK/GDCM, like dicomml, invert so that higher is brighter. dicomml inverts after
    rescale (formula in dicomml.loader): ours = (rescale(lo) + rescale(hi)) - modality_values,
    which equals SimpleITK's values exactly and mirrors dcm2niix's.
    """
    folder = tmp_path / "dicom"
    synth.write_series(folder, modality="CT", shape=(4, 8, 8), photometric="MONOCHROME1",
                       bits_stored=12, slope=1.0, intercept=-1024.0, seed=3)
    ours = dicomml.load_series(folder)
    gdcm = _sitk_volume(folder)
    np.testing.assert_allclose(ours.affine, gdcm.affine, atol=1e-6)
    np.testing.assert_allclose(ours.array, gdcm.array, atol=1e-3)
    out = run_dcm2niix(folder, tmp_path / "nifti", "ref")
    (reference,) = out.glob("ref*.nii")
    mirror = (0 - 1024.0) + (4095 - 1024.0)  # rescale(lo) + rescale(hi), 12 unsigned bits
    inverted = Volume(ours.array, ours.affine)
    flipped_back = Volume(mirror - np.asarray(inverted.array, dtype=np.float64), ours.affine)
    _assert_same_image(flipped_back.to_nifti(), nib.load(reference))
    assert not np.allclose(_canonical(ours.to_nifti())[1], _canonical(nib.load(reference))[1])


def test_gantry_tilt_where_dcm2niix_and_the_header_disagree_we_follow_the_standard(tmp_path, run_dcm2niix):
    """PS3.3 C.7.6.2.1.1: Image Position (Patient) is the centre of each slice's first voxel.

    With gantry tilt the positions drift in-plane from slice to slice. dcm2niix's uncorrected
    output uses an orthogonal affine, so slice k's first voxel lands away from IPP_k (it also
    writes a resampled "_Tilt_1" file). dicomml's sheared affine puts every slice at its IPP.
    """
    folder = tmp_path / "dicom"
    truth = synth.write_series(folder, modality="CT", shape=(10, 16, 16), gantry_tilt=20.0,
                               seed=4)
    out = run_dcm2niix(folder, tmp_path / "nifti", "ref")
    reference = nib.load(out / "ref.nii")
    with pytest.warns(dicomml.errors.GeometryWarning, match="tilt"):
        volume = dicomml.load_series(folder)
    ours_ras = volume.to_nifti().affine
    last = len(truth.positions) - 1
    ipp_ras = truth.positions[last] * [-1, -1, 1]
    # our NIfTI voxel (0, 0, last) is exactly the last slice's IPP (in RAS) ...
    np.testing.assert_allclose((ours_ras @ [0, 0, last, 1])[:3], ipp_ras, atol=1e-4)
    # ... dcm2niix's is not: find which of its voxels holds our slice `last`, first voxel
    ref_data = np.asarray(reference.dataobj)
    ours_data = np.asarray(volume.to_nifti().dataobj)
    assert ref_data.shape == ours_data.shape
    ref_world = [reference.affine @ [i, j, k, 1] for i in (0, 15) for j in (0, 15)
                 for k in (0, last)]
    distances = [np.linalg.norm(w[:3] - ipp_ras) for w in ref_world]
    assert min(distances) > 1.0  # no corner of dcm2niix's grid is at IPP_last
