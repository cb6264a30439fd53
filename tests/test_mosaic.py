"""Siemens mosaics: un-tiling and slice positions, checked against dcm2niix.

References: ``../shared/data/dcm_qa_ts`` (nine transfer syntaxes of one 35-slice mosaic, each with
dcm2niix's ``Ref/<n>.nii``) and dcm2niix run in the test on modified copies. Our volume is turned
into a NIfTI image here, in the test, from the plane table's positions (no dicomml affine code),
and compared after ``nibabel.as_closest_canonical``: affines to 1e-3 mm, voxels exactly.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomml.errors import DicommlError, InvalidTagError, MissingTagError
from dicomml.geometry import mosaic

nib = pytest.importorskip("nibabel")

TS_FILES = [f"{n}.dcm" for n in range(1, 10)]


def nifti_from_planes(volume: np.ndarray, planes, ds) -> nib.Nifti1Image:
    """NIfTI (RAS) of ``volume`` (slices, rows, columns) with the affine built from the tiles'
    positions and the header's orientation and pixel spacing (docs/conventions.md)."""
    positions = np.stack(planes["position"].to_numpy())
    cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    d_row, d_col = (float(v) for v in ds.PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = positions[1] - positions[0]
    lps[:3, 1] = cosines[3:] * d_row
    lps[:3, 2] = cosines[:3] * d_col
    lps[:3, 3] = positions[0]
    ras = (np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)[:, [2, 1, 0, 3]]
    return nib.Nifti1Image(np.transpose(volume, (2, 1, 0)), ras)


def assert_matches_reference(image, reference_path):
    ours, ref = nib.as_closest_canonical(image), nib.as_closest_canonical(nib.load(reference_path))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(ref.dataobj))


@pytest.fixture(scope="module")
def ts_dir(shared_data):
    return shared_data / "dcm_qa_ts"


@pytest.fixture(scope="module")
def mosaic_file(ts_dir):
    return ts_dir / "In" / "1.dcm"


# --- reference comparisons ---------------------------------------------------------------------
@pytest.mark.parametrize("name", TS_FILES)
def test_transfer_syntax_mosaic_matches_dcm2niix(ts_dir, name):
    path = ts_dir / "In" / name
    ds = pydicom.dcmread(path)
    planes = mosaic.mosaic_planes(ds, path)
    assert (len(planes), planes.loc[0, "rows"], planes.loc[0, "columns"]) == (35, 64, 64)
    volume = mosaic.untile(ds.pixel_array, planes)
    assert volume.shape == (35, 64, 64)
    assert_matches_reference(nifti_from_planes(volume, planes, ds),
                             ts_dir / "Ref" / name.replace(".dcm", ".nii"))


def _replace_csa_value(raw: bytes, old: str, new: str) -> bytes:
    assert len(old) == len(new) and raw.count(old.encode() + b"\0") == 1
    return raw.replace(old.encode() + b"\0", new.encode() + b"\0")


def test_reversed_slice_normal_follows_csa_like_dcm2niix(mosaic_file, tmp_path, run_dcm2niix):
    """Tiles advance along the CSA SliceNormalVector even when it opposes row x column cosines:
    negate it in a copy and check against dcm2niix run on that copy."""
    ds = pydicom.dcmread(mosaic_file)
    element = ds[0x0029, 0x1010]
    raw = _replace_csa_value(element.value, "0.10799944", "-0.1079994")
    element.value = _replace_csa_value(raw, "0.99415095", "-0.9941509")
    copy = tmp_path / "reversed.dcm"
    ds.save_as(copy)
    normal = mosaic.slice_normal(ds)
    cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    assert normal @ np.cross(cosines[:3], cosines[3:]) < -0.99  # really reversed
    out = run_dcm2niix(copy, tmp_path / "out") / "out.nii"
    planes = mosaic.mosaic_planes(ds, copy)
    volume = mosaic.untile(ds.pixel_array, planes)
    assert_matches_reference(nifti_from_planes(volume, planes, ds), out)


def test_without_csa_header_falls_back_to_private_count_and_cross_product(mosaic_file, ts_dir):
    """With the CSA headers stripped, (0019,xx0A) still gives the slice count and the normal
    falls back to row x column cosines (which the CSA normal equals in this file)."""
    ds = pydicom.dcmread(mosaic_file)
    for tag in (0x0029_1010, 0x0029_1020):
        del ds[tag]
    assert mosaic.csa_header(ds) == {}
    planes = mosaic.mosaic_planes(ds, mosaic_file)
    assert_matches_reference(nifti_from_planes(mosaic.untile(ds.pixel_array, planes), planes, ds),
                             ts_dir / "Ref" / "1.nii")


# --- CSA header through the mosaic (parser-only tests: tests/test_csa.py) ---------------------
def test_truncated_csa_header_raises_typed_error_naming_file_and_tag(mosaic_file):
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    raw = ds[0x0029, 0x1010].value
    cuts = list(range(1, 200, 7)) + list(range(200, len(raw) - 4, max(1, len(raw) // 97)))
    for cut in cuts:  # every prefix short of the last item (the last 4 bytes are padding)
        ds[0x0029, 0x1010].value = raw[:cut]
        with pytest.raises(InvalidTagError) as info:
            mosaic.csa_header(ds, "image", path=mosaic_file)
        assert str(mosaic_file) in str(info.value) and "(0029,1010)" in str(info.value)
    ds[0x0029, 0x1010].value = raw[:100]
    with pytest.raises(InvalidTagError, match="CSA"):
        mosaic.mosaic_planes(ds, mosaic_file)


# --- detection, layout, untile ---------------------------------------------------------------
def test_detection(mosaic_file, shared_data):
    assert mosaic.is_mosaic(pydicom.dcmread(mosaic_file, stop_before_pixels=True))
    t1 = next((shared_data / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag").glob("*.dcm"))
    assert not mosaic.is_mosaic(pydicom.dcmread(t1, stop_before_pixels=True))
    assert not mosaic.is_mosaic(pydicom.dcmread(get_testdata_file("CT_small.dcm")))


def test_layout(mosaic_file):
    layout = mosaic.mosaic_layout(pydicom.dcmread(mosaic_file, stop_before_pixels=True))
    assert (layout.n_slices, layout.grid, layout.tile_rows, layout.tile_columns) == (35, 6, 64, 64)
    assert (layout.mosaic_rows, layout.mosaic_columns) == (384, 384)


def test_untile_inverts_tiling():
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 4000, size=(7, 3, 5), dtype=np.uint16)
    grid = 3  # ceil(sqrt(7))
    padded = np.concatenate([slices, np.zeros((2, 3, 5), np.uint16)])
    image = np.vstack([np.hstack(list(padded[r * grid:(r + 1) * grid])) for r in range(grid)])
    assert image.shape == (9, 15)
    np.testing.assert_array_equal(mosaic.untile(image, 7, 3, 5), slices)


def test_untile_follows_plane_table_order(mosaic_file):
    ds = pydicom.dcmread(mosaic_file)
    planes = mosaic.mosaic_planes(ds, mosaic_file)
    full = mosaic.untile(ds.pixel_array, planes)
    subset = planes.iloc[[5, 0, 34]]
    np.testing.assert_array_equal(mosaic.untile(ds.pixel_array, subset), full[[5, 0, 34]])
    np.testing.assert_array_equal(full[7], ds.pixel_array[64:128, 64:128])  # tile 7 = row 1, col 1


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("keyword, error", [("ImagePositionPatient", MissingTagError),
                                            ("ImageOrientationPatient", MissingTagError),
                                            ("PixelSpacing", MissingTagError),
                                            ("Rows", MissingTagError)])
def test_missing_geometry_tags(mosaic_file, keyword, error):
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    delattr(ds, keyword)
    with pytest.raises(error) as info:
        mosaic.mosaic_planes(ds, mosaic_file)
    assert info.value.tag == keyword and info.value.path == str(mosaic_file)


def test_mosaic_without_slice_count(mosaic_file):
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    del ds[0x0019, 0x100A]
    assert mosaic.number_of_slices(ds) == 35  # still in the CSA image header
    del ds[0x0029, 0x1010]
    assert mosaic.is_mosaic(ds)  # ImageType says MOSAIC
    with pytest.raises(MissingTagError, match="NumberOfImagesInMosaic"):
        mosaic.mosaic_planes(ds, mosaic_file)


def test_slice_count_that_does_not_fit_the_image(mosaic_file):
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    ds[0x0019, 0x100A].value = 20  # a 5x5 grid does not divide 384
    with pytest.raises(InvalidTagError):
        mosaic.mosaic_planes(ds, mosaic_file)
    ds[0x0019, 0x100A].value = 0
    with pytest.raises(DicommlError):
        mosaic.mosaic_planes(ds, mosaic_file)


def test_untile_keeps_leading_axes_and_rejects_tiles_outside_the_image():
    frames = np.arange(2 * 4 * 6).reshape(2, 4, 6)  # two frames, 2x3 tiles of 2x2
    out = mosaic.untile(frames, 6, 2, 2)
    assert out.shape == (2, 6, 2, 2)
    np.testing.assert_array_equal(out[1, 4], frames[1, 2:4, 2:4])
    with pytest.raises(ValueError):
        mosaic.untile(frames[0], 7, 2, 2)
    with pytest.raises(ValueError):
        mosaic.untile(frames[0], 2, 8, 8)


def test_protocol_fallbacks_for_normal_and_spacing(mosaic_file, ts_dir):
    """Without the CSA SliceNormalVector and without Spacing Between Slices, the series
    protocol's sSliceArray (normal, first two slice centres) gives the same volume."""
    ds = pydicom.dcmread(mosaic_file)
    element = ds[0x0029, 0x1010]
    element.value = element.value.replace(b"SliceNormalVector\0", b"SliceNormalVectoX\0")
    assert "SliceNormalVector" not in mosaic.csa_header(ds)
    del ds.SpacingBetweenSlices
    assert mosaic.slice_spacing(ds) == pytest.approx(3.6, abs=1e-6)
    np.testing.assert_allclose(mosaic.slice_normal(ds), [0.0, 0.10799936, 0.99415096], atol=1e-6)
    planes = mosaic.mosaic_planes(ds, mosaic_file)
    assert_matches_reference(nifti_from_planes(mosaic.untile(ds.pixel_array, planes), planes, ds),
                             ts_dir / "Ref" / "1.nii")


def test_private_slice_count_stored_as_un(mosaic_file):
    """Implicit-VR files anonymised without a private dictionary keep (0019,xx0A) as raw bytes."""
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    ds.add_new(0x0019_100A, "UN", struct.pack("<H", 35))
    del ds[0x0029, 0x1010]  # no CSA fallback
    assert mosaic.number_of_slices(ds) == 35


def test_slice_times_match_dcm2niix_slice_timing(mosaic_file, ts_dir):
    ds = pydicom.dcmread(mosaic_file, stop_before_pixels=True)
    planes = mosaic.mosaic_planes(ds, mosaic_file)
    reference = json.loads((ts_dir / "Ref" / "1.json").read_text())["SliceTiming"]  # seconds
    np.testing.assert_allclose(planes["slice_time"] / 1000.0, reference, atol=1e-4)
