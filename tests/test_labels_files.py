"""Label images in NIfTI / NRRD / MHA files on the DICOM image grid.

The files are written with nibabel and SimpleITK directly from the synthetic ground truth's
affine (RAS = diag(-1, -1, 1, 1) @ LPS, NIfTI axes (column, row, slice); ITK (x, y, z) =
(column, row, slice), LPS), never through dicomml's own writers.
"""

from __future__ import annotations

import numpy as np
import pytest

import dicomml
from dicomml.errors import LabelGeometryError

nibabel = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")


@pytest.fixture()
def image(tmp_path):
    truth = dicomml.synth.write_series(tmp_path / "ct", shape=(5, 12, 9), orientation="oblique",
                                       spacing=(2.0, 0.8, 0.6), seed=11)
    vol = dicomml.load_series(tmp_path / "ct")
    label = np.zeros((5, 12, 9), np.uint8)
    label[1:4, 2:9, 1:5] = 1
    label[2, 0:3, 6:9] = 7
    return truth, vol, label


def _nifti(path, label, lps_affine):
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps_affine[:, [2, 1, 0, 3]]
    nibabel.save(nibabel.Nifti1Image(np.transpose(label, (2, 1, 0)), ras), path)
    return path


def _itk(path, label, lps_affine):
    img = sitk.GetImageFromArray(label)  # (z, y, x) = (slice, row, column)
    m = lps_affine[:3, :3][:, ::-1]       # columns x, y, z
    spacing = np.linalg.norm(m, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((m / spacing).ravel().tolist())
    img.SetOrigin(lps_affine[:3, 3].tolist())
    sitk.WriteImage(img, str(path))
    return path


def test_nifti_on_the_same_grid_and_canonical_reoriented(tmp_path, image):
    truth, vol, label = image
    path = _nifti(tmp_path / "mask.nii.gz", label, truth.affine)
    out = dicomml.load_labels(path, vol)
    np.testing.assert_array_equal(out.array, label)
    np.testing.assert_array_equal(out.affine, vol.affine)
    canonical = nibabel.as_closest_canonical(nibabel.load(path))  # permuted and flipped
    nibabel.save(canonical, tmp_path / "canonical.nii")
    assert not np.allclose(canonical.affine, nibabel.load(path).affine)
    out = dicomml.load_labels(tmp_path / "canonical.nii", vol)
    np.testing.assert_array_equal(out.array, label)
    assert sorted(out.metadata["labels"]) == [1, 7]


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_itk_files_flipped_and_permuted(tmp_path, image, suffix):
    truth, vol, label = image
    path = _itk(tmp_path / f"mask{suffix}", label, truth.affine)
    np.testing.assert_array_equal(dicomml.load_labels(path, vol).array, label)
    flipped = sitk.PermuteAxes(sitk.Flip(sitk.ReadImage(str(path)), [True, False, True]),
                               [2, 0, 1])
    sitk.WriteImage(flipped, str(tmp_path / f"moved{suffix}"))
    out = dicomml.load_labels(tmp_path / f"moved{suffix}", vol, mode="channels", segments=[7])
    np.testing.assert_array_equal(out.array[0], (label == 7).astype(np.uint8))


def test_other_grid_raises_with_both_grids_or_resamples(tmp_path, image):
    truth, vol, label = image
    shifted = truth.affine.copy()
    shifted[:3, 3] += 0.5 * truth.affine[:3, 2]  # half a column off
    path = _nifti(tmp_path / "off.nii.gz", label, shifted)
    with pytest.raises(LabelGeometryError, match=r"label shape .* image shape") as err:
        dicomml.load_labels(path, vol)
    assert err.value.path == str(path) and "orientation" in str(err.value)
    # a label file at twice the in-plane resolution: nearest gives the coarse labels back
    fine = np.repeat(np.repeat(label, 2, axis=1), 2, axis=2)
    fine_affine = truth.affine.copy()
    fine_affine[:3, 1:3] /= 2
    fine_affine[:3, 3] -= 0.25 * (truth.affine[:3, 1] + truth.affine[:3, 2])
    path = _nifti(tmp_path / "fine.nii.gz", fine, fine_affine)
    with pytest.raises(LabelGeometryError):
        dicomml.load_labels(path, vol)
    out = dicomml.load_labels(path, vol, resample=True)
    np.testing.assert_array_equal(out.array, label)
    assert out.metadata["resampled"]
