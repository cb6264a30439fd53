"""Every series in ../shared/data against dcm2niix's Ref/ conversions (an independent reader).

Both sides go through ``nibabel.as_closest_canonical``; affines must agree to 1e-3 mm and the
voxels exactly (all data are lossless). The mosaics need ``dicomml.geometry.mosaic``.
"""

from __future__ import annotations

import numpy as np
import pytest

import dicomml

nib = pytest.importorskip("nibabel")

POSITIONS = ("HFS", "HFP", "HFDL", "HFDR")


def _canonical(image):
    image = nib.as_closest_canonical(image)
    return image.affine, np.asarray(image.dataobj)


def _compare(volume, reference_path):
    ours_affine, ours = _canonical(volume.to_nifti())
    ref_affine, ref = _canonical(nib.load(reference_path))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours_affine, ref_affine, atol=1e-3, rtol=0)
    np.testing.assert_array_equal(ours, ref)


def _series_folder(shared_data, position, kind):
    folders = sorted((shared_data / "dcm_qa_decubitus" / "In" / position).glob(f"*_{kind}*"))
    assert len(folders) == 1, folders
    folder = folders[0]
    number = folder.name.split("_")[0]
    ref = shared_data / "dcm_qa_decubitus" / "Ref" / position
    return folder, next(ref.glob(f"{number}_{kind}*.nii"))


@pytest.mark.parametrize("position", POSITIONS)
def test_t1_sagittal_matches_dcm2niix(shared_data, position):
    folder, reference = _series_folder(shared_data, position, "t1")
    volume = dicomml.load_series(folder)
    assert volume.shape == (35, 256, 256)
    assert volume.metadata["findings"] == []
    _compare(volume, reference)


@pytest.mark.parametrize("position", POSITIONS)
def test_diffusion_mosaic_matches_dcm2niix(shared_data, position):
    pytest.importorskip("dicomml.geometry.mosaic")
    folder, reference = _series_folder(shared_data, position, "ep2d")
    volume = dicomml.load_series(folder)
    assert volume.shape == (13, 25, 128, 128)  # (volumes, slices, rows, columns)
    _compare(volume, reference)
    # the volume order is the acquisition order, like dcm2niix's .bval file
    bvals = np.loadtxt(reference.with_suffix(".bval"))
    ours = [v["b_value"] for v in volume.metadata["volumes"]]
    np.testing.assert_array_equal(ours, bvals)


@pytest.mark.parametrize("number", range(1, 10))
def test_transfer_syntaxes_match_dcm2niix(shared_data, number):
    pytest.importorskip("dicomml.geometry.mosaic")
    path = shared_data / "dcm_qa_ts" / "In" / f"{number}.dcm"
    volume = dicomml.load_series([path])
    assert volume.shape == (35, 64, 64)
    _compare(volume, shared_data / "dcm_qa_ts" / "Ref" / f"{number}.nii")
