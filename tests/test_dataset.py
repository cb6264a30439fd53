"""DicomSeriesDataset: samples vs the synthetic writer's ground truth, labels, filters, collate,
and the error policy on a corrupted series. Real files, real decoders, no mocks."""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import pandas as pd
import pytest
import torch

import dicomml
from dicomml import synth
from dicomml.dataset import DicomSeriesDataset, FailedSample, collate
from dicomml.errors import DicommlError, TruncatedFileError

SHAPES = [(6, 24, 20), (5, 16, 16), (7, 20, 24), (4, 16, 16)]


def make_corpus(root, shapes=SHAPES, **options) -> list:
    """One synthetic CT series per shape, each a patient of its own ('P000', 'P001', ...)."""
    truths = []
    for i, shape in enumerate(shapes):
        folder = os.path.join(root, f"patient{i}", "series")
        truths.append(synth.write_series(folder, modality="CT", shape=shape, seed=i,
                                         patient_id=f"P{i:03d}", series_number=i + 1,
                                         **options))
    return truths


def by_series_uid(truths) -> dict:
    return {t.series_uid: t for t in truths}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    truths = make_corpus(root)
    return root, truths, dicomml.scan(root, progress=False)


def test_samples_match_the_writers_ground_truth(corpus):
    root, truths, catalog = corpus
    ds = DicomSeriesDataset(catalog)
    assert len(ds) == len(truths)
    expected = by_series_uid(truths)
    for i in range(len(ds)):
        sample = ds[i]
        truth = expected[sample["SeriesInstanceUID"]]
        assert sample["image"].dtype == torch.float32
        assert sample["image"].shape == (1, *truth.shape)
        np.testing.assert_allclose(sample["image"][0].numpy(), truth.array, rtol=0, atol=1e-3)
        assert sample["affine"].dtype == torch.float64
        np.testing.assert_allclose(sample["affine"].numpy(), truth.affine, atol=1e-6)
        np.testing.assert_allclose(sample["spacing"].numpy(), truth.spacing, atol=1e-6)
        assert sample["PatientID"] == truth.patient_id
        assert sample["StudyInstanceUID"] == truth.study_uid
        assert sample["metadata"]["Modality"] == "CT"
        assert "label" not in sample


def test_source_may_be_a_folder_or_a_saved_catalog(corpus, tmp_path):
    root, truths, catalog = corpus
    saved = tmp_path / "cat.parquet"
    catalog.save(saved)
    from_file = DicomSeriesDataset(saved)
    from_folder = DicomSeriesDataset(root)
    assert sorted(from_file.series_keys) == sorted(from_folder.series_keys)
    assert sorted(from_file.series_keys) == sorted(catalog.series["series_key"])
    with pytest.raises(DicommlError):
        DicomSeriesDataset(tmp_path / "missing")


def test_filter_by_dict_keys_or_callable(corpus):
    _, truths, catalog = corpus
    small = DicomSeriesDataset(catalog, filter={"PatientID": ["P001", "P003"]})
    assert sorted(small[i]["PatientID"] for i in range(len(small))) == ["P001", "P003"]
    keys = list(catalog.series["series_key"][:2])
    assert DicomSeriesDataset(catalog, filter=keys).series_keys == keys
    wide = DicomSeriesDataset(catalog, filter=lambda s: s["Columns"] > 20)
    assert len(wide) == sum(t.shape[2] > 20 for t in truths)


def test_labels_from_csv_join_on_patient_id_and_report_dropped(corpus, tmp_path):
    _, truths, catalog = corpus
    csv = tmp_path / "labels.csv"
    # P002 has no label; P999 matches no series; leading zeros must survive the CSV read
    pd.DataFrame({"PatientID": ["P000", "P001", "P003", "P999"],
                  "label": [1, 0, 1, 5]}).to_csv(csv, index=False)
    ds = DicomSeriesDataset(catalog, labels=csv)
    report = ds.label_report
    assert (report.on, report.n_series, report.n_labeled) == ("PatientID", 4, 3)
    assert (report.n_unlabeled, report.n_label_rows_unmatched) == (1, 1)
    assert "1 without a label (dropped)" in str(report)
    got = {ds[i]["PatientID"]: ds[i]["label"] for i in range(len(ds))}
    assert set(got) == {"P000", "P001", "P003"}
    assert got["P000"].dtype == torch.int64 and int(got["P000"]) == 1 and int(got["P001"]) == 0

    kept = DicomSeriesDataset(catalog, labels=csv, keep_unlabeled=True)
    labels = {kept[i]["PatientID"]: kept[i]["label"] for i in range(len(kept))}
    assert len(kept) == 4 and labels["P002"] is None


def test_labels_from_dataframe_on_series_uid_and_multi_column(corpus):
    _, truths, catalog = corpus
    table = pd.DataFrame({"SeriesInstanceUID": [t.series_uid for t in truths],
                          "score": [0.5 * i for i in range(len(truths))],
                          "grade": list(range(len(truths)))})
    ds = DicomSeriesDataset(catalog, labels=table, label_column="score")
    assert ds.label_report.on == "SeriesInstanceUID"
    expected = dict(zip(table.SeriesInstanceUID, table.score))
    for i in range(len(ds)):
        sample = ds[i]
        assert float(sample["label"]) == pytest.approx(expected[sample["SeriesInstanceUID"]])
    multi = DicomSeriesDataset(catalog, labels=table, label_column=["score", "grade"])
    assert multi[0]["label"].shape == (2,)


def test_conflicting_labels_are_an_error(corpus):
    _, _, catalog = corpus
    table = pd.DataFrame({"PatientID": ["P000", "P000"], "label": [0, 1]})
    with pytest.raises(ValueError, match="conflicting labels"):
        DicomSeriesDataset(catalog, labels=table)
    with pytest.raises(ValueError, match="not in the labels table"):
        DicomSeriesDataset(catalog, labels=table, on="AccessionNumber")


def test_collate_pads_to_batch_maximum_with_mask(corpus):
    _, truths, catalog = corpus
    ds = DicomSeriesDataset(catalog)
    samples = [ds[i] for i in range(len(ds))]
    batch = collate(samples)
    shapes = [tuple(s["image"].shape) for s in samples]
    biggest = tuple(max(dim) for dim in zip(*shapes))
    assert batch["image"].shape == (len(samples), *biggest)
    assert batch["mask"].shape == (len(samples), 1, *biggest[1:])
    for i, s in enumerate(samples):
        region = (i, slice(None), *(slice(0, n) for n in s["image"].shape[1:]))
        assert torch.equal(batch["image"][region], s["image"])
        assert int(batch["mask"][i].sum()) == int(np.prod(s["image"].shape[1:]))
        assert float(batch["image"][i].abs().sum()) == pytest.approx(
            float(s["image"].abs().sum()), rel=1e-5)
    assert batch["affine"].shape == (len(samples), 4, 4)
    assert batch["series_key"] == [s["series_key"] for s in samples]
    assert isinstance(batch["metadata"], list)

    as_lists = functools.partial(collate, pad=False)(samples)
    assert isinstance(as_lists["image"], list) and "mask" not in as_lists
    single = collate([samples[0]])  # a batch of one: a view, no padding, no mask
    assert single["image"].shape == (1, *samples[0]["image"].shape) and "mask" not in single


def test_collate_stacks_equal_shapes_without_mask():
    a = {"image": torch.ones(1, 2, 3, 4), "label": 1, "flag": True, "name": "a"}
    b = {"image": torch.zeros(1, 2, 3, 4), "label": 2, "flag": False, "name": "b"}
    batch = collate([a, b])
    assert batch["image"].shape == (2, 1, 2, 3, 4) and "mask" not in batch
    assert batch["label"].tolist() == [1, 2] and batch["flag"].tolist() == [True, False]
    assert batch["name"] == ["a", "b"]
    padded = collate([{"label": torch.zeros(1, 2, 2, 2, dtype=torch.int64)},
                      {"label": torch.ones(1, 3, 2, 2, dtype=torch.int64)}])
    assert padded["label"][0, 0, 2].eq(-1).all()  # label padding is -1 (ignore index)


@pytest.fixture(scope="module")
def t1_and_dti(tmp_path_factory):
    """A 3D MR series (C = 1) and a 4D one of 13 volumes (C = 13), other grids."""
    root = tmp_path_factory.mktemp("t1_dti")
    synth.write_series(root / "t1", modality="MR", shape=(4, 12, 12), seed=1, series_number=1)
    synth.write_series(root / "dti", modality="MR", shape=(13, 3, 10, 12), seed=2,
                       series_number=2, multiframe=True)  # one file: one 4D series
    ds = DicomSeriesDataset(dicomml.scan(root, progress=False))
    return sorted((ds[i] for i in range(len(ds))), key=lambda s: s["image"].shape[0])


def test_collate_refuses_to_invent_channels(t1_and_dti):
    t1, dti = t1_and_dti
    assert t1["image"].shape == (1, 4, 12, 12) and dti["image"].shape == (13, 3, 10, 12)
    with pytest.raises(ValueError, match="different channel counts") as info:
        collate([t1, dti])
    for sample in (t1, dti):  # names each sample and its shape
        assert sample["series_key"] in str(info.value)
        assert str(tuple(sample["image"].shape)) in str(info.value)
    loader = torch.utils.data.DataLoader([t1, dti], batch_size=2, num_workers=2,
                                         collate_fn=collate, multiprocessing_context="fork")
    with pytest.raises(ValueError, match="different channel counts"):
        next(iter(loader))
    as_lists = collate([t1, dti], pad=False)
    assert [tuple(x.shape) for x in as_lists["image"]] == [(1, 4, 12, 12), (13, 3, 10, 12)]


def test_collate_pad_channels_records_every_padded_axis(t1_and_dti):
    t1, dti = t1_and_dti
    batch = collate([t1, dti], pad_channels=True)
    assert batch["image"].shape == batch["mask"].shape == (2, 13, 4, 12, 12)
    mask = batch["mask"]
    assert mask[0, :1, :4, :12, :12].all() and not mask[0, 1:].any()  # 12 invented channels
    assert mask[1, :, :3, :10, :].all() and not mask[1, :, 3:].any() and not mask[1, :, :, 10:].any()
    for i, s in enumerate((t1, dti)):
        assert int(mask[i].sum()) == s["image"].numel()
        assert torch.equal(batch["image"][i][mask[i]], s["image"].reshape(-1))
        assert not batch["image"][i][~mask[i]].any()


def test_collate_masks_every_padded_key():
    a = {"image": torch.ones(1, 2, 4, 4), "t2": torch.ones(1, 2, 4, 4), "bvals": torch.ones(3)}
    b = {"image": torch.ones(1, 3, 4, 5), "t2": torch.ones(1, 3, 4, 5), "bvals": torch.ones(5)}
    batch = collate([a, b])
    for key, mask in (("image", "mask"), ("t2", "t2_mask"), ("bvals", "bvals_mask")):
        assert batch[mask].shape == batch[key].shape and batch[mask].dtype == torch.bool
        assert [int(m.sum()) for m in batch[mask]] == [a[key].numel(), b[key].numel()]
    with pytest.raises(ValueError, match="'mask' key"):
        collate([{**a, "mask": 1}, {**b, "mask": 2}])


def test_image_tensor_keeps_a_read_only_array_read_only():
    from dicomml.dataset._core import image_tensor

    frozen = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    frozen.setflags(write=False)
    tensor = image_tensor(frozen)
    tensor += 1  # a transform working in place
    assert not frozen.flags.writeable and frozen[0, 0, 0] == 0
    writable = np.zeros((2, 3, 4), np.float32)
    assert image_tensor(writable).data_ptr() == writable.ctypes.data  # shared, no copy


def test_samples_never_write_through_a_volume(corpus):
    from dicomml.dataset._core import _Lender, volume_sample

    root, truths, catalog = corpus
    key = catalog.series["series_key"].iloc[0]
    volume = dicomml.load_series(catalog, key)
    before = volume.array.copy()
    sample = volume_sample(volume, {}, {})
    sample["image"].mul_(0)
    assert not volume.array.flags.writeable and np.array_equal(volume.array, before)
    ds = DicomSeriesDataset(catalog)  # decodes into a tensor the dataset owns, then hands it out
    index = ds.series_keys.index(key)
    ds[index]["image"].mul_(0)  # writable, and nothing else sees it
    assert torch.equal(ds[index]["image"][0], torch.from_numpy(before))
    assert _Lender._lent == {}  # nothing left lent after a load


def test_series_source_public_surface(corpus):
    _, truths, catalog = corpus
    ds = DicomSeriesDataset(catalog, labels={t.patient_id: i for i, t in enumerate(truths)},
                            on="PatientID")
    source = ds.source
    assert source.has_labels and not DicomSeriesDataset(catalog).source.has_labels
    assert [source.series_key(i) for i in range(len(source))] == ds.series_keys
    shape_of = {t.series_uid: t.shape for t in truths}
    assert source.slice_counts == [shape_of[ds[i]["SeriesInstanceUID"]][0] for i in range(len(ds))]
    assert source.cached_transforms == () and source.random_transforms == ()


def _corrupt_pixel_data(path) -> None:
    """Cut the file in the middle of its pixel data (what a failed copy leaves behind)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 200)


@pytest.fixture()
def damaged(tmp_path):
    truths = make_corpus(tmp_path / "data", shapes=[(4, 16, 16)] * 4)
    catalog = dicomml.scan(tmp_path / "data", progress=False)
    bad = truths[1]
    _corrupt_pixel_data(bad.paths[2])
    keys = list(catalog.series["series_key"])
    bad_index = next(i for i, k in enumerate(keys)
                     if catalog[k]["SeriesInstanceUID"] == bad.series_uid)
    return catalog, bad, bad_index


def test_on_error_raise_names_the_damaged_file(damaged):
    catalog, bad, bad_index = damaged
    ds = DicomSeriesDataset(catalog)
    with pytest.raises(TruncatedFileError) as info:
        ds[bad_index]
    assert os.path.samefile(info.value.path, bad.paths[2])


def test_on_error_skip_logs_and_returns_a_marker_not_another_series(damaged, caplog):
    catalog, bad, bad_index = damaged
    ds = DicomSeriesDataset(catalog, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="dicomml.dataset"):
        marker = ds[bad_index]
    assert isinstance(marker, FailedSample)  # not the next series: an epoch never repeats one
    record = marker.record
    assert record["series_index"] == bad_index and record["series_key"] == ds.series_keys[bad_index]
    assert os.path.samefile(record["file"], bad.paths[2])
    assert record["error_type"] == "TruncatedFileError" and record["message"]
    assert bad_index in ds.failed and "TruncatedFileError" in ds.failed[bad_index]
    assert [r["series_index"] for r in ds.failures()] == [bad_index]
    assert any(ds.series_keys[bad_index] in r.getMessage() for r in caplog.records)
    assert ds[bad_index].record == record  # known failure: the same marker, no new attempt
    seen = [ds[i] for i in range(len(ds))]
    uids = [s["SeriesInstanceUID"] for s in seen if not isinstance(s, FailedSample)]
    assert bad.series_uid not in uids and len(uids) == len(set(uids)) == len(ds) - 1
    batch = collate(seen)  # the marker is dropped and listed
    assert batch["image"].shape[0] == len(ds) - 1 and batch["failed"] == [record]


def test_on_error_skip_through_dataloader_workers(damaged):
    catalog, bad, bad_index = damaged
    ds = DicomSeriesDataset(catalog, on_error="skip")
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate,
                                         multiprocessing_context="fork")
    batches = list(loader)
    uids = [uid for batch in batches for uid in batch["SeriesInstanceUID"]]
    assert sorted(uids) == sorted(t for t in ds.catalog.series["SeriesInstanceUID"]
                                  if t != bad.series_uid)
    assert [r["series_index"] for b in batches for r in b.get("failed", [])] == [bad_index]
    assert list(ds.failed) == [bad_index]  # recorded in a worker, visible here


def test_seeded_random_transforms_are_reproducible(corpus):
    _, _, catalog = corpus
    from dicomml.transforms import RandomNoise

    ds = DicomSeriesDataset(catalog, transform=RandomNoise(std=(5.0, 10.0), p=1.0), seed=7)
    a, b = ds[0]["image"], ds[0]["image"]
    assert torch.equal(a, b)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], a)
    plain = DicomSeriesDataset(catalog)
    assert not torch.equal(plain[0]["image"], a)
