"""Worker safety: small pickles, real DataLoader worker processes with fork and spawn,
persistent workers, and DistributedSampler sharding over 2 simulated ranks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from test_dataset import make_corpus
from torch.utils.data import DataLoader, DistributedSampler

import dicomml
from dicomml.dataset import DicomSeriesDataset, DicomSliceDataset, collate

SHAPES = [(8, 64, 64)] * 4  # one volume: 128 KiB as float32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    truths = make_corpus(root, shapes=SHAPES)
    return root, truths, dicomml.scan(root, progress=False)


def _keys(loader) -> list[str]:
    return [key for batch in loader for key in batch["series_key"]]


def test_pickle_is_small_and_holds_no_pixels(corpus, tmp_path):
    _, _, catalog = corpus
    ds = DicomSeriesDataset(catalog, cache_dir=tmp_path / "c")
    before = len(pickle.dumps(ds))
    for i in range(len(ds)):
        ds[i]
    after = len(pickle.dumps(ds))
    volume_bytes = 8 * 64 * 64 * 4
    assert after == before and after < volume_bytes
    slices = DicomSliceDataset(catalog)
    size = len(pickle.dumps(slices))
    slices[0]  # keeps the decoded volume in this process only
    assert len(pickle.dumps(slices)) == size < volume_bytes
    copy = pickle.loads(pickle.dumps(ds))
    assert torch.equal(copy[0]["image"], ds[0]["image"])
    # the catalog travels packed (categoricals) and comes back with its original types
    pd.testing.assert_frame_equal(copy.catalog.instances, ds.catalog.instances)
    pd.testing.assert_frame_equal(copy.catalog.series, ds.catalog.series)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_with_fork_and_spawn_see_every_series_once(corpus, tmp_path, start_method):
    _, _, catalog = corpus
    ds = DicomSeriesDataset(catalog, cache_dir=tmp_path / "cache")
    reference = {ds.series_keys[i]: ds[i]["image"] for i in range(len(ds))}
    loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate,
                        multiprocessing_context=start_method,
                        persistent_workers=start_method == "spawn")
    epochs = 2 if start_method == "spawn" else 1
    for _ in range(epochs):  # persistent workers serve a second epoch too
        seen = {}
        for batch in loader:
            seen[batch["series_key"][0]] = batch["image"][0]
        assert sorted(seen) == sorted(reference)
        for key, image in seen.items():
            assert torch.equal(image, reference[key])


def test_workers_fill_the_cache_concurrently(corpus, tmp_path):
    _, _, catalog = corpus
    ds = DicomSeriesDataset(catalog, cache_dir=tmp_path / "cache")
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    assert sorted(_keys(loader)) == sorted(ds.series_keys)
    assert len(ds.cache.keys()) == len(ds)
    assert all(ds.source.cache_key(i) in ds.cache for i in range(len(ds)))


@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_two_ranks_are_disjoint_and_complete(corpus, shuffle):
    _, _, catalog = corpus
    ds = DicomSeriesDataset(catalog)
    shards = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=shuffle, seed=3)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=1,
                            collate_fn=collate, multiprocessing_context="fork")
        shards.append(_keys(loader))
    assert len(shards[0]) == len(shards[1]) == len(ds) // 2
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(ds.series_keys)


def test_slice_dataset_with_workers(corpus, tmp_path):
    _, truths, catalog = corpus
    ds = DicomSliceDataset(catalog, slab=2, stride=2, cache_dir=tmp_path / "c")
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    images = torch.cat([b["image"] for b in loader])
    assert images.shape == (len(ds), 2, 64, 64)
    expected = torch.stack([ds[i]["image"] for i in range(len(ds))])
    assert torch.equal(images, expected)
    assert np.isfinite(images.numpy()).all()
