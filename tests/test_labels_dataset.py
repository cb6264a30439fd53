"""DicomSeriesDataset(segmentation=...): voxel labels from SEG / RTSTRUCT through the cache,
spatial transforms and DataLoader workers; on_error applies to label failures."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch
from test_labels_rtstruct import _hand_struct, _rectangle
from test_labels_seg import _masks_in_file_order, _write_seg

import dicomml
from dicomml import transforms as T

pytest.importorskip("highdicom")


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "data"
    a = dicomml.synth.write_series(root / "a", shape=(4, 10, 10), seed=1)
    b = dicomml.synth.write_series(root / "b", shape=(5, 8, 8), seed=2)
    c = dicomml.synth.write_series(root / "c", shape=(3, 8, 8), seed=3)  # no label object
    masks = np.zeros((4, 10, 10, 1), bool)
    masks[1:3, 2:6, 3:7, 0] = True
    _write_seg(root / "a", [pydicom.dcmread(p) for p in a.paths], _masks_in_file_order(a, masks))
    _hand_struct(b, {"box": [_rectangle(b, 2, 1, 4, 2, 6)]}, root / "b" / "rs.dcm")
    expected = {a.series_uid: masks[..., 0].astype(np.int64),
                b.series_uid: np.zeros((5, 8, 8), np.int64)}
    expected[b.series_uid][2, 1:5, 2:7] = 1
    return root, expected, c.series_uid


def test_segmentation_from_the_catalog_through_workers_and_cache(corpus, tmp_path):
    root, expected, unlabelled = corpus
    ds = dicomml.DicomSeriesDataset(root, segmentation="catalog", on_error="skip",
                                    cache_dir=tmp_path / "cache",
                                    transform=T.RandomFlip(axes=(2,), p=1.0))
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2,
                                         collate_fn=dicomml.collate)
    seen = {}
    for _ in range(2):  # second epoch from the cache
        for batch in loader:
            if "image" not in batch:
                assert batch["failed"][0]["error_type"] == "LabelGeometryError"
                continue
            uid = batch["SeriesInstanceUID"][0]
            label = batch["label"][0]
            assert label.dtype == torch.int64 and label.shape == batch["image"][0].shape
            seen[uid] = label[0].numpy()
    for uid, truth in expected.items():
        np.testing.assert_array_equal(seen[uid], truth[..., ::-1])  # flipped with the image
    assert unlabelled not in seen
    assert [f["series_key"] for f in ds.failures()] == [unlabelled]


def test_segmentation_resized_with_nearest_and_a_label_file_table(corpus, tmp_path):
    root, expected, _ = corpus
    cat = dicomml.scan(root, progress=False)
    rows = cat.labels
    table = {uid: rows[rows.referenced_series.map(lambda r, u=uid: u in r)].path.iloc[0]
             for uid in expected}
    by_table = dicomml.DicomSeriesDataset(
        cat, segmentation=table, filter={"SeriesInstanceUID": list(expected)},
        transform=T.ResizeTo((8, 20, 20)))
    by_catalog = dicomml.DicomSeriesDataset(  # the filter drops the label objects' rows
        cat, segmentation="catalog", filter={"SeriesInstanceUID": list(expected)},
        transform=T.ResizeTo((8, 20, 20)))
    assert len(by_table) == len(by_catalog) == 2
    for ds, i in [(by_table, 0), (by_table, 1), (by_catalog, 0), (by_catalog, 1)]:
        sample = ds[i]
        label = sample["label"]
        assert label.shape == (1, 8, 20, 20) and label.dtype == torch.int64
        assert set(torch.unique(label).tolist()) == {0, 1}  # never interpolated
        assert label.sum() > 0


def test_slice_dataset_serves_the_matching_label_slabs(corpus):
    root, expected, unlabelled = corpus
    ds = dicomml.DicomSliceDataset(root, slab=2, segmentation="catalog", on_error="skip")
    seen = 0
    for i in range(len(ds)):
        sample = ds[i]
        if not isinstance(sample, dict):
            continue
        key, start = ds.position(i)
        truth = expected[sample["SeriesInstanceUID"]]
        assert sample["label"].shape == (2, *truth.shape[1:])
        np.testing.assert_array_equal(sample["label"].numpy(), truth[start:start + 2])
        seen += 1
    assert seen == (4 - 1) + (5 - 1)


def test_collate_pads_labels_with_the_ignore_value(corpus):
    root, expected, _ = corpus
    ds = dicomml.DicomSeriesDataset(root, segmentation="catalog", on_error="skip")
    samples = [s for s in (ds[i] for i in range(len(ds))) if isinstance(s, dict)]
    batch = dicomml.collate(samples)
    assert batch["label"].shape == (2, 1, 5, 10, 10)
    assert (batch["label"][~batch["label_mask"]] == -1).all() if "label_mask" in batch else \
        (batch["label"][~batch["mask"]] == -1).all()
    assert (batch["label"] >= 0).sum() == sum(int(np.prod(t.shape)) for t in expected.values())
