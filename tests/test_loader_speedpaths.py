"""The loader's fast paths give exactly what the general paths give.

``load_series`` takes shortcuts for the usual case (vectorised header checks, a lexsort for the
4D volume order, per-format facts worked out once, threaded reads in runs of files, a casting
copy for an identity rescale). Each shortcut falls back to the general code when its
conditions do not hold; these tests compare both on real files written by ``dicomml.synth``
and on plane tables with awkward values, and check the loaded values against the writer's
ground truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dicomml
from dicomml import synth
from dicomml.errors import DicommlError
from dicomml.geometry.checks import DEFAULT_TOLERANCES
from dicomml.geometry.planes import plane_table
from dicomml.geometry.stack import (
    _dimension_keys,
    _dimension_keys_pandas,
    _group_sorted,
    _locations,
)
from dicomml.loader import pixels
from dicomml.loader.planes import (
    _plainly_valid,
    _vectors,
    _vectors_by_row,
    build_planes,
    check_planes,
    check_records,
)
from dicomml.loader.sources import resolve_source
from dicomml.loader.values import store, store_values


@pytest.mark.parametrize("photometric, signed, bits_stored, slope, intercept", [
    ("MONOCHROME2", True, 16, 1.0, 0.0),       # identity rescale: the casting copy
    ("MONOCHROME2", True, 12, 1.0, -1024.0),   # sign extension, intercept only
    ("MONOCHROME1", False, 12, 2.5, -10.0),    # masking, slope, inversion
])
def test_threaded_runs_match_one_thread_and_the_truth(tmp_path, monkeypatch, photometric,
                                                      signed, bits_stored, slope, intercept):
    truth = synth.write_series(tmp_path, shape=(9, 12, 10), photometric=photometric,
                               signed=signed, bits_stored=bits_stored, slope=slope,
                               intercept=intercept, seed=3)
    catalog = dicomml.scan(tmp_path, progress=False)
    monkeypatch.setattr(pixels, "THREADED_BYTES", 0)  # thread even this small series
    for dtype in ("float32", None):
        one = dicomml.load_series(catalog, threads=1, dtype=dtype)
        many = dicomml.load_series(catalog, threads=3, dtype=dtype)
        assert one.array.dtype == many.array.dtype
        np.testing.assert_array_equal(one.array, many.array)
        np.testing.assert_array_equal(one.affine, many.affine)
    np.testing.assert_allclose(one.affine, truth.affine, atol=1e-6)
    expected = truth.meta["display_array"] if photometric == "MONOCHROME1" else truth.array
    rescaled = dicomml.load_series(catalog, threads=3)
    np.testing.assert_allclose(rescaled.array, expected, rtol=1e-6, atol=1e-3)
    stored = dicomml.load_series(catalog, threads=3, dtype=None)
    lo, hi = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed \
        else (0, (1 << bits_stored) - 1)
    np.testing.assert_array_equal(
        stored.array, lo + hi - truth.stored if photometric == "MONOCHROME1" else truth.stored)


def test_identity_rescale_copy_equals_the_formula():
    image = np.array([[-32768, -1, 0, 1, 32767]], np.int16)
    plane = {"bits_allocated": 16, "bits_stored": 16, "pixel_representation": 1,
             "slope": 1.0, "intercept": 0.0, "photometric": "MONOCHROME2"}
    for kind in (np.float32, np.float64, np.float16):
        slot = np.full(image.shape, np.nan, kind)
        store(image, plane, slot, kind)
        expected = image.astype(kind) * kind(1.0) + kind(0.0)
        np.testing.assert_array_equal(slot, expected)
        assert not np.signbit(slot[0, 2])  # 0 stays +0.0


def test_precomputed_store_values_equal_per_plane_values():
    image = np.arange(-5, 5, dtype=np.int16).reshape(2, 5)
    plane = {"bits_allocated": 16, "bits_stored": 4, "pixel_representation": 1,
             "slope": 3.0, "intercept": 1.5, "photometric": "MONOCHROME1 "}
    for dtype in ("float32", None):
        kind = np.float32 if dtype else np.int16
        direct, cached = np.empty(image.shape, kind), np.empty(image.shape, kind)
        store(image.copy(), plane, direct, dtype)
        store(image.copy(), plane, cached, dtype, store_values(plane, dtype is not None))
        np.testing.assert_array_equal(direct, cached)


def test_formats_tell_apart_what_changes_the_values():
    """Per file, the decoder's description (one Location per file, built as from catalog
    rows) and, per plane, the output values: worked out once per distinct format."""
    base = {"path": "a.dcm", "transfer_syntax": "1.2.840.10008.1.2.1", "bits_allocated": 16,
            "bits_stored": 12, "pixel_representation": 0, "photometric": "MONOCHROME2",
            "samples_per_pixel": 1, "slope": 1.0, "intercept": 0.0, "rows": 4, "columns": 3,
            "pixel_data_offset": 200, "pixel_data_length": 24}

    def format_of(plane, values):
        where = pixels.file_locations({plane["path"]: [(0, plane)]})[plane["path"]]
        return (where.info.format_key, where.offset >= 0, where.length), values.of(plane)

    values = pixels._Values(rescale=True)
    first = format_of(base, values)
    assert first[0][0][0] == "1.2.840.10008.1.2.1" and first[0][1:] == (True, 24)
    moved = format_of(dict(base, path="b.dcm", pixel_data_offset=900), values)
    assert moved[0] == first[0] and moved[1] is first[1]          # offset: per file
    assert format_of(dict(base, mosaic_rows=float("nan")), values)[0] == format_of(
        dict(base, mosaic_rows=None), values)[0]                  # NaN and None: absent
    for change in ({"slope": 2.0}, {"intercept": -3.0}, {"photometric": "MONOCHROME1"},
                   {"bits_stored": 16}, {"pixel_representation": 1},
                   {"transfer_syntax": "1.2.840.10008.1.2.2"}, {"pixel_data_offset": -1}):
        other = format_of(dict(base, **change), values)
        assert other != first
        assert other == format_of(dict(base, **change), pixels._Values(rescale=True))


def _random_planes(rng, n: int) -> pd.DataFrame:
    rows = []
    for _ in range(n):
        rows.append(dict(
            path=f"f{rng.integers(0, 4)}.dcm", frame=int(rng.integers(0, 3)), tile=-1,
            position=(0.0, 0.0, float(rng.integers(0, 3))), orientation=(1, 0, 0, 0, 1, 0),
            pixel_spacing=(1, 1), rows=2, columns=2,
            temporal=[np.nan, 1.0, 2.0, -5.0][rng.integers(0, 4)],
            echo=[np.nan, 3.0][rng.integers(0, 2)],
            gradient=[None, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)][rng.integers(0, 3)],
            stack=[None, "1", "2", "10"][rng.integers(0, 4)],
            instance=float(rng.integers(0, 50))))
    return plane_table(rows)


#: the pandas sort (the reference) warns on fillna(-inf) over string columns; not our code's
IGNORE_FILL = "ignore:.*not supported as a fill value"


@pytest.mark.filterwarnings(IGNORE_FILL)
@pytest.mark.parametrize("seed", range(8))
def test_lexsorted_volume_order_equals_the_pandas_sort(seed):
    planes = _random_planes(np.random.default_rng(seed), 40)
    np.testing.assert_array_equal(_dimension_keys(planes), _dimension_keys_pandas(planes))


@pytest.mark.filterwarnings(IGNORE_FILL)
def test_volume_order_of_string_and_missing_stack_ids_falls_back_to_pandas():
    planes = _random_planes(np.random.default_rng(0), 12)
    planes["stack"] = pd.Series(["b", None, "a"] * 4, dtype="string")  # pandas NA
    np.testing.assert_array_equal(_dimension_keys(planes), _dimension_keys_pandas(planes))


@pytest.mark.parametrize("seed", range(6))
def test_location_shortcut_equals_the_walk(seed):
    rng = np.random.default_rng(seed)
    pos = np.zeros((30, 3))
    pos[:, 2] = rng.permutation(30) * 1.5
    if seed % 2:  # some duplicates and near-duplicates (at the tolerance)
        pos[5] = pos[6]
        pos[7, 2] = pos[8, 2] + DEFAULT_TOLERANCES.duplicate_mm
    d = pos[:, 2]
    fast = _locations(pos, d, DEFAULT_TOLERANCES)
    walk = _group_sorted(pos, np.argsort(d, kind="stable"), DEFAULT_TOLERANCES)
    assert [g.tolist() for g in fast] == [g.tolist() for g in walk]


def _series_planes(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    synth.write_series(tmp_path, shape=(4, 6, 5), bits_stored=12, seed=1)
    instances = resolve_source(tmp_path)[0]
    return instances, build_planes(instances)


BAD_VALUES = [("rows", 0), ("columns", 70000), ("rows", 2.5), ("bits_allocated", np.nan),
              ("bits_allocated", 65), ("bits_stored", 17), ("bits_stored", 0),
              ("pixel_representation", 2), ("samples_per_pixel", 4), ("samples_per_pixel", 2),
              ("slope", np.inf),
              ("intercept", np.nan), ("pixel_spacing", (0.0, 1.0)),
              ("pixel_spacing", (np.nan, 1.0))]


@pytest.mark.parametrize("name, bad", BAD_VALUES)
def test_vectorised_header_check_raises_what_the_record_checks_raise(tmp_path, name, bad):
    _, planes = _series_planes(tmp_path)
    assert _plainly_valid(planes)
    check_records(planes)  # the valid table passes both ways
    broken = planes.copy()
    if name == "pixel_spacing":
        broken[name] = [bad] + broken[name].tolist()[1:]
    else:
        broken[name] = broken[name].astype(np.float64)
        broken.loc[2, name] = bad
    assert not _plainly_valid(broken)
    with pytest.raises(DicommlError) as by_records:
        check_records(broken)
    with pytest.raises(type(by_records.value)) as checked:
        check_planes(broken)
    assert str(checked.value) == str(by_records.value)
    assert checked.value.path == by_records.value.path


@pytest.mark.parametrize("bad", [None, (1.0, 2.0), "abc", (1.0, np.inf, 0.0), "1\\2\\3"])
def test_vector_columns_fast_path_equals_row_by_row(tmp_path, bad):
    instances, _ = _series_planes(tmp_path)
    name = "ImagePositionPatient"
    paths, values = instances["path"].tolist(), instances[name].tolist()
    assert _vectors(instances, name, 3) == _vectors_by_row(paths, values, name, 3)
    broken = instances.copy()
    broken[name] = values[:1] + [bad] + values[2:]
    with pytest.raises(DicommlError) as slow:
        _vectors_by_row(paths, broken[name].tolist(), name, 3)
    with pytest.raises(type(slow.value)) as fast:
        _vectors(broken, name, 3)
    assert str(fast.value) == str(slow.value) and fast.value.path == paths[1]


def test_allocate_decodes_into_shared_memory(tmp_path):
    from multiprocessing import shared_memory

    synth.write_series(tmp_path, shape=(5, 8, 6), bits_stored=12, slope=2.0, seed=4)
    expected = dicomml.load_series(tmp_path)
    blocks = []

    def allocate(shape, dtype):
        block = shared_memory.SharedMemory(create=True, size=int(np.prod(shape)) * dtype.itemsize)
        blocks.append(block)
        return np.ndarray(shape, dtype=dtype, buffer=block.buf)

    try:
        volume = dicomml.load_series(tmp_path, allocate=allocate)
        assert len(blocks) == 1
        shared = np.ndarray((1,) + expected.shape, dtype=np.float32, buffer=blocks[0].buf)
        assert np.shares_memory(volume.array, shared)
        np.testing.assert_array_equal(volume.array, expected.array)
        np.testing.assert_array_equal(shared[0], expected.array)
        np.testing.assert_array_equal(volume.affine, expected.affine)
        del volume, shared
    finally:
        for block in blocks:
            block.close()
            block.unlink()


@pytest.mark.parametrize("wrong", [
    lambda shape, dtype: np.empty(shape, np.float64),             # dtype
    lambda shape, dtype: np.empty(shape[1:], dtype),              # shape
    lambda shape, dtype: np.empty(shape[::-1], dtype).T,          # not C-contiguous
    lambda shape, dtype: [0.0],                                   # not an array
])
def test_allocate_must_return_a_matching_array(tmp_path, wrong):
    synth.write_series(tmp_path, shape=(3, 4, 5), seed=2)
    with pytest.raises(ValueError, match="allocate"):
        dicomml.load_series(tmp_path, allocate=wrong)
