"""Catalog.labels / labels_for: SEG and RTSTRUCT objects indexed apart from image series."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from test_labels_rtstruct import _hand_struct, _rectangle
from test_labels_seg import _masks_in_file_order, _write_seg

import dicomml

pytest.importorskip("highdicom")


@pytest.fixture()
def folder_with_labels(tmp_path):
    image = tmp_path / "data" / "ct"
    truth = dicomml.synth.write_series(image, shape=(4, 10, 10))
    other = dicomml.synth.write_series(tmp_path / "data" / "mr", modality="MR", shape=(3, 8, 8),
                                       seed=7)
    datasets = [pydicom.dcmread(p) for p in truth.paths]
    masks = np.zeros((4, 10, 10, 2), bool)
    masks[1:3, 2:5, 2:5, 0] = True
    masks[2, 6:8, 6:8, 1] = True
    seg = _write_seg(tmp_path / "data", datasets, _masks_in_file_order(truth, masks))
    rs = _hand_struct(truth, {"GTV": [_rectangle(truth, 1, 2, 5, 2, 5)], "Cord": []},
                      tmp_path / "data" / "rs.dcm")
    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("rtstruct.dcm"), tmp_path / "data" / "shipped_rs.dcm")
    return tmp_path / "data", truth, other, seg, rs


def test_labels_table_and_labels_for(folder_with_labels):
    root, truth, other, seg, rs = folder_with_labels
    cat = dicomml.scan(root, progress=False)
    assert sorted(cat.series.SeriesInstanceUID) == sorted([truth.series_uid, other.series_uid])
    labels = cat.labels.set_index("path")
    assert len(labels) == 3
    seg_row, rs_row = labels.loc[str(seg)], labels.loc[str(rs)]
    assert seg_row.object_kind == "segmentation" and seg_row.segmentation_type == "BINARY"
    assert seg_row.referenced_series == [truth.series_uid]
    assert seg_row.segment_numbers == [1, 2] and seg_row.segment_names == ["liver", "tumour"]
    assert seg_row.algorithm_types == ["MANUAL", "MANUAL"]
    assert seg_row.FrameOfReferenceUID == truth.meta["frame_of_reference_uid"]
    assert rs_row.object_kind == "rt structure set"
    assert rs_row.segment_names == ["GTV", "Cord"] and rs_row.referenced_series == [
        truth.series_uid]
    shipped = labels.loc[str(root / "shipped_rs.dcm")]
    assert shipped.segment_names == ["patient", "Isocenter 1", "Isocenter 2"]
    assert shipped.referenced_series == ["1.2.826.0.1.3680043.8.498.2010020400001.2.1.1"]
    key = cat.series[cat.series.SeriesInstanceUID == truth.series_uid].series_key.iloc[0]
    assert sorted(cat.labels_for(key).path) == sorted([str(seg), str(rs)])
    mr_key = cat.series[cat.series.SeriesInstanceUID == other.series_uid].series_key.iloc[0]
    assert cat.labels_for(mr_key).empty


def test_labels_survive_save_and_load_and_a_broken_object(folder_with_labels, tmp_path):
    root, truth, _, seg, _ = folder_with_labels
    raw = bytearray(seg.read_bytes())
    (root / "broken_seg.dcm").write_bytes(bytes(raw[:2000]))  # truncated: scan lists it
    cat = dicomml.scan(root, progress=False)
    cat.save(tmp_path / "cat.parquet")
    again = dicomml.Catalog.load(tmp_path / "cat.parquet")
    assert sorted(again.labels.path) == sorted(cat.labels.path)
    assert again.labels.error.isna().all() or "broken" in " ".join(
        again.labels.path[again.labels.error.notna()])
    vol = dicomml.load_labels(seg, catalog=again, mode="channels")
    assert vol.shape == (2, 4, 10, 10)
