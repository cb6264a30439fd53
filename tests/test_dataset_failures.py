"""on_error="skip" through real DataLoader workers: an epoch yields every loadable series (or
slice) exactly once and never a replacement, failed samples are dropped from the batch and
listed in batch["failed"], and the main process sees what the workers recorded (file, error
type, message). Synthetic series written here, one truncated and one with a file deleted
after the scan; real decoders, real worker processes, no mocks."""

from __future__ import annotations

import collections
import gc
import os

import pytest
import torch
from test_dataset import make_corpus
from torch.utils.data import DataLoader

import dicomml
from dicomml.dataset import (
    DicomSeriesDataset,
    DicomSliceDataset,
    FailedSample,
    PatchSampler,
    collate,
)

SHAPES = [(3, 8, 8), (4, 8, 8), (2, 8, 8), (3, 8, 8), (5, 8, 8)]
TRUNCATED, DELETED = 1, 3  # positions in SHAPES of the two series broken after the scan


@pytest.fixture()
def broken(tmp_path):
    """``(catalog, good series keys, {key: (file to blame, error type)})``."""
    truths = make_corpus(tmp_path / "data", shapes=SHAPES)
    catalog = dicomml.scan(tmp_path / "data", progress=False)
    key_of = {catalog[k]["SeriesInstanceUID"]: k for k in catalog.series["series_key"]}
    cut = truths[TRUNCATED].paths[1]
    with open(cut, "r+b") as f:  # what an interrupted copy leaves: the pixel data cut short
        f.truncate(os.path.getsize(cut) - 40)
    gone = truths[DELETED].paths[0]
    os.remove(gone)
    bad = {key_of[truths[TRUNCATED].series_uid]: (cut, "TruncatedFileError"),
           key_of[truths[DELETED].series_uid]: (gone, "FileNotFoundError")}
    good = [key_of[t.series_uid] for t in truths if key_of[t.series_uid] not in bad]
    return catalog, good, bad


def _epoch(ds, **loader_options) -> tuple[list, list]:
    """``(samples' series keys or (key, slice) pairs, failed records)`` over one epoch."""
    seen, failed = [], []
    for batch in DataLoader(ds, num_workers=2, collate_fn=collate, **loader_options):
        failed += batch.get("failed", [])
        if "image" not in batch:
            continue
        keys = batch["series_key"]
        keys = [keys] if isinstance(keys, str) else keys
        slices = batch.get("slice_index")
        if slices is None:
            seen += keys
        else:
            slices = [int(s) for s in torch.as_tensor(slices).reshape(-1)]
            seen += list(zip(keys, slices))
    return seen, failed


def _check_records(records, ds, bad) -> None:
    """One record per broken series naming the file, the error type and a message."""
    assert {r["series_key"] for r in records} == set(bad)
    for r in records:
        file, error_type = bad[r["series_key"]]
        assert r["error_type"] == error_type
        assert os.path.realpath(r["file"]) == os.path.realpath(file)
        assert r["message"] and ds.series_keys[r["series_index"]] == r["series_key"]


@pytest.mark.parametrize("batch_size", [None, 1, 2, 3])
def test_series_epoch_yields_each_good_series_once(broken, batch_size):
    catalog, good, bad = broken
    ds = DicomSeriesDataset(catalog, on_error="skip")
    seen, failed = _epoch(ds, batch_size=batch_size, multiprocessing_context="fork")
    assert sorted(seen) == sorted(good)  # every loadable series once, none repeated
    assert sorted(r["series_key"] for r in failed) == sorted(bad)  # dropped, and said so
    _check_records(failed, ds, bad)
    _check_records(ds.failures(), ds, bad)  # recorded by the workers, read in the main process
    assert set(ds.failed) == {ds.series_keys.index(k) for k in bad}
    assert all(bad[ds.series_keys[i]][1] in text for i, text in ds.failed.items())


def test_batch_of_one_failed_sample_is_only_its_record(broken):
    catalog, good, bad = broken
    ds = DicomSeriesDataset(catalog, on_error="skip")
    loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    batches = list(loader)
    empty = [b for b in batches if "image" not in b]
    assert len(batches) == len(ds) and len(empty) == len(bad)
    for b in empty:  # nothing but the record: no image, no identifiers to train on by mistake
        assert list(b) == ["failed"] and len(b["failed"]) == 1
    _check_records([b["failed"][0] for b in empty], ds, bad)


def test_unbatched_loader_hands_over_the_markers(broken):
    catalog, good, bad = broken
    ds = DicomSeriesDataset(catalog, on_error="skip")
    items = list(DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork"))
    markers = [s for s in items if isinstance(s, FailedSample)]
    assert sorted(s["series_key"] for s in items if not isinstance(s, FailedSample)) == sorted(good)
    _check_records([m.record for m in markers], ds, bad)
    with pytest.raises(KeyError, match="failed to load"):
        markers[0]["image"]


def test_spawned_persistent_workers_two_epochs(broken):
    catalog, good, bad = broken
    ds = DicomSeriesDataset(catalog, on_error="skip")
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate,
                        multiprocessing_context="spawn", persistent_workers=True, shuffle=True)
    for _ in range(2):  # the second epoch does not retry, and still drops the failed ones
        seen, failed = [], []
        for batch in loader:
            seen += batch.get("series_key", [])
            failed += batch.get("failed", [])
        assert sorted(seen) == sorted(good)
        _check_records(failed, ds, bad)
    _check_records(ds.failures(), ds, bad)


@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_slice_epoch_yields_each_good_slice_once(broken, batch_size):
    catalog, good, bad = broken
    ds = DicomSliceDataset(catalog, on_error="skip")
    seen, failed = _epoch(ds, batch_size=batch_size, multiprocessing_context="fork")
    expected = [ds.position(i) for i in range(len(ds)) if ds.position(i)[0] in good]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    counts = collections.Counter(r["series_key"] for r in failed)  # one record per slice
    slices = collections.Counter(ds.position(i)[0] for i in range(len(ds)))
    assert counts == {k: slices[k] for k in bad}
    _check_records(ds.failures(), ds, bad)
    assert all("slice_index" in r for r in failed)


def test_patch_sampler_drops_failed_volumes(broken):
    catalog, good, bad = broken
    sampler = PatchSampler(DicomSeriesDataset(catalog, on_error="skip"), (2, 4, 4),
                           patches_per_volume=2, seed=0)
    seen, failed = _epoch(sampler, batch_size=2, multiprocessing_context="fork")
    assert sorted(seen) == sorted(good * 2)
    assert sorted(r["series_key"] for r in failed) == sorted(bad)


def test_raise_policy_still_raises_through_workers(broken):
    catalog, good, bad = broken
    loader = DataLoader(DicomSeriesDataset(catalog), batch_size=2, num_workers=2,
                        collate_fn=collate, multiprocessing_context="fork")
    with pytest.raises((dicomml.errors.DicommlError, OSError)):
        list(loader)


def test_failure_folder_is_removed_with_the_dataset(broken):
    catalog, good, bad = broken
    ds = DicomSeriesDataset(catalog, on_error="skip")
    _epoch(ds, batch_size=2, multiprocessing_context="fork")
    folder = ds.source._failures.log.folder
    assert os.listdir(folder)  # the workers' records
    del ds
    gc.collect()
    assert not os.path.exists(folder)
    assert DicomSeriesDataset(catalog).source._failures.log is None  # "raise" makes no folder


def test_slice_dataset_stale_catalog_fails_the_whole_series(tmp_path):
    truths = make_corpus(tmp_path / "data", shapes=[(3, 8, 8), (4, 8, 8)])
    catalog = dicomml.scan(tmp_path / "data", progress=False)
    stale = catalog.series["SeriesInstanceUID"] == truths[0].series_uid
    catalog.series.loc[stale, "n_slices"] = 5  # as if two slices were deleted since the scan
    key = catalog.series.loc[stale, "series_key"].iloc[0]
    ds = DicomSliceDataset(catalog, on_error="skip")
    samples = [ds[i] for i in range(len(ds))]
    served = [s["series_key"] for s in samples if not isinstance(s, FailedSample)]
    assert key not in served and len(served) == 4  # none of its slabs, all of the other's
    (record,) = ds.failures()
    assert record["series_key"] == key and record["error_type"] == "InconsistentSeriesError"
    with pytest.raises(dicomml.errors.InconsistentSeriesError):
        strict = DicomSliceDataset(catalog)
        strict[[ds.position(i)[0] for i in range(len(ds))].index(key)]
