"""load_series on synthetic series (dicomml.synth ground truth) and the classic traps."""

from __future__ import annotations

import itertools
import shutil
import warnings

import numpy as np
import pytest

import dicomml
from dicomml import synth
from dicomml.errors import (
    DuplicateSliceError,
    GeometryWarning,
    MissingSliceError,
    MissingTagError,
    MultipleSeriesError,
    SeriesNotFoundError,
    UnevenSpacingError,
)

CASES = list(itertools.product(synth.ORIENTATIONS, synth.PATIENT_POSITIONS))[::2]


def _assert_matches(volume, truth, atol=1e-9):
    assert volume.shape == truth.array.shape
    np.testing.assert_allclose(volume.array, truth.array, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(volume.affine, truth.affine, atol=atol)


@pytest.mark.parametrize("orientation,position", CASES)
def test_random_geometry_matches_ground_truth(tmp_path, orientation, position):
    seed = CASES.index((orientation, position))
    rng = np.random.default_rng(seed)
    spacing = tuple(float(v) for v in rng.uniform(0.4, 3.0, size=3).round(3))
    truth = synth.write_series(tmp_path, modality=("CT", "MR")[seed % 2], shape=(7, 12, 10),
                               spacing=spacing, orientation=orientation,
                               patient_position=position, seed=seed)
    volume = dicomml.load_series(tmp_path)
    _assert_matches(volume, truth)
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-6)
    assert volume.metadata["findings"] == []


@pytest.mark.parametrize("numbers", ["reversed", "shuffled"])
def test_order_comes_from_positions_not_instance_number_or_file_name(tmp_path, numbers):
    truth = synth.write_series(tmp_path, shape=(9, 8, 8), orientation="oblique",
                               instance_numbers=numbers, shuffle=True, seed=5)
    assert list(truth.meta["instance_numbers"].ravel()) != list(range(1, 10))
    _assert_matches(dicomml.load_series(tmp_path), truth)


def test_file_list_and_catalog_sources(tmp_path):
    truth = synth.write_series(tmp_path / "s", shape=(5, 8, 8), seed=2)
    _assert_matches(dicomml.load_series([str(p) for p in truth.paths]), truth)
    scan = getattr(pytest.importorskip("dicomml.catalog"), "scan", None)
    if scan is None:
        pytest.skip("dicomml.catalog.scan not available yet")
    catalog = scan(tmp_path, progress=False)
    key = catalog.instances["series_key"].iloc[0]
    _assert_matches(dicomml.load_series(catalog, key), truth)
    with pytest.raises(SeriesNotFoundError):
        dicomml.load_series(catalog, "no-such-key")


def test_mixed_series_in_a_folder_lists_their_keys(tmp_path):
    a = synth.write_series(tmp_path, shape=(4, 8, 8), seed=1, series_number=1)
    b = synth.write_series(tmp_path, shape=(6, 8, 8), seed=2, series_number=2,
                           study_uid=a.study_uid, patient_id=a.patient_id)
    with pytest.raises(MultipleSeriesError) as info:
        dicomml.load_series(tmp_path)
    keys = info.value.keys
    assert len(keys) == 2 and all(k in str(info.value) for k in keys)
    shapes = sorted(dicomml.load_series(tmp_path, key).shape for key in keys)
    assert shapes == sorted([a.array.shape, b.array.shape])


def test_uneven_spacing_is_never_averaged_silently(tmp_path):
    offsets = [0.0, 2.0, 4.0, 5.0, 7.0, 9.0]
    truth = synth.write_series(tmp_path, shape=(6, 8, 8), slice_offsets=offsets, seed=3)
    with pytest.raises(UnevenSpacingError):
        dicomml.load_series(tmp_path)
    with pytest.warns(GeometryWarning, match="uneven"):
        volume = dicomml.load_series(tmp_path, policy="warn")
    assert [f["kind"] for f in volume.metadata["findings"]] == ["uneven"]
    np.testing.assert_allclose(volume.array, truth.array)
    resampled = dicomml.load_series(tmp_path, resample=True)
    assert resampled.metadata["resampled"]
    step = 9.0 / round(9.0 / 2.0)  # span / round(span / median step)
    assert np.isclose(resampled.spacing[0], step)
    depth = np.arange(resampled.shape[0]) * step
    expected = np.stack([np.interp(depth, offsets, truth.array[:, r, c])
                         for r in range(8) for c in range(8)], -1).reshape(-1, 8, 8)
    np.testing.assert_allclose(resampled.array, expected, rtol=1e-5, atol=1e-3)


def test_missing_slice_is_a_gap(tmp_path):
    offsets = [0.0, 2.5, 5.0, 10.0, 12.5]
    truth = synth.write_series(tmp_path, shape=(5, 8, 8), slice_offsets=offsets, seed=4)
    with pytest.raises(MissingSliceError, match="1 slice"):
        dicomml.load_series(tmp_path)
    volume = dicomml.load_series(tmp_path, resample=True)
    assert volume.shape == (6, 8, 8) and np.isclose(volume.spacing[0], 2.5)
    np.testing.assert_allclose(volume.array[3], (truth.array[2] + truth.array[3]) / 2, atol=1e-3)
    np.testing.assert_allclose(volume.affine[:3, 3], truth.positions[0], atol=1e-9)


def test_duplicate_positions_raise(tmp_path):
    synth.write_series(tmp_path, shape=(4, 8, 8), slice_offsets=[0, 2.5, 2.5, 5], seed=6)
    with pytest.raises(DuplicateSliceError):
        dicomml.load_series(tmp_path)
    with pytest.warns(GeometryWarning):
        volume = dicomml.load_series(tmp_path, policy={"duplicate": "warn"})
    assert volume.shape == (3, 8, 8)


def test_gantry_tilt_gives_an_exact_sheared_affine_or_a_resampled_grid(tmp_path):
    truth = synth.write_series(tmp_path, modality="CT", shape=(8, 16, 16), gantry_tilt=15.0,
                               seed=7)
    with pytest.warns(GeometryWarning, match="tilt"):
        volume = dicomml.load_series(tmp_path)
    assert volume.is_sheared
    for k, position in enumerate(truth.positions):  # every slice lands on its own IPP
        np.testing.assert_allclose((volume.affine @ [k, 0, 0, 1])[:3], position, atol=1e-6)
    np.testing.assert_allclose(volume.array, truth.array)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        flat = dicomml.load_series(tmp_path, resample=True)
    assert not flat.is_sheared and flat.shape == volume.shape
    # slice 0 is not moved; slice k is shifted in-plane by its drift: check against numpy's
    # 1D linear interpolation of the ground truth along the drift direction (rows here)
    np.testing.assert_allclose(flat.array[0], truth.array[0], atol=1e-3)
    drift = (truth.positions[1] - truth.positions[0]) @ truth.orientation[3:] / 0.75
    assert abs(drift) > 0.5  # rows per slice
    rows = np.arange(16)
    for k in range(1, 8):
        source = rows - k * drift
        inside = (source >= 0) & (source <= 15)
        expected = np.stack([np.interp(source[inside], rows, truth.array[k, :, c])
                             for c in range(16)], axis=1)
        np.testing.assert_allclose(flat.array[k][inside], expected, rtol=1e-5, atol=1e-2)
    with pytest.raises(dicomml.errors.GantryTiltError):
        dicomml.load_series(tmp_path, policy={"tilt": "raise"})


def test_monochrome1_is_inverted_after_rescale(tmp_path):
    truth = synth.write_series(tmp_path, modality="CT", shape=(4, 8, 8), photometric="MONOCHROME1",
                               slope=0.5, intercept=-100.0, bits_stored=12, seed=8)
    volume = dicomml.load_series(tmp_path)
    assert volume.metadata["inverted_monochrome1"]
    np.testing.assert_allclose(volume.array, truth.meta["display_array"], atol=1e-3)
    lo, hi = 0, 4095  # 12 unsigned bits
    np.testing.assert_allclose(volume.array, (0.5 * lo - 100) + (0.5 * hi - 100) - truth.array,
                               atol=1e-3)
    stored = dicomml.load_series(tmp_path, dtype=None)
    np.testing.assert_array_equal(stored.array, lo + hi - truth.stored)


@pytest.mark.parametrize("signed,bits_stored,bits_allocated", [(True, 12, 16), (False, 12, 16),
                                                               (True, 16, 16), (False, 8, 8)])
def test_stored_integers_and_rescale(tmp_path, signed, bits_stored, bits_allocated):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 8, 8), signed=signed,
                               bits_stored=bits_stored, bits_allocated=bits_allocated,
                               slope=1.5, intercept=-3.0, seed=9)
    stored = dicomml.load_series(tmp_path, dtype=None)
    assert stored.array.dtype == truth.stored.dtype.newbyteorder("=")
    np.testing.assert_array_equal(stored.array, truth.stored)
    assert set(stored.metadata["rescale"]["slope"]) == {1.5}
    _assert_matches(dicomml.load_series(tmp_path), truth)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2",
                                    "1.2.840.10008.1.2.1.99"])
def test_other_uncompressed_transfer_syntaxes(tmp_path, syntax):
    if syntax not in synth.supported_transfer_syntaxes():
        pytest.skip(f"synth cannot write {syntax}")
    truth = synth.write_series(tmp_path, shape=(4, 8, 8), transfer_syntax=syntax, seed=10,
                               signed=True)
    _assert_matches(dicomml.load_series(tmp_path), truth)


@pytest.mark.parametrize("fourth_dim", ["temporal", "echo"])
def test_4d_series(tmp_path, fourth_dim):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 5, 8, 8), fourth_dim=fourth_dim,
                               orientation="coronal", seed=11)
    # the catalog splits single-frame files by echo / temporal position into 3D sub-series
    keys = sorted(dicomml.scan(tmp_path, progress=False).series["series_key"])
    assert len(keys) == 3
    first = dicomml.load_series(tmp_path, keys[0])
    np.testing.assert_allclose(first.array, truth.array[0], rtol=1e-6, atol=1e-3)
    # ... the folder (one SeriesInstanceUID) loads whole, as does the UID: 4D (issue 16 item 1)
    _assert_matches(dicomml.load_series(tmp_path), truth)
    volume = dicomml.load_series(tmp_path, truth.series_uid)
    _assert_matches(volume, truth)
    values = volume.metadata["volumes"]
    assert len(values) == 3
    name = "temporal" if fourth_dim == "temporal" else "echo"
    assert [v[name] for v in values] == sorted(v[name] for v in values)


def test_missing_position_names_the_file(tmp_path):
    truth = synth.write_series(tmp_path, shape=(3, 8, 8), seed=12)
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in truth.paths:
        shutil.copy(path, broken / path.name)
    synth.write_series(tmp_path / "x", shape=(1, 8, 8), seed=12, ImagePositionPatient=None,
                       series_uid=truth.series_uid, study_uid=truth.study_uid,
                       patient_id=truth.patient_id)
    bad = next((tmp_path / "x").iterdir())
    shutil.copy(bad, broken / "zz_no_position.dcm")
    with pytest.raises(MissingTagError) as info:
        dicomml.load_series(broken)
    assert info.value.tag == "ImagePositionPatient" and "zz_no_position" in str(info.value)


def test_policy_argument_is_validated(tmp_path):
    synth.write_series(tmp_path, shape=(3, 8, 8), seed=13)
    with pytest.raises(ValueError):
        dicomml.load_series(tmp_path, policy="loud")
    with pytest.raises(ValueError):
        dicomml.load_series(tmp_path, policy={"tilted": "warn"})


def test_threads_give_the_same_result(tmp_path):
    truth = synth.write_series(tmp_path, shape=(12, 16, 16), seed=14)
    one = dicomml.load_series(tmp_path, threads=1)
    four = dicomml.load_series(tmp_path, threads=4)
    np.testing.assert_array_equal(one.array, four.array)
    _assert_matches(four, truth)


@pytest.mark.parametrize("shape,orientation", [((6, 8, 10), "oblique"), ((3, 4, 8, 8), "axial")])
def test_enhanced_multiframe(tmp_path, shape, orientation):
    pytest.importorskip("dicomml.geometry.enhanced")
    truth = synth.write_series(tmp_path, modality="MR", shape=shape, multiframe=True,
                               orientation=orientation, patient_position="FFS", slope=2.0,
                               intercept=-5.0, seed=15)
    assert len(truth.paths) == 1
    volume = dicomml.load_series(tmp_path)
    _assert_matches(volume, truth)
    if len(shape) == 4:
        assert [v["temporal"] for v in volume.metadata["volumes"]] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70",
                                    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"])
def test_compressed_lossless_series(tmp_path, syntax):
    if syntax not in synth.supported_transfer_syntaxes():
        pytest.skip(f"synth cannot write {syntax}")
    truth = synth.write_series(tmp_path, modality="CT", shape=(4, 16, 16), transfer_syntax=syntax,
                               orientation="coronal", seed=16)
    volume = dicomml.load_series(tmp_path)
    _assert_matches(volume, truth)
    np.testing.assert_array_equal(dicomml.load_series(tmp_path, dtype=None).array, truth.stored)


def test_a_single_slice_uses_slice_thickness_for_the_third_axis(tmp_path):
    truth = synth.write_series(tmp_path, shape=(1, 8, 8), spacing=(3.0, 0.5, 0.5),
                               orientation="sagittal", seed=17, SliceThickness=3.0)
    volume = dicomml.load_series(tmp_path)
    assert volume.shape == (1, 8, 8)
    np.testing.assert_allclose(volume.spacing, [3.0, 0.5, 0.5])
    np.testing.assert_allclose(volume.affine[:3, 1:], truth.affine[:3, 1:], atol=1e-9)
    normal = np.cross(truth.orientation[:3], truth.orientation[3:])
    np.testing.assert_allclose(volume.affine[:3, 0], 3.0 * normal, atol=1e-6)


def test_four_samples_per_pixel_are_refused_naming_the_file_and_tag(tmp_path):
    """Colour volumes hold 3 samples (tests/test_colour.py); 4 (the retired ARGB / CMYK) are
    refused with a typed error."""
    import pydicom
    from pydicom.data import get_testdata_file

    from dicomml.errors import InvalidTagError

    ds = pydicom.dcmread(get_testdata_file("SC_rgb_small_odd.dcm"))
    ds.SamplesPerPixel = 4
    target = tmp_path / "argb.dcm"
    ds.save_as(target)
    with pytest.raises(InvalidTagError) as caught:
        dicomml.load_series(tmp_path)
    assert caught.value.tag == "SamplesPerPixel" and str(target) in str(caught.value)
