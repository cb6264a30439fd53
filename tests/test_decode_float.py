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
    notes = volume.metadata["float_pixels"]
    assert notes["applied"] == "real_world_value_mapping"
    assert notes["nonfinite"] == {"nan": 1, "posinf": 1, "neginf": 0}


@pytest.mark.parametrize("double", [False, True])
def test_catalogued_float_series_load_stored_floats_with_dtype_none(tmp_path, double):
    """The catalog marks float pixel data (``float_pixel_data``), so ``load_series(cat, key,
    dtype=None)`` returns the stored float32 / float64 values, NaN and Inf kept and counted,
    the Real World Value Mapping recorded (not applied)."""
    truth, _ = _series(tmp_path, double=double, mapping=(2.0, 1.0))
    cat = dicomml.scan(tmp_path, progress=False)
    assert cat.instances["float_pixel_data"].tolist() == [1] * SHAPE[0]
    key = cat.series["series_key"][0]
    volume = dicomml.load_series(cat, key, dtype=None)
    kind = np.float64 if double else np.float32
    assert volume.array.dtype == kind and volume.shape == SHAPE
    np.testing.assert_array_equal(volume.array, truth)  # NaN == NaN here: stored as is
    notes = volume.metadata["float_pixels"]
    assert notes["element"] == ("DoubleFloatPixelData" if double else "FloatPixelData")
    assert notes["dtype"] == np.dtype(kind).name and notes["applied"] is None
    assert notes["nonfinite"] == {"nan": 1, "posinf": 1, "neginf": 0}
    [mapping] = notes["real_world_value_mapping"]
    assert (mapping["slope"], mapping["intercept"], mapping["label"]) == (2.0, 1.0, "T1")
    # a folder source goes through the same catalog rows
    np.testing.assert_array_equal(dicomml.load_series(tmp_path, dtype=None).array, truth)


def test_integer_series_carry_no_float_marker(tmp_path):
    dicomml.synth.write_series(tmp_path, shape=(2, 4, 4))
    cat = dicomml.scan(tmp_path, progress=False)
    assert cat.instances["float_pixel_data"].isna().all()
    assert "float_pixels" not in dicomml.load_series(tmp_path, dtype=None).metadata


def test_float_file_without_the_marker_is_refused_for_stored_integers(tmp_path):
    """A catalog without the marker (written before it existed): dtype=None cannot hold the
    float values, a typed error naming the file and the element (or BitsAllocated 64)."""
    _series(tmp_path)
    scanned = dicomml.scan(tmp_path, progress=False)
    cat = dicomml.Catalog(scanned.instances.drop(columns=["float_pixel_data"]))
    key = cat.series["series_key"][0]
    with pytest.raises(DecodeError, match="float") as caught:
        dicomml.load_series(cat, key, dtype=None)
    assert caught.value.tag == "FloatPixelData" and caught.value.path.endswith(".dcm")


def test_highdicom_parametric_map_loads_on_its_source_grid(tmp_path):
    """An enhanced Parametric Map written by highdicom (float frames, the Real World Value
    Mapping in the shared functional groups) over a synthetic MR series: dtype=None gives
    the stored floats, the default float32 the mapped values, both on the source's affine."""
    hd = pytest.importorskip("highdicom")
    truth = dicomml.synth.write_series(tmp_path / "mr", modality="MR", shape=(3, 8, 8), seed=1)
    sources = sorted((pydicom.dcmread(p) for p in truth.paths),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    values = np.random.default_rng(0).normal(1.0, 0.2, (3, 8, 8)).astype(np.float32)
    values[0, 0, 0], values[2, 1, 1] = np.nan, -np.inf
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="ADC", lut_explanation="apparent diffusion",
        unit=hd.sr.CodedConcept("mm2/s", "UCUM", "mm2/s"), value_range=(-100.0, 100.0),
        slope=2.0, intercept=0.5)
    pm = hd.pm.ParametricMap(sources, values, hd.UID(), 1, hd.UID(), 1, "dicomml", "model",
                             "1", "serial", contains_recognizable_visual_features=False,
                             real_world_value_mappings=[mapping], window_center=1,
                             window_width=2)
    (tmp_path / "pm").mkdir()
    pm.save_as(tmp_path / "pm" / "pm.dcm")
    stored = dicomml.load_series(tmp_path / "pm", dtype=None)
    assert stored.array.dtype == np.float32
    np.testing.assert_array_equal(stored.array, values)
    np.testing.assert_allclose(stored.affine, truth.affine, atol=1e-4)
    notes = stored.metadata["float_pixels"]
    assert notes["nonfinite"] == {"nan": 1, "posinf": 0, "neginf": 1}
    assert notes["real_world_value_mapping"][0]["units"] == "mm2/s" and notes["applied"] is None
    mapped = dicomml.load_series(tmp_path / "pm")
    np.testing.assert_allclose(mapped.array, values * 2.0 + 0.5, rtol=1e-6)
    assert mapped.metadata["float_pixels"]["applied"] == "real_world_value_mapping"


def test_float_pixel_data_needs_32_or_64_bits():
    with pytest.raises(InvalidTagError, match="Float"):
        dicomml.decode.info._validate(FrameInfo("1.2.840.10008.1.2.1", rows=2, columns=2,
                                                bits_allocated=16, bits_stored=16,
                                                float_data=True))
    assert FrameInfo("1.2.840.10008.1.2.1", rows=2, columns=2, bits_allocated=64,
                     bits_stored=64, float_data=True).dtype == np.float64
