"""The scan's table building: rows typed batch by batch as workers return them
(:class:`~dicomml.catalog.table.InstanceColumns`, :func:`~dicomml.catalog.parallel.
parse_to_frames`) give the same catalog as typing every row at once, in any arrival order, and
the series split's position rounding treats missing, non-finite and signed-zero positions
alike."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pandas as pd
import pytest
from pydicom.data import get_testdata_files

from dicomml.catalog.parallel import parse_files, parse_to_frames
from dicomml.catalog.split import assign_series, position_grid, summarize_series
from dicomml.catalog.table import InstanceColumns, instances_frame
from dicomml.catalog.walk import walk_files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i, path in enumerate(get_testdata_files("*.dcm")[:60]):
        shutil.copy(path, root / f"p{i:03d}.dcm")
    return root


def _items(root):
    return sorted(walk_files(str(root)))


def test_batches_in_any_order_equal_one_frame(corpus):
    results = [r for r in parse_files(_items(corpus), workers=1, progress=False)
               if r[4] is None]
    records = sorted([(p, s, m, row) for p, s, m, row, _ in results])
    whole = instances_frame(records)
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    table = InstanceColumns()
    for start in range(0, len(shuffled), 7):
        table.add(shuffled[start:start + 7])
    pd.testing.assert_frame_equal(table.frame(), whole)


@pytest.mark.parametrize("workers", [1, 2])
def test_parse_to_frames_equals_the_row_path(corpus, workers):
    items = _items(corpus) * 1
    results = sorted(parse_files(items, workers=1, progress=False))
    expected = instances_frame([(p, s, m, row) for p, s, m, row, err in results
                                if err is None])
    # enough files for a real pool (the in-process path is taken below 256 files)
    instances, errors = parse_to_frames(items * (5 if workers > 1 else 1), workers=workers,
                                        progress=False)
    instances = instances.drop_duplicates("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(instances, expected)
    assert sorted(set(errors.path)) == sorted(p for p, *_, err in results if err is not None)


def test_position_grid_rounding_and_missing_values():
    grid = position_grid([[0.004, -0.004, 1.006], None, [1.0, 2.0], [np.inf, 0.0, 0.0],
                          [-0.0, 0.0, 0.0]])
    assert grid[0].tolist() == [0.0, 0.0, 1.01]
    assert str(grid[0, 1]) == "0.0"  # not -0.0: one position either side of zero
    assert np.isnan(grid[1:4]).all()
    assert grid[4].tolist() == [0.0, 0.0, 0.0] and str(grid[4, 0]) == "0.0"


def test_slices_counted_once_across_signed_zero_and_rounding():
    frame = pd.DataFrame({c: [None] * 4 for c in instances_frame([]).columns})
    frame["SeriesInstanceUID"] = "1.2"
    frame["InstanceNumber"] = [1.0, 2.0, 3.0, 4.0]
    frame["path"] = ["/a", "/b", "/c", "/d"]
    frame["ImagePositionPatient"] = [[-0.001, 0.0, 0.0], [0.001, 0.0, 0.0], [0.0, 0.0, 5.0],
                                     None]
    frame["NumberOfFrames"] = frame["NumberOfImagesInMosaic"] = np.nan
    frame["object_kind"] = "image"
    series = summarize_series(assign_series(frame))
    assert series.n_slices.tolist() == [2]  # (0,0,0) twice, (0,0,5) once; None not counted
