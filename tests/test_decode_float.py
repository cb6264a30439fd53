"""Float Pixel Data (7FE0,0008) and Double Float Pixel Data (7FE0,0009): float32 / float64
values as stored, the Real World Value Mapping as the rescale where the header has one, and
float volumes from ``load_series``.

The files are real DICOM files written with pydicom from arrays drawn here (the known truth),
since pydicom's own parametric map examples are download-only.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import dicomml
from dicomml.decode.info import FrameInfo
from dicomml.errors import DecodeError, InvalidTagError

SHAPE = (3, 6, 5)  # slices, rows, columns
#: Parametric Map Storage: the IOD that holds float pixel data (PS3.3 A.75); the files here keep
#: their geometry at the top level, one frame each, so the catalog indexes them as single frames
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"


def _write(path, image: np.ndarray, z: float, *, double: bool = False, mapping=None,
           rescale=None, syntax=ExplicitVRLittleEndian) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = PARAMETRIC_MAP
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.1", "1.2.826.0.1.2"
    ds.Modality, ds.PatientID = "MR", "float"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = 64 if double else 32
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.8, 0.8]
    ds.InstanceNumber = int(z) + 1
    if mapping is not None:
        item = Dataset()
        item.RealWorldValueSlope, item.RealWorldValueIntercept = mapping
        item.LUTExplanation, item.LUTLabel = "T1", "T1"
        ds.RealWorldValueMappingSequence = [item]
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if double:
        ds.DoubleFloatPixelData = image.astype("<f8").tobytes()
    else:
        ds.FloatPixelData = image.astype("<f4").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _series(folder, *, double=False, mapping=None, rescale=None,
            syntax=ExplicitVRLittleEndian) -> tuple[np.ndarray, list[str]]:
    truth = np.random.default_rng(5).normal(100.0, 30.0, SHAPE)
    truth[0, 0, 0], truth[1, 0, 1] = np.nan, np.inf  # kept as they are
    truth = truth.astype(np.float64 if double else np.float32)
    folder.mkdir(exist_ok=True)
    paths = []
    for z, image in enumerate(truth):
        paths.append(str(folder / f"slice{z}.dcm"))
        _write(paths[-1], image, float(z), double=double, mapping=mapping, rescale=rescale,
               syntax=syntax)
    return truth, paths


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_float_pixels_are_read_as_stored(tmp_path, double, syntax):
    truth, paths = _series(tmp_path, double=double, syntax=syntax)
    got = dicomml.read_pixels(paths[1])
    assert got.dtype == (np.float64 if double else np.float32) and got.shape == (1, 6, 5)
    np.testing.assert_array_equal(got[0], truth[1])
    reference = pydicom.dcmread(paths[1]).pixel_array  # pydicom's own reading
    np.testing.assert_array_equal(got[0], reference)
    np.testing.assert_array_equal(dicomml.read_many(paths), truth)


def test_real_world_value_mapping_is_the_rescale_of_float_pixels(tmp_path):
    truth, paths = _series(tmp_path / "a", mapping=(2.5, -10.0))
    got = dicomml.read_pixels(paths[2], rescale=True)
    np.testing.assert_allclose(got[0], truth[2] * 2.5 - 10.0, rtol=1e-6)
    # a Modality LUT rescale in the header wins (PS3.3 C.7.6.16.2.11: RWVM is the other map)
    _, paths = _series(tmp_path / "b", mapping=(2.5, -10.0), rescale=(0.5, 1.0))
    np.testing.assert_allclose(dicomml.read_pixels(paths[2], rescale=True)[0],
                               truth[2] * 0.5 + 1.0, rtol=1e-6)


@pytest.mark.parametrize("double", [False, True])
def test_float_series_load_as_float_volumes(tmp_path, double):
    truth, _ = _series(tmp_path, double=double, mapping=(2.0, 1.0))
    kind = "float64" if double else "float32"
    volume = dicomml.load_series(tmp_path, dtype=kind)
    assert volume.array.dtype == np.dtype(kind) and volume.shape == SHAPE
    np.testing.assert_allclose(volume.array, truth.astype(np.float64) * 2.0 + 1.0, rtol=1e-6)
    assert np.isnan(volume.array[0, 0, 0]) and np.isinf(volume.array[1, 0, 1])
    np.testing.assert_allclose(volume.affine[:3, 0], [0.0, 0.0, 1.0])
    # dtype=None keeps stored integers: the catalog records no float pixel data, so the
    # 32-bit file is found to be float while reading, the 64-bit one refused before
    expected = (InvalidTagError, "BitsAllocated") if double else (DecodeError, "FloatPixelData")
    with pytest.raises(expected[0], match="float") as caught:
        dicomml.load_series(tmp_path, dtype=None)
    assert caught.value.tag == expected[1] and caught.value.path.endswith(".dcm")


def test_float_pixel_data_needs_32_or_64_bits():
    with pytest.raises(InvalidTagError, match="Float"):
        dicomml.decode.info._validate(FrameInfo("1.2.840.10008.1.2.1", rows=2, columns=2,
                                                bits_allocated=16, bits_stored=16,
                                                float_data=True))
    assert FrameInfo("1.2.840.10008.1.2.1", rows=2, columns=2, bits_allocated=64,
                     bits_stored=64, float_data=True).dtype == np.float64
