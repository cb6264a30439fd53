"""Philips MR private scale slope (issue 16 item 8): dicomml's default values equal dcm2niix's
(Philips floating point, ``(stored*RS + RI) / (RS*SS)``) on the published Philips sets, the
display values on request, and ``metadata["scaling"]`` says which."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomml
from dicomml import synth


def _series(folder):
    cat = dicomml.scan(folder, progress=False)
    images = cat.instances[cat.instances["pixel_data_offset"].notna()]
    uids = images["SeriesInstanceUID"].unique()
    assert len(uids) == 1
    return cat, uids[0]


def _compare_with_reference(vol, reference):
    nib = pytest.importorskip("nibabel")
    ref = nib.as_closest_canonical(nib.load(reference))
    ours = nib.as_closest_canonical(vol.to_nifti())
    expected = np.asarray(ref.dataobj, dtype=np.float64)  # applies scl_slope / scl_inter
    found = np.asarray(ours.dataobj, dtype=np.float64)
    assert found.shape == expected.shape
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    assert np.abs(found - expected).max() <= 1e-3 * np.ptp(expected)


@pytest.mark.parametrize("folder, reference", [
    ("dcm_qa_philips/In/Magdeburg_2014/fmri",
     "dcm_qa_philips/Ref/Magdeburg_2014/fmri/201_EPI_asc_CLEAR.nii"),
    ("dcm_qa_philips_enh/In/cl", "dcm_qa_philips_enh/Ref/cl/1901_WIP_3DpCASL.nii"),
    ("dcm_qa_philips_enh/In/enh/1901_WIP_3DpCASL_real.dcm",
     "dcm_qa_philips_enh/Ref/enh/1901_WIP_3DpCASL_real.nii"),
])
def test_philips_default_values_match_dcm2niix(shared_data, folder, reference):
    cat, uid = _series(shared_data / folder)
    vol = dicomml.load_series(cat, uid)
    assert vol.metadata["scaling"]["applied"] == "philips_float"
    assert vol.metadata["scaling"]["scale_slope"]
    _compare_with_reference(vol, shared_data / reference)


def test_philips_display_values_on_request(shared_data):
    cat, uid = _series(shared_data / "dcm_qa_philips/In/Magdeburg_2014/fmri")
    vol = dicomml.load_series(cat, uid, scaling="display")
    assert vol.metadata["scaling"]["applied"] == "modality_lut"
    path = cat.instances["path"].iloc[0]
    ds = pydicom.dcmread(path)
    display = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    found = [vol.array[i] for i in np.ndindex(vol.array.shape[:2])
             if np.allclose(vol.array[i], display, rtol=1e-6)]
    assert found, "the display values of a file are not a plane of the volume"


def _philipsify(paths, *, scale=0.004, creators=True, manufacturer="Philips Medical Systems",
                block_creator="Philips MR Imaging DD 001"):
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.Manufacturer = manufacturer
        ds.RescaleSlope, ds.RescaleIntercept = "1.5", "-3"
        if creators:
            ds.add_new((0x2005, 0x0010), "LO", "Some Other Creator")
            ds.add_new((0x2005, 0x0011), "LO", block_creator)
            ds.add_new((0x2005, 0x110E), "FL", scale)
            ds.add_new((0x2005, 0x110D), "FL", 0.0)
        else:  # creators stripped: the fixed tags dcm2niix reads
            ds.add_new((0x2005, 0x100E), "FL", scale)
        ds.save_as(path)


@pytest.mark.parametrize("creators", [True, False])
def test_synthetic_philips_float_and_display(tmp_path, creators):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 8, 6))
    _philipsify(truth.paths, creators=creators)
    scale = float(np.float32(0.004))
    display = truth.stored * 1.5 - 3
    vol = dicomml.load_series(tmp_path)
    np.testing.assert_allclose(vol.array, display / (1.5 * scale), rtol=1e-5)
    assert vol.metadata["scaling"]["applied"] == "philips_float"
    assert vol.metadata["scaling"]["scale_slope"] == [scale]
    shown = dicomml.load_series(tmp_path, scaling="display")
    np.testing.assert_allclose(shown.array, display, rtol=1e-6)
    assert shown.metadata["scaling"]["applied"] == "modality_lut"
    stored = dicomml.load_series(tmp_path, dtype=None)
    assert stored.metadata["scaling"]["applied"] == "none"
    np.testing.assert_array_equal(stored.array, truth.stored)


def test_private_slope_of_another_vendor_or_creator_is_ignored(tmp_path):
    truth = synth.write_series(tmp_path / "a", modality="MR", shape=(2, 6, 6))
    _philipsify(truth.paths, manufacturer="SIEMENS")
    other = synth.write_series(tmp_path / "b", modality="MR", shape=(2, 6, 6), seed=1)
    _philipsify(other.paths, block_creator="Philips Imaging DD 001")
    for folder, stored in ((tmp_path / "a", truth.stored), (tmp_path / "b", other.stored)):
        vol = dicomml.load_series(folder)
        np.testing.assert_allclose(vol.array, stored * 1.5 - 3, rtol=1e-6)
        assert vol.metadata["scaling"]["applied"] == "modality_lut"


def test_values_option_is_checked(tmp_path):
    synth.write_series(tmp_path, modality="MR", shape=(2, 6, 6))
    with pytest.raises(ValueError, match="values must be one of"):
        dicomml.load_series(tmp_path, values="float")
    with pytest.raises(ValueError, match="scaling must be one of"):
        dicomml.load_series(tmp_path, scaling="float")
