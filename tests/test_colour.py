"""Colour volumes (issue 16 item 5): RGB, YBR_* and PALETTE COLOR series load with a trailing
channel axis, equal to pydicom's pixel_array (+ apply_color_lut), to_nifti() writes RGB24 as
dcm2niix does, the Dataset gives the samples as channels; bad colour headers raise typed
errors naming the file and tag."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from test_decode_pydicom import JPEG_LOSSY_TOLERANCE

import dicomml
from dicomml import syntaxes as ts
from dicomml import synth
from dicomml.dataset import DicomSeriesDataset
from dicomml.dataset.collate import collate
from dicomml.errors import InvalidTagError, MissingTagError, MultipleSeriesError
from dicomml.loader import build_planes
from dicomml.transforms import Resample
from dicomml.volume import RGB24, Volume

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
PALETTE_TAGS = ("RedPaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData")


def _colour_files() -> list[str]:
    """pydicom's shipped colour files that carry the UIDs a series needs."""
    found = []
    for path in sorted(TEST_FILES.glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not a DICOM file with a preamble
            continue
        photometric = str(ds.get("PhotometricInterpretation", ""))
        if photometric and not photometric.startswith("MONO") and "SeriesInstanceUID" in ds:
            found.append(path.name)
    return found


COLOUR_FILES = _colour_files()


def _reference(path: Path) -> np.ndarray:
    """pydicom's RGB of a file (pixel_array converts YBR_* to RGB; palettes looked up)."""
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    return pixels.reshape(-1, *pixels.shape[-3:])  # (frames, rows, columns, 3)


def test_the_shipped_colour_files_cover_every_kind():
    kinds = {str(pydicom.dcmread(TEST_FILES / n, stop_before_pixels=True)
                 .PhotometricInterpretation) for n in COLOUR_FILES}
    assert {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "PALETTE COLOR"} <= kinds
    assert len(COLOUR_FILES) >= 25


@pytest.mark.parametrize("name", COLOUR_FILES)
def test_colour_file_equals_pydicom(name, tmp_path):
    path = tmp_path / name
    shutil.copy(TEST_FILES / name, path)
    vol = dicomml.load_series([str(path)], dtype="float64")
    reference = _reference(path)
    assert vol.is_colour and vol.channels == 3
    assert vol.shape == reference.shape and vol.spatial_shape == reference.shape[:3]
    stored = dicomml.load_series([str(path)], dtype=None)
    assert stored.array.dtype == reference.dtype
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if syntax in (ts.JPEG_BASELINE, ts.JPEG_EXTENDED):  # decoders' IDCT rounding differs
        tolerance = JPEG_LOSSY_TOLERANCE  # (the same bound as test_decode_pydicom)
        assert np.abs(vol.array - reference.astype(np.float64)).max() <= tolerance
        assert np.abs(stored.array.astype(np.int64) - reference).max() <= tolerance
        assert np.array_equal(vol.array, stored.array.astype(np.float64))
        return
    np.testing.assert_array_equal(vol.array, reference.astype(np.float64))
    np.testing.assert_array_equal(stored.array, reference)


def test_planar_configuration_one(tmp_path):
    """ExplVR_BigEnd.dcm stores R, G, B planes one after another (Planar Configuration 1)."""
    path = tmp_path / "planar.dcm"
    shutil.copy(TEST_FILES / "ExplVR_BigEnd.dcm", path)
    assert pydicom.dcmread(path, stop_before_pixels=True).PlanarConfiguration == 1
    vol = dicomml.load_series([str(path)], dtype=None)
    np.testing.assert_array_equal(vol.array, _reference(path))


def test_to_nifti_writes_rgb24_like_dcm2niix(tmp_path):
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    shutil.copy(TEST_FILES / "SC_rgb_rle_2frame.dcm", source)
    subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", str(out), str(source)],
                   check=True, capture_output=True)
    reference = nib.load(out / "ref.nii")
    ours = dicomml.load_series(str(source)).to_nifti()
    assert reference.get_data_dtype() == RGB24 == ours.get_data_dtype()
    assert int(ours.header["datatype"]) == int(reference.header["datatype"]) == 128
    assert ours.shape == reference.shape == (100, 100, 2)
    # voxels in the same anatomical order (the file has no patient geometry: both affines are
    # placeholders, compared by the geometry tests, not here)
    np.testing.assert_array_equal(np.asanyarray(nib.as_closest_canonical(ours).dataobj),
                                  np.asanyarray(nib.as_closest_canonical(reference).dataobj))


def test_to_nifti_colour_beyond_8_bits_keeps_samples_as_vector(tmp_path):
    path = tmp_path / "rgb16.dcm"
    shutil.copy(TEST_FILES / "SC_rgb_rle_16bit.dcm", path)
    vol = dicomml.load_series([str(path)])
    image = vol.to_nifti()
    assert image.shape == (100, 100, 1, 1, 3)
    assert image.header.get_intent()[0] == "vector"
    np.testing.assert_array_equal(np.asanyarray(image.dataobj)[:, :, 0, 0, :],
                                  vol.array[0].transpose(1, 0, 2))


def test_dataset_gives_the_samples_as_channels(tmp_path):
    shutil.copy(TEST_FILES / "SC_rgb_rle_2frame.dcm", tmp_path)
    vol = dicomml.load_series(str(tmp_path))
    dataset = DicomSeriesDataset(dicomml.scan(str(tmp_path), progress=False))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1,
                                         collate_fn=collate)
    batch = next(iter(loader))
    assert batch["image"].shape == (1, 3, 2, 100, 100)
    expected = torch.from_numpy(np.moveaxis(vol.array, -1, 0).copy())
    assert torch.equal(batch["image"][0], expected)


def test_4d_colour_volume_channels_and_shape():
    array = np.arange(2 * 3 * 4 * 5 * 3, dtype=np.float32).reshape(2, 3, 4, 5, 3)
    vol = Volume(array, np.eye(4), {"channels": "RGB"})
    assert vol.spatial_shape == (3, 4, 5) and vol.channels == 3
    assert vol.nifti_array().shape == (5, 4, 3, 2, 3)
    from dicomml.dataset._core import volume_sample

    image = volume_sample(vol, {}, {})["image"]
    assert image.shape == (6, 3, 4, 5)  # volume-major: channel 3 * v + s
    assert torch.equal(image[4], torch.from_numpy(array[1, ..., 1].copy()))
    with pytest.raises(ValueError):
        Volume(np.zeros((3, 4, 5)), np.eye(4), {"channels": "RGB"})


def _write(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_three_samples_with_a_grey_photometric_names_file_and_tag(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "examples_rgb_color.dcm")
    ds.PhotometricInterpretation = "MONOCHROME2"
    path = _write(ds, tmp_path / "bad.dcm")
    with pytest.raises(InvalidTagError) as caught:
        dicomml.load_series([path])
    assert caught.value.path == path and caught.value.tag == "PhotometricInterpretation"


@pytest.mark.parametrize("missing", PALETTE_TAGS)
def test_palette_without_its_lut_names_file_and_tag(tmp_path, missing):
    ds = pydicom.dcmread(TEST_FILES / "examples_palette.dcm")
    del ds[missing]
    path = _write(ds, tmp_path / "palette.dcm")
    with pytest.raises(MissingTagError) as caught:
        dicomml.load_series([path])
    assert caught.value.path == path and caught.value.tag == missing


def test_colour_and_grey_under_one_uid_are_split_with_a_reason(tmp_path):
    colour = pydicom.dcmread(TEST_FILES / "examples_rgb_color.dcm")
    grey = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    grey.StudyInstanceUID, grey.SeriesInstanceUID = colour.StudyInstanceUID, \
        colour.SeriesInstanceUID
    grey.PatientID = colour.PatientID
    _write(colour, tmp_path / "colour.dcm")
    _write(grey, tmp_path / "grey.dcm")
    catalog = dicomml.scan(str(tmp_path), progress=False)
    keys = catalog.series["series_key"].tolist()
    assert len(keys) == 2 and all(k.startswith(colour.SeriesInstanceUID) for k in keys)
    volumes = [dicomml.load_series(catalog, k) for k in keys]
    assert sorted(v.is_colour for v in volumes) == [False, True]
    with pytest.raises(MultipleSeriesError, match="colour"):  # the files given together
        dicomml.load_series([str(tmp_path / "colour.dcm"), str(tmp_path / "grey.dcm")])
    with pytest.raises(InvalidTagError) as caught:  # the loader's own guard, past the split
        build_planes(catalog.instances)
    assert caught.value.tag == "PhotometricInterpretation"


SYNTH_CASES = [("RGB", 0, ExplicitVRLittleEndian), ("RGB", 1, ExplicitVRLittleEndian),
               ("RGB", 0, RLELossless), ("YBR_FULL", 0, ExplicitVRLittleEndian),
               ("YBR_FULL", 1, ExplicitVRLittleEndian), ("YBR_FULL", 0, RLELossless),
               ("PALETTE COLOR", 0, ExplicitVRLittleEndian), ("PALETTE COLOR", 0, RLELossless)]


@pytest.mark.parametrize("photometric,planar,syntax", SYNTH_CASES)
def test_synth_colour_series_loads_its_truth(tmp_path, photometric, planar, syntax):
    truth = synth.write_colour_series(tmp_path, shape=(4, 10, 7), photometric=photometric,
                                      planar_configuration=planar, transfer_syntax=syntax,
                                      orientation="oblique")
    vol = dicomml.load_series(str(tmp_path), dtype=None)
    assert vol.is_colour and vol.array.dtype == truth.array.dtype
    np.testing.assert_array_equal(vol.array, truth.array)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-4)
    floats = dicomml.load_series(str(tmp_path))
    np.testing.assert_array_equal(floats.array, truth.array.astype(np.float32))


def test_synth_colour_series_in_the_dataset_with_a_spatial_transform(tmp_path):
    truth = synth.write_colour_series(tmp_path, shape=(4, 10, 7))
    dataset = DicomSeriesDataset(dicomml.scan(str(tmp_path), progress=False),
                                 transform=Resample((2.0, 1.0, 1.0)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1,
                                         collate_fn=collate)
    batch = next(iter(loader))
    assert batch["image"].shape[:2] == (1, 3)
    np.testing.assert_allclose(batch["spacing"][0].numpy(), [2.0, 1.0, 1.0])
    for sample in range(3):  # each channel resampled as the grey truth of that sample
        grey = {"image": torch.from_numpy(truth.array[None, ..., sample].astype(np.float32)),
                "affine": torch.from_numpy(truth.affine.copy()),
                "spacing": torch.tensor(truth.spacing, dtype=torch.float64)}
        expected = Resample((2.0, 1.0, 1.0))(grey)["image"][0]
        torch.testing.assert_close(batch["image"][0, sample], expected, atol=1e-3, rtol=0)
