"""The decoded-volume cache: format, atomic writes from concurrent processes, invalidation when
a file or a transform changes, corrupt entries, and ``dicomml cache``."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pytest
import torch
from test_dataset import by_series_uid, make_corpus

import dicomml
from dicomml.cli import main as cli_main
from dicomml.dataset import DicomSeriesDataset, VolumeCache
from dicomml.dataset.cache import entry_key
from dicomml.errors import CacheError, CatalogError


class Scale:
    """A deterministic transform following the cache contract (``deterministic``,
    ``cache_key``): multiplies the image."""

    deterministic = True

    def __init__(self, factor: float):
        self.factor = factor

    def cache_key(self) -> str:
        return f"Scale(factor={self.factor!r})"

    def __call__(self, sample):
        return {**sample, "image": sample["image"] * self.factor}


class AddNoise:
    """A random transform (no ``deterministic`` flag): must never be cached."""

    def __call__(self, sample):
        return {**sample, "image": sample["image"] + torch.rand(sample["image"].shape)}


@pytest.fixture()
def data(tmp_path):
    truths = make_corpus(tmp_path / "data", shapes=[(4, 16, 16), (5, 12, 16)])
    return tmp_path / "data", truths


def test_store_load_round_trip_keeps_dtypes_and_values(tmp_path):
    cache = VolumeCache(tmp_path / "c")
    sample = {"image": torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4),
              "affine": torch.eye(4, dtype=torch.float64), "series_key": "s",
              "metadata": {"Modality": "CT", "SeriesNumber": 3, "missing": None},
              "weights": np.ones(3, np.int16)}
    assert cache.load("ab12") is None and "ab12" not in cache
    cache.store("ab12", sample)
    for reader in (cache, VolumeCache(tmp_path / "c", mmap=True)):
        back = reader.load("ab12")
        assert torch.equal(back["image"], sample["image"]) and back["image"].dtype == torch.float32
        assert back["affine"].dtype == torch.float64
        assert back["weights"].dtype == torch.int16
        assert back["metadata"] == sample["metadata"] and back["series_key"] == "s"
    assert cache.keys() == ["ab12"]
    files = sorted(p.name for p in (tmp_path / "c" / "ab").iterdir())
    assert files == ["ab12.affine.npy", "ab12.image.npy", "ab12.json", "ab12.weights.npy"]
    assert not any(name.endswith((".pkl", ".pickle")) for name in files)
    with pytest.raises(CacheError, match="cannot be cached"):
        cache.store("cd34", {"image": torch.zeros(1), "thing": object()})


def test_truncated_or_mismatched_entries_raise_cache_error(tmp_path):
    cache = VolumeCache(tmp_path)
    cache.store("ab12", {"image": torch.ones(1, 4, 8, 8)})
    npy = tmp_path / "ab" / "ab12.image.npy"
    npy.write_bytes(npy.read_bytes()[:200])
    with pytest.raises(CacheError) as info:
        cache.load("ab12")
    assert "ab12" in str(info.value)
    side = tmp_path / "ab" / "ab12.json"
    side.write_text("{not json")
    with pytest.raises(CacheError):
        cache.load("ab12")


def _writer(root, rounds):
    cache = VolumeCache(root)
    rng = np.random.default_rng(0)  # every writer writes the same entry
    image = torch.from_numpy(rng.normal(size=(1, 8, 64, 64)).astype(np.float32))
    for _ in range(rounds):
        cache.store("feed", {"image": image, "series_key": "s"})


def _reader(root, rounds, queue):
    cache = VolumeCache(root)
    expected = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 8, 64, 64))
                                .astype(np.float32))
    complete = 0
    for _ in range(rounds):
        sample = cache.load("feed")  # must be None or a whole, correct entry
        if sample is not None:
            assert torch.equal(sample["image"], expected)
            complete += 1
    queue.put(complete)


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(tmp_path, 40)) for _ in range(2)]
    reader = ctx.Process(target=_reader, args=(tmp_path, 300, queue))
    for p in (*writers, reader):
        p.start()
    for p in (*writers, reader):
        p.join(60)
    assert all(p.exitcode == 0 for p in (*writers, reader))
    assert queue.get(timeout=5) >= 0
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert VolumeCache(tmp_path).keys() == ["feed"]


def test_entry_key_follows_file_list_sizes_and_mtimes(data):
    folder, truths = data
    paths = truths[0].paths
    key = entry_key(paths, ["T(a=1)"])
    assert key == entry_key(list(reversed(paths)), ["T(a=1)"])  # order does not matter
    assert key != entry_key(paths[:-1], ["T(a=1)"])
    assert key != entry_key(paths, ["T(a=2)"])
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert key != entry_key(paths, ["T(a=1)"])
    os.remove(paths[1])
    with pytest.raises(CatalogError) as info:
        entry_key(paths, [])
    assert str(paths[1]) in str(info.value)


def _first_entry_image(cache: VolumeCache) -> tuple[str, os.PathLike]:
    (key,) = cache.keys()
    return key, cache.root / key[:2] / f"{key}.image.npy"


def test_dataset_reads_the_cache_and_invalidates_on_touch_and_transform_change(data, tmp_path):
    folder, truths = data
    catalog = dicomml.scan(folder, progress=False)
    cache_dir = tmp_path / "cache"
    ds = DicomSeriesDataset(catalog, filter=[catalog.series.series_key[0]], cache_dir=cache_dir,
                            transform=Scale(2.0))
    truth = by_series_uid(truths)[ds[0]["SeriesInstanceUID"]]
    np.testing.assert_allclose(ds[0]["image"][0].numpy(), 2.0 * truth.array, atol=1e-3)
    key, npy = _first_entry_image(ds.cache)

    # prove the next access is served from the cache: plant a marker in the entry
    planted = np.load(npy)
    planted[...] = 123.0
    np.save(npy, planted)
    assert float(ds[0]["image"].max()) == 123.0

    # touching one DICOM file changes the key: decoded again, a second entry
    st = os.stat(truth.paths[0])
    os.utime(truth.paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    np.testing.assert_allclose(ds[0]["image"][0].numpy(), 2.0 * truth.array, atol=1e-3)
    assert len(ds.cache.keys()) == 2 and key in ds.cache.keys()

    # a changed transform parameter: a new entry with the new values
    ds3 = DicomSeriesDataset(catalog, filter=[catalog.series.series_key[0]],
                             cache_dir=cache_dir, transform=Scale(3.0))
    np.testing.assert_allclose(ds3[0]["image"][0].numpy(), 3.0 * truth.array, atol=1e-3)
    assert len(ds3.cache.keys()) == 3
    assert ds3.cache.prune([ds3.source.cache_key(0)]) == 2 and len(ds3.cache.keys()) == 1


def test_modified_file_content_is_decoded_again(data, tmp_path):
    folder, truths = data
    catalog = dicomml.scan(folder, progress=False)
    ds = DicomSeriesDataset(catalog, cache_dir=tmp_path / "cache")
    first = [ds[i]["image"].clone() for i in range(len(ds))]
    index = next(i for i in range(len(ds))
                 if ds[i]["SeriesInstanceUID"] == truths[0].series_uid)
    # overwrite the last pixel bytes of one file in place (same size: only mtime tells)
    path = truths[0].paths[0]
    with open(path, "r+b") as f:
        f.seek(-2, os.SEEK_END)
        f.write(b"\x00\x00")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    after = ds[index]["image"]
    assert not torch.equal(after, first[index])
    assert len(ds.cache.keys()) == len(ds) + 1


def test_only_the_deterministic_prefix_is_cached(data, tmp_path):
    folder, truths = data
    ds = DicomSeriesDataset(folder, cache_dir=tmp_path / "c", transform=[Scale(2.0), AddNoise()])
    assert len(ds.source._prefix) == 1 and len(ds.source._rest) == 1
    a, b = ds[0]["image"], ds[0]["image"]
    assert not torch.equal(a, b)  # the noise is fresh each time
    stored = ds.cache.load(ds.cache.keys()[0])["image"]
    truth = by_series_uid(truths)[ds[0]["SeriesInstanceUID"]]
    np.testing.assert_allclose(stored[0].numpy(), 2.0 * truth.array, atol=1e-3)


def test_dicomml_transforms_split_and_key_by_parameters(data, tmp_path):
    folder, _ = data
    from dicomml import transforms as T

    def keys(transform):
        ds = DicomSeriesDataset(folder, cache_dir=tmp_path / "c", transform=transform)
        return ds.source._prefix_keys, len(ds.source._rest)

    prefix, rest = keys(T.Compose([T.Window(40, 400), T.RandomFlip(axes=(0,), p=0.5)]))
    assert len(prefix) == 1 and rest == 1
    assert keys(T.Compose([T.Window(40, 400)]))[0] != keys(T.Compose([T.Window(50, 400)]))[0]


def test_corrupt_entry_is_rebuilt(data, tmp_path, caplog):
    folder, truths = data
    ds = DicomSeriesDataset(folder, cache_dir=tmp_path / "c")
    good = ds[0]["image"].clone()
    _, npy = _first_entry_image(ds.cache)
    npy.write_bytes(b"garbage")
    assert torch.equal(ds[0]["image"], good)
    assert "corrupt cache entry" in caplog.text
    assert torch.equal(ds.cache.load(ds.cache.keys()[0])["image"], good)


def test_cache_command_warms_every_series_in_parallel(data, tmp_path, capsys):
    folder, truths = data
    saved = tmp_path / "cat.parquet"
    dicomml.scan(folder, progress=False).save(saved)
    cache_dir = tmp_path / "cache"
    assert cli_main(["cache", str(saved), "--cache-dir", str(cache_dir), "--workers", "2",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{len(truths)} cached, 0 already present, 0 failed" in out
    ds = DicomSeriesDataset(saved, cache_dir=cache_dir)
    assert all(ds.source.cache_key(i) in ds.cache for i in range(len(ds)))
    assert cli_main(["cache", str(saved), "--cache-dir", str(cache_dir), "--workers", "0",
                     "--no-progress"]) == 0
    assert f"0 cached, {len(truths)} already present" in capsys.readouterr().out
    for side in cache_dir.rglob("*.json"):
        assert json.loads(side.read_text())["format"] == 1
    assert not any(p.suffix in (".npy", ".json") for p in folder.rglob("*"))  # data untouched


def test_cache_dir_inside_the_data_folder_is_refused(data):
    folder, _ = data
    with pytest.raises(ValueError, match="inside the data folder"):
        DicomSeriesDataset(folder, cache_dir=folder / "cache")
    assert not (folder / "cache").exists()


def test_unwritable_cache_still_returns_samples(data, tmp_path, caplog):
    folder, truths = data
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    ds = DicomSeriesDataset(folder, cache_dir=blocked)
    sample = ds[0]
    truth = by_series_uid(truths)[sample["SeriesInstanceUID"]]
    np.testing.assert_allclose(sample["image"][0].numpy(), truth.array, atol=1e-3)
    assert "could not write the cache entry" in caplog.text


def test_cache_command_with_a_transform_matches_the_dataset(data, tmp_path, monkeypatch, capsys):
    folder, truths = data
    (tmp_path / "prep.py").write_text("from dicomml.transforms import Window\n"
                                      "PREP = Window(40, 400)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cache_dir = tmp_path / "cache"
    assert cli_main(["cache", str(folder), "--cache-dir", str(cache_dir), "--workers", "0",
                     "--transform", "prep:PREP", "--no-progress"]) == 0
    from dicomml.transforms import Window

    ds = DicomSeriesDataset(folder, cache_dir=cache_dir, transform=Window(40, 400))
    assert all(ds.source.cache_key(i) in ds.cache for i in range(len(ds)))
    assert cli_main(["cache", str(folder), "--cache-dir", str(folder / "c")]) == 2
    assert "inside the data folder" in capsys.readouterr().err


def test_prune_removes_leftovers_of_killed_writers(tmp_path):
    """A writer killed mid-write leaves a hidden .tmp file, or arrays without their sidecar
    (the sidecar is written last): prune removes them once they are older than
    ``leftovers_after`` and leaves young ones (a writer may still be at work) and complete
    entries alone."""
    from dicomml.dataset.cache import VolumeCache

    cache = VolumeCache(tmp_path / "c")
    cache.store("ab12", {"image": np.zeros((2, 3), np.float32), "n": 1})
    folder = tmp_path / "c" / "ab"
    tmp_file = folder / ".cd34.image.npy.4242.deadbeef.tmp"
    orphan = folder / "cd34.image.npy"
    young = folder / ".ef56.image.npy.4242.cafef00d.tmp"
    for path in (tmp_file, orphan, young):
        path.write_bytes(b"x" * 10)
    old = os.stat(tmp_file).st_mtime - 7200
    for path in (tmp_file, orphan):
        os.utime(path, (old, old))
    assert cache.prune(["ab12"]) == 0
    assert not tmp_file.exists() and not orphan.exists() and young.exists()
    assert cache.keys() == ["ab12"] and cache.load("ab12")["n"] == 1
    assert cache.prune(["ab12"], leftovers_after=0) == 0 and not young.exists()
    assert cache.prune([]) == 1 and not list(folder.iterdir())
