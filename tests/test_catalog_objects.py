"""Objects that are not images (issue 21 item 3): ``object_kind`` / ``has_pixels`` in the
catalog, image series apart from the rest, ``NoPixelDataError`` from the readers, and the
image matrix of Siemens mosaics in the series table.

References: pydicom's test files (their SOP classes, read by pydicom), the Philips raw-data
objects and Siemens mosaics of ``../shared/data`` (its README), and
:func:`dicomml.geometry.mosaic.mosaic_layout` on the pydicom data set for the tile size.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

import dicomml
from dicomml import synth
from dicomml.catalog import Catalog, scan, store
from dicomml.catalog.table import OBJECT_KINDS
from dicomml.errors import MissingTagError, MultipleSeriesError, NoPixelDataError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: pydicom test file -> the kind its SOP Class UID makes it
EXPECTED = {
    "CT_small.dcm": "image",
    "MR_small.dcm": "image",
    "rtstruct.dcm": "rt structure set",   # a bare data set (no file meta): pydicom refuses it
    "rtplan.dcm": "rt plan",
    "rtdose.dcm": "rt dose",
    "test-SR.dcm": "structured report",
    "reportsi.dcm": "structured report",
    "waveform_ecg.dcm": "waveform",
    "liver_1frame.dcm": "segmentation",
}
NO_PIXELS = {"rtstruct.dcm": "RT Structure Set Storage", "rtplan.dcm": "RT Plan Storage",
             "test-SR.dcm": "Comprehensive SR Storage",
             "waveform_ecg.dcm": "12-lead ECG Waveform Storage"}
RAW = "dcm_qa_philips_enh/In/enh/1901_WIP_3DpCASL_Raw.dcm"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Catalog:
    """pydicom's test files of every kind above, copied into one folder and scanned."""
    folder = tmp_path_factory.mktemp("mixed")
    for name in EXPECTED:
        shutil.copy(TEST_FILES / name, folder / name)
    return scan(folder, progress=False, workers=1)


def _name(path) -> str:
    return Path(path).name


def test_object_kind_of_each_pydicom_test_file(mixed):
    got = dict(zip(mixed.instances.path.map(_name), mixed.instances.object_kind))
    assert got == EXPECTED
    pixels = dict(zip(mixed.instances.path.map(_name), mixed.instances.has_pixels))
    for name in EXPECTED:  # pydicom's own view of each file
        ds = pydicom.dcmread(TEST_FILES / name, force=True)
        assert pixels[name] == ("PixelData" in ds), name
    assert set(mixed.instances.object_kind) <= set(OBJECT_KINDS)


def test_series_lists_images_and_objects_list_everything(mixed):
    images = {_name(p) for p in mixed.instances.path[mixed.instances.object_kind == "image"]}
    keys = set(mixed.series.series_key)
    assert {_name(f) for k in keys for f in mixed.files(k)} == images
    assert len(mixed) == len(mixed.series) == 2
    assert set(mixed.objects.object_kind) == set(EXPECTED.values())
    assert len(mixed.objects) == len(EXPECTED)
    assert (mixed.series.object_kind == "image").all() and mixed.series.has_pixels.all()
    assert "7 other objects" in repr(mixed)


def test_filter_by_object_kind_shows_those_objects(mixed):
    rt = mixed.filter(object_kind="rt structure set")
    assert len(rt.series) == 1 and rt.series.object_kind.iloc[0] == "rt structure set"
    assert _name(rt.files(rt.series.series_key.iloc[0])[0]) == "rtstruct.dcm"
    every = mixed.filter(object_kind=list(OBJECT_KINDS))
    assert len(every.series) == len(EXPECTED)
    assert len(mixed.filter(Modality="CT").series) == 1  # other filters keep images only
    key = rt.series.series_key.iloc[0]
    assert mixed[key].object_kind == "rt structure set"  # any object by key


def test_object_columns_survive_save_and_load(mixed, tmp_path):
    path = tmp_path / "c.parquet"
    mixed.save(path)
    loaded = Catalog.load(path)
    pd.testing.assert_frame_equal(loaded.objects, mixed.objects)
    pd.testing.assert_frame_equal(loaded.series, mixed.series)
    pd.testing.assert_frame_equal(loaded.instances, mixed.instances)
    assert loaded.instances.has_pixels.dtype == bool


def test_a_catalog_saved_before_object_kinds_gets_them_on_load(mixed, tmp_path):
    path = tmp_path / "old.parquet"
    old_instances = mixed.instances.drop(columns=["has_pixels", "object_kind"])
    old_series = mixed.objects.drop(columns=["has_pixels", "object_kind", "StoredRows",
                                             "StoredColumns"])
    store.save_tables(path, old_instances, old_series, mixed.errors, mixed.root)
    loaded = Catalog.load(path)
    assert set(loaded.series.series_key) == set(mixed.series.series_key)
    assert dict(zip(loaded.instances.path, loaded.instances.object_kind)) == \
        dict(zip(mixed.instances.path, mixed.instances.object_kind))


@pytest.mark.parametrize("name", sorted(NO_PIXELS))
def test_readers_say_which_object_has_no_pixel_data(name):
    path = str(TEST_FILES / name)
    readers = {"read_pixels": dicomml.read_pixels,
               "read_many": lambda p: dicomml.read_many([p]),
               "load_series": dicomml.load_series}
    for reader, read in readers.items():
        with pytest.raises(NoPixelDataError) as info:
            read(path)
        err = info.value
        assert isinstance(err, MissingTagError), reader
        assert err.path == path and err.tag == "PixelData", reader
        assert f"has no Pixel Data ({NO_PIXELS[name]})" in str(err), (reader, str(err))
        assert "force" not in str(err)


def test_load_series_by_key_of_an_object_without_pixels(mixed):
    key = mixed.filter(object_kind="structured report").series.series_key.iloc[0]
    with pytest.raises(NoPixelDataError, match="SR Storage"):
        dicomml.load_series(mixed, key)
    rows = mixed.series_instances(key)
    with pytest.raises(NoPixelDataError, match="SR Storage"):
        dicomml.read_many(rows)


def test_parametric_map_float_pixels_count_as_pixels(tmp_path):
    """Float Pixel Data (7FE0,0008) is pixel data: the Parametric Map is an image."""
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.30"
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored = 32, 32
    for name in ("HighBit", "PixelRepresentation"):
        delattr(ds, name)
    ds.FloatPixelData = np.zeros(ds.Rows * ds.Columns, np.float32).tobytes()
    ds.save_as(tmp_path / "pmap.dcm")
    cat = scan(tmp_path, progress=False, workers=1)
    assert cat.instances.has_pixels.tolist() == [True]
    assert cat.instances.object_kind.tolist() == ["image"] and len(cat.series) == 1


# --- Philips raw data -------------------------------------------------------------------------
def test_philips_raw_data_objects_are_kept_apart(shared_data):
    enh = shared_data / "dcm_qa_philips_enh" / "In" / "enh"
    cat = scan(enh, progress=False)
    kinds = dict(zip(cat.instances.path.map(_name), cat.instances.object_kind))
    assert kinds == {"1901_WIP_3DpCASL_real.dcm": "image",
                     "1901_WIP_3DpCASL_Raw.dcm": "raw data",
                     "1903_WIP_SOURCE_-_3DpCASL.dcm": "image",
                     "1903_WIP_SOURCE_-_3DpCASL_Raw.dcm": "raw data"}
    assert sorted(cat.series.SeriesNumber) == [1901, 1903]
    # the raw objects share the images' SeriesInstanceUID but do not split them
    assert set(cat.series.series_key) == set(cat.series.SeriesInstanceUID)
    raw = cat.objects[cat.objects.object_kind == "raw data"]
    assert sorted(raw.series_key) == sorted(u + "#raw-data" for u in cat.series.series_key)
    assert set(raw.split_reason) == {"object"}
    with pytest.raises(MultipleSeriesError) as info:  # two images; the raw objects are no
        dicomml.load_series(enh)                      # candidates
    assert sorted(info.value.keys) == sorted(cat.series.series_key)
    with pytest.raises(NoPixelDataError, match=r"_Raw\.dcm: has no Pixel Data \(Raw Data"):
        dicomml.load_series(cat, raw.series_key.iloc[0])
    with pytest.raises(NoPixelDataError, match="Raw Data Storage"):
        dicomml.read_pixels(shared_data / RAW)


def test_load_series_of_a_folder_with_an_image_and_its_raw_object(shared_data, tmp_path):
    enh = shared_data / "dcm_qa_philips_enh" / "In" / "enh"
    for name in ("1901_WIP_3DpCASL_real.dcm", "1901_WIP_3DpCASL_Raw.dcm"):
        shutil.copy(enh / name, tmp_path / name)
    volume = dicomml.load_series(tmp_path)
    assert volume.shape == (40, 96, 96)


# --- Siemens mosaics: image matrix vs stored frame --------------------------------------------
@pytest.mark.parametrize("folder, tile, stored", [
    ("dcm_qa_decubitus/In/HFS/4_ep2d_diff_mddw_20_p2", 128, 640),
    ("dcm_qa_ts/In", 64, 384),
])
def test_mosaic_series_report_the_image_matrix(shared_data, folder, tile, stored):
    from dicomml.geometry.mosaic import mosaic_layout

    cat = scan(shared_data / folder, progress=False)
    row = cat.series.iloc[0]
    assert (row.Rows, row.Columns) == (tile, tile)
    assert (row.StoredRows, row.StoredColumns) == (stored, stored)
    first = cat.files(row.series_key)[0]
    layout = mosaic_layout(pydicom.dcmread(first, stop_before_pixels=True), path=first)
    assert (layout.tile_rows, layout.tile_columns) == (tile, tile)
    assert (layout.mosaic_rows, layout.mosaic_columns) == (stored, stored)
    assert math.ceil(math.sqrt(row.NumberOfImagesInMosaic)) * tile == stored
    # the instances keep the header's (stored) size, which the decoders need
    assert set(cat.series_instances(row.series_key).Rows) == {stored}
    volume = dicomml.load_series([first])  # dcm_qa_ts: one image in nine syntaxes
    assert volume.shape[-2:] == (tile, tile)
    # the filter sees the image matrix: every series is kept (dcm_qa_ts's nine files share
    # one UID but not their Series Number, so the catalog holds nine series)
    assert cat.filter(max_Rows=tile).series.series_key.tolist() == \
        cat.series.series_key.tolist()


def test_non_mosaic_series_stored_size_equals_rows(tmp_path):
    synth.write_series(tmp_path, shape=(3, 10, 12), seed=1)
    row = scan(tmp_path, progress=False, workers=1).series.iloc[0]
    assert (row.Rows, row.Columns, row.StoredRows, row.StoredColumns) == (10, 12, 10, 12)


def test_an_image_file_without_pixels_stays_in_its_series_and_is_named(tmp_path):
    truth = synth.write_series(tmp_path, shape=(3, 8, 8), seed=2)
    stripped = sorted(tmp_path.iterdir())[1]
    ds = pydicom.dcmread(stripped)
    del ds.PixelData
    ds.save_as(stripped)
    cat = scan(tmp_path, progress=False, workers=1)
    assert cat.series.series_key.tolist() == [truth.series_uid]  # not split off
    assert cat.instances.has_pixels.tolist().count(False) == 1
    assert (cat.instances.object_kind == "image").all()
    with pytest.raises(NoPixelDataError) as info:
        dicomml.load_series(cat, truth.series_uid)
    assert info.value.path == str(stripped) and "CT Image Storage" in str(info.value)


def test_a_split_uid_loads_without_the_objects_beside_it(tmp_path):
    """Key = a SeriesInstanceUID split into sub-series: the 4D load takes its images, not
    the non-image object (here an SR) filed under the same UID."""
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 8, 8), seed=3)
    for i, path in enumerate(sorted(tmp_path.iterdir())):  # two echoes at each position
        ds = pydicom.dcmread(path)
        ds.EchoNumbers = 1
        ds.save_as(path)
        ds.EchoNumbers, ds.SOPInstanceUID = 2, pydicom.uid.generate_uid()
        ds.save_as(tmp_path / f"echo2_{i}.dcm")
    sr = pydicom.dcmread(TEST_FILES / "test-SR.dcm")
    sr.SeriesInstanceUID, sr.StudyInstanceUID = truth.series_uid, truth.study_uid
    sr.save_as(tmp_path / "report.dcm")
    cat = scan(tmp_path, progress=False, workers=1)
    assert sorted(cat.series.series_key) == [truth.series_uid + "#e1", truth.series_uid + "#e2"]
    assert cat.objects.series_key.tolist().count(truth.series_uid + "#structured-report") == 1
    volume = dicomml.load_series(cat, truth.series_uid)
    assert volume.shape == (2, 3, 8, 8)


def test_datasets_iterate_image_series_only(mixed):
    series = dicomml.DicomSeriesDataset(mixed)
    assert len(series) == 2
    keys = {series[i]["series_key"] for i in range(len(series))}
    assert keys == set(mixed.series.series_key)
