"""Nothing outlives its owner in the temp folder: a temporary cache goes with its Dataset (also
after DataLoader workers wrote into it), only the creating process removes it, and the
docstring examples and hypothesis caches of this suite stay out of the system temp folder."""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import tempfile

import pytest
import torch
from torch.utils.data import DataLoader

import dicomml
from dicomml.dataset import DicomSeriesDataset, DicomSliceDataset, VolumeCache
from dicomml.errors import CacheError


@pytest.fixture
def system_temp(tmp_path_factory, monkeypatch):
    """A private, empty system temp folder (``TMPDIR`` and ``tempfile.tempdir``), so that the
    listing is not disturbed by other processes on the machine. Short path: DataLoader workers
    put AF_UNIX sockets (108 bytes at most) under it."""
    folder = tmp_path_factory.mktemp("systmp")
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three small CT series (the data folder lives apart from the temp folder under test)."""
    root = tmp_path_factory.mktemp("data")
    for i in range(3):
        dicomml.synth.write_series(root / f"s{i}", shape=(4, 16, 16), seed=i)
    return dicomml.scan(root, progress=False)


def _ours(folder) -> list[str]:
    """Entries of ``folder`` that dicomml (or tempfile's default ``tmp`` prefix) created."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("dicomml", "tmp")))


def test_temporary_cache_is_removed_when_the_dataset_is_garbage_collected(data, system_temp):
    ds = DicomSeriesDataset(data, cache_dir=VolumeCache.temporary())
    root = ds.cache.root
    assert root.parent == system_temp and root.name.startswith("dicomml_cache_")
    ds[0]
    assert ds.cache.is_temporary and len(ds.cache.keys()) == 1
    del ds
    gc.collect()
    assert not root.exists()
    assert _ours(system_temp) == []


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_temporary_cache_survives_workers_and_goes_with_the_dataset(data, system_temp,
                                                                    start_method):
    ds = DicomSeriesDataset(data, cache_dir=VolumeCache.temporary())
    root = ds.cache.root
    for epoch in range(2):  # workers start and exit twice: their copies must not remove it
        loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=dicomml.collate,
                            multiprocessing_context=start_method)
        assert sum(len(batch["series_key"]) for batch in loader) == 3
        del loader
        assert root.is_dir(), f"a worker removed the cache (epoch {epoch})"
    assert len(ds.cache.keys()) == 3  # written by the workers
    del ds
    gc.collect()
    assert not root.exists()
    assert _ours(system_temp) == []


def test_slice_dataset_with_a_temporary_cache(data, system_temp):
    ds = DicomSliceDataset(data, cache_dir=VolumeCache.temporary())
    root = ds.source.cache.root
    assert ds.source.cache.mmap  # the slice dataset reads its volumes memory-mapped
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=dicomml.collate,
                        multiprocessing_context="fork")
    assert sum(len(batch["series_key"]) for batch in loader) == 12  # 3 series x 4 slices
    del loader
    assert root.is_dir() and len(ds.source.cache.keys()) == 3
    del ds
    gc.collect()
    assert not root.exists() and _ours(system_temp) == []


def test_only_the_creating_process_removes_the_folder(system_temp):
    cache = VolumeCache.temporary()
    cache.store("ab" * 32, {"image": torch.zeros(1, 2, 2, 2)})
    child = multiprocessing.get_context("fork").Process(target=cache.close)
    child.start()
    child.join(60)
    assert child.exitcode == 0 and cache.root.is_dir()  # the forked copy left it
    copy = pickle.loads(pickle.dumps(cache))  # a spawned worker's copy: reads, writes, owns not
    assert not copy.is_temporary and copy.load("ab" * 32)["image"].shape == (1, 2, 2, 2)
    copy.close()
    assert cache.root.is_dir()
    cache.close()
    assert not cache.root.exists() and _ours(system_temp) == []
    with pytest.raises(CacheError, match="closed"):
        cache.store("cd" * 32, {"image": torch.zeros(1, 1, 1, 1)})
    assert not cache.root.exists()


def test_a_cache_given_a_folder_is_never_removed(data, tmp_path):
    ds = DicomSeriesDataset(data, cache_dir=tmp_path / "cache")
    ds[0]
    ds.cache.close()
    del ds
    gc.collect()
    assert len(list((tmp_path / "cache").glob("??/*.json"))) == 1


def test_docstring_examples_write_into_their_own_temp_folder(tmp_path, monkeypatch):
    """tests/test_docstrings.py points tempfile at tmp_path: the examples' mkdtemp() folders
    land there, not in the system temp folder."""
    from test_docstrings import run_doctests

    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    run_doctests("dicomml.dataset.series", tmp_path / "own")
    assert list(system.iterdir()) == []
    assert len(list((tmp_path / "own").iterdir())) >= 2  # the example's data and cache
