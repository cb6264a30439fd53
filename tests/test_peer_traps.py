"""Known traps of peer readers, each shown on a real synthetic series next to our correct result.

The peers' wrong answers are asserted where they are part of the trap (so that a peer fixing its
bug is noticed and this file updated); our answers are checked against the writer's ground truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dicomml
from dicomml import synth
from dicomml.errors import MultipleSeriesError, UnevenSpacingError


def _monai_load(folder) -> np.ndarray:
    """MONAI's PydicomReader volume, as (slices, rows, columns)."""
    load_image = pytest.importorskip("monai.transforms").LoadImage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = load_image(reader="PydicomReader", image_only=True)(str(folder))
    return np.asarray(image).transpose(2, 1, 0)  # MONAI: (column, row, slice)


def test_monai_sorts_by_instance_number_we_sort_by_position(tmp_path):
    truth = synth.write_series(tmp_path / "s", shape=(8, 16, 20), instance_numbers="shuffled",
                               seed=3)
    ours = dicomml.load_series(tmp_path / "s")
    np.testing.assert_array_equal(ours.array, truth.array.astype(np.float32))
    np.testing.assert_allclose(ours.affine, truth.affine, atol=1e-6)

    theirs = _monai_load(tmp_path / "s")
    assert theirs.shape == truth.array.shape
    order = [int(np.argmin([np.abs(plane - t).max() for t in truth.array])) for plane in theirs]
    assert sorted(order) == list(range(8))
    assert order != list(range(8)), "MONAI now sorts by position: update this trap test"


def test_monai_stacks_two_series_we_refuse_and_name_them(tmp_path):
    first = synth.write_series(tmp_path / "mixed", shape=(6, 16, 16), series_number=1, seed=1)
    second = synth.write_series(tmp_path / "mixed", shape=(6, 16, 16), series_number=2, seed=2,
                                patient_id=first.patient_id, study_uid=first.study_uid,
                                origin=(-120.0, -120.0, 40.0))
    with pytest.raises(MultipleSeriesError) as info:
        dicomml.load_series(tmp_path / "mixed")
    assert set(info.value.keys) == {first.series_uid, second.series_uid}

    theirs = _monai_load(tmp_path / "mixed")
    assert theirs.shape[0] == 12, "MONAI no longer stacks mixed series: update this trap test"


def test_simpleitk_averages_uneven_spacing_we_report_or_resample(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    offsets = [0.0, 2.0, 4.0, 6.0, 9.0, 11.0, 13.0, 15.0]  # one 3 mm step among 2 mm steps
    truth = synth.write_series(tmp_path / "u", shape=(8, 16, 16), slice_offsets=offsets, seed=4)

    with pytest.raises(UnevenSpacingError):
        dicomml.load_series(tmp_path / "u")
    resampled = dicomml.load_series(tmp_path / "u", resample=True)
    # a regular grid spanning the true positions, each plane interpolated linearly between the
    # two true planes around it (computed here with np.interp, voxel by voxel)
    normal = resampled.affine[:3, 0] / np.linalg.norm(resampled.affine[:3, 0])
    steps = np.arange(resampled.array.shape[0])
    grid = (resampled.origin + np.outer(steps, resampled.affine[:3, 0])) @ normal
    true_positions = truth.positions @ normal
    assert np.allclose(np.diff(grid), np.diff(grid)[0])
    assert grid[0] == pytest.approx(true_positions.min(), abs=1e-3)
    assert grid[-1] <= true_positions.max() + 1e-3
    flat = truth.array.reshape(len(offsets), -1)
    expected = np.stack([np.interp(grid, true_positions, flat[:, v]) for v in range(flat.shape[1])],
                        axis=1).reshape(resampled.array.shape)
    np.testing.assert_allclose(resampled.array, expected, atol=1e-2)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "u")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = reader.Execute()
    implied = image.GetOrigin()[2] + image.GetSpacing()[2] * np.arange(8)
    true_z = np.sort(truth.positions[:, 2])
    # the trap: one averaged spacing ((15 mm) / 7 steps) puts middle slices 0.43 mm off
    assert image.GetSpacing()[2] == pytest.approx(15.0 / 7.0), "SimpleITK no longer averages"
    assert np.abs(implied - true_z).max() == pytest.approx(3.0 / 7.0, abs=1e-3)


def test_no_echo_is_dropped_from_a_multi_echo_series(tmp_path):
    truth = synth.write_series(tmp_path / "me", shape=(3, 6, 16, 16), fourth_dim="echo", seed=5,
                             modality="MR")
    cat = dicomml.scan(tmp_path / "me", progress=False)
    assert len(cat) == 3  # one sub-series per echo, none dropped
    volume = dicomml.load_series(cat, truth.series_uid)  # the UID gathers every echo: 4D
    assert volume.array.shape == truth.array.shape
    np.testing.assert_allclose(volume.array, truth.array, atol=1e-4)
