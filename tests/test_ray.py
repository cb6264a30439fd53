"""The Ray engine on a local Ray instance (2 CPUs, loopback): the same catalog, cache entries
and samples as the local engine, partitioned catalogs, incremental rescans, and files that
crash or hang the parser inside a task. The multi-node cases: tests/test_ray_cluster.py."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _ray_helpers import (  # noqa: E402
    LOOPBACK,
    assert_same_cache,
    assert_same_catalog,
    cache_files,
    reap,
    require_loopback,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(180)  # a Ray hang fails the test instead of stalling CI

from badfiles import build_corpus  # noqa: E402

import dicomml  # noqa: E402
from dicomml import transforms as T  # noqa: E402
from dicomml.catalog import store  # noqa: E402
from dicomml.cluster import RayEngine  # noqa: E402
from dicomml.dataset import DicomSeriesDataset, VolumeCache  # noqa: E402

CHAIN = T.Compose([T.ResizeTo((4, 16, 16)), T.ClipNormalize(-1000, 1000)])


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray instance for the module (2 CPUs, no dashboard, loopback), shut down at
    the end."""
    require_loopback(ray)
    temp = tmp_path_factory.mktemp("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address=LOOPBACK,
             _temp_dir=str(temp), log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        reap(temp)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The synthetic demo corpus (CT and MR, several transfer syntaxes) plus the bad-file
    corpus, under one root."""
    root = tmp_path_factory.mktemp("data")
    dicomml.synth.write_corpus(root / "good", n_patients=2)
    cases = build_corpus(root / "bad")
    return root, cases


def _local(root, **options):
    return dicomml.scan(root, progress=False, workers=1, **options)


def test_ray_scan_equals_the_local_scan_with_bad_files(local_ray, corpus):
    root, cases = corpus
    local = _local(root)
    engine = RayEngine(batch_size=16)
    remote = dicomml.scan(root, progress=False, engine=engine)
    assert_same_catalog(local, remote)
    assert engine.stats["tasks"] >= 2  # it did run as several tasks
    errors = set(remote.errors["path"])
    culprits = {str(p) for case in cases.values() if case.scan == "error"
                for p in case.culprits}
    assert culprits and culprits <= errors
    # splits are a function of the catalog: the same on both
    a = local.split((0.5, 0.5), seed=0)
    b = remote.split((0.5, 0.5), seed=0)
    assert {k: sorted(v.series.series_key) for k, v in a.items()} == \
        {k: sorted(v.series.series_key) for k, v in b.items()}


def test_ray_scan_and_cache_of_real_data_equal_the_local_ones(local_ray, shared_data,
                                                              tmp_path):
    for name in ("dcm_qa_ts", "dcm_qa_ge"):
        folder = shared_data / name
        assert_same_catalog(_local(folder), dicomml.scan(folder, progress=False, engine="ray"))
    cat = _local(shared_data / "dcm_qa_ts")
    results = [dicomml.build_cache(cat, tmp_path / engine, engine=engine, workers=0,
                                   progress=False) for engine in ("ray", "local")]
    assert results[0] == results[1] and results[0]["cached"] >= 5
    assert_same_cache(tmp_path / "ray", tmp_path / "local")


def test_measured_batches_and_the_string_engine(local_ray, corpus):
    root, _ = corpus
    engine = RayEngine()
    cat = dicomml.scan(root, progress=False, engine=engine)
    assert engine.stats["seconds_per_file"] > 0 and engine.stats["tasks"] >= 2
    assert_same_catalog(cat, dicomml.scan(root, progress=False, engine="ray"))
    with pytest.raises(ValueError, match="engine"):
        dicomml.scan(root, engine="spark")


def test_partitioned_catalog_directory(local_ray, corpus, tmp_path, monkeypatch):
    root, _ = corpus
    monkeypatch.setattr(store, "PART_ROWS", 40)  # several part files
    folder = tmp_path / "catalog"
    cat = dicomml.scan(root, engine="ray", catalog=f"{folder}/", progress=False)
    parts = sorted(p.name for p in folder.iterdir())
    assert parts[0] == store.META_FILE and len(parts) == 1 + -(-len(cat.instances) // 40)
    assert_same_catalog(cat, dicomml.Catalog.load(folder))
    assert_same_catalog(cat, dicomml.Catalog.open(folder))  # a catalog folder, not scanned
    # read directly by pandas, pyarrow and Ray Data (the metadata file is skipped)
    frame = pd.read_parquet(folder)
    assert frame["path"].tolist() == cat.instances["path"].tolist()
    assert frame["SOPInstanceUID"].tolist() == cat.instances["SOPInstanceUID"].tolist()
    assert ray.data.read_parquet(str(folder)).count() == len(cat.instances)
    # the local engine reads and rewrites the same folder
    again = dicomml.scan(root, catalog=f"{folder}/", progress=False, workers=1)
    assert_same_catalog(cat, again)


def test_refuses_to_replace_a_folder_that_is_not_a_catalog(local_ray, corpus, tmp_path):
    root, _ = corpus
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(dicomml.errors.CatalogError, match="not a dicomml catalog"):
        dicomml.scan(root / "good", engine="ray", catalog=tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_incremental_rescan_parses_only_what_changed(local_ray, tmp_path):
    data, folder = tmp_path / "data", f"{tmp_path / 'catalog'}/"
    for i in range(3):
        dicomml.synth.write_series(data / f"s{i}", shape=(4, 8, 8), seed=i)
    first = dicomml.scan(data, engine="ray", catalog=folder, progress=False)
    files = sorted(first.instances["path"])
    os.remove(files[0])                                   # removed
    os.utime(files[1], ns=(1, 1))                         # changed
    dicomml.synth.write_series(data / "s3", shape=(2, 8, 8), seed=3)  # new
    engine = RayEngine()
    second = dicomml.scan(data, engine=engine, catalog=folder, progress=False)
    assert engine.stats["files"] == 1 + 2
    assert_same_catalog(second, _local(data))
    assert_same_catalog(second, dicomml.Catalog.load(folder))


def test_a_catalog_directory_inside_the_scanned_folder_is_not_indexed(local_ray, tmp_path):
    data = tmp_path / "data"
    dicomml.synth.write_series(data / "s0", shape=(3, 8, 8), seed=0)
    first = dicomml.scan(data, engine="ray", catalog=f"{data / 'catalog'}/", progress=False)
    second = dicomml.scan(data, engine="ray", catalog=f"{data / 'catalog'}/", progress=False)
    assert len(first.instances) == 3 and first.errors.empty
    assert_same_catalog(first, second)


def _faulty_parser(hang: str, crash: str, stuck: str):
    """The real parser, except: ``hang`` sleeps (Python, interrupted by the per-file bound),
    ``crash`` kills the worker, ``stuck`` sleeps with SIGALRM blocked (only the task
    deadline ends it)."""
    from dicomml.catalog.header import parse_file_safe

    def parse(path, size=None):
        if path == hang:
            time.sleep(600)
        if path == crash:
            os._exit(3)
        if path == stuck:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(600)
        return parse_file_safe(path, size)

    return parse


def test_a_file_that_crashes_or_hangs_the_parser_is_recorded(local_ray, tmp_path):
    data = tmp_path / "data"
    for i in range(2):
        dicomml.synth.write_series(data / f"s{i}", shape=(12, 8, 8), seed=i)
    local = _local(data)
    paths = sorted(local.instances["path"])
    hang, crash, stuck = paths[3], paths[10], paths[17]
    # batches of 4: the crash is found by bisection, the hang by the per-file bound
    engine = RayEngine(parse=_faulty_parser(hang, crash, None), batch_size=4,
                       file_timeout=1.0, max_retries=0)
    cat = dicomml.scan(data, engine=engine, progress=False)
    errors = dict(zip(cat.errors["path"], cat.errors["error_type"]))
    assert errors == {hang: "ParseTimeout", crash: "WorkerCrash"}
    assert "1 s" in cat.errors.set_index("path").loc[hang, "reason"]
    _assert_rest_equal(cat, local, errors)
    # a hang the alarm cannot end: the task is killed at its deadline (one file per task
    # here, so the test waits for one deadline only)
    engine = RayEngine(parse=_faulty_parser(None, None, stuck), batch_size=1,
                       file_timeout=1.0, task_timeout=6.0, max_retries=0)
    cat = dicomml.scan(data, engine=engine, progress=False)
    assert list(zip(cat.errors["path"], cat.errors["error_type"])) == [(stuck, "ParseTimeout")]
    _assert_rest_equal(cat, local, {stuck})


def _assert_rest_equal(cat, local, left_out) -> None:
    """``cat``'s rows are ``local``'s without the files ``left_out`` (series keys aside)."""
    good = local.instances[~local.instances["path"].isin(left_out)].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        cat.instances.drop(columns=["series_key", "split_reason"]),
        good.drop(columns=["series_key", "split_reason"]))


def _dataset_cache(catalog, folder, transform) -> None:
    """The cache as the Dataset itself writes it: every item read once."""
    ds = DicomSeriesDataset(catalog, cache_dir=folder, transform=transform, on_error="skip")
    for i in range(len(ds)):
        ds[i]


def test_build_cache_ray_equals_local_and_the_dataset(local_ray, corpus, tmp_path):
    root, _ = corpus
    cat = _local(root / "good")
    built = {}
    for name, engine in (("ray", "ray"), ("local", "local")):
        built[name] = dicomml.build_cache(cat, tmp_path / name, transform=CHAIN, engine=engine,
                                          workers=0, progress=False)
    assert built["ray"] == built["local"] and built["ray"]["cached"] == len(cat.series)
    _dataset_cache(cat, tmp_path / "dataset", CHAIN)
    assert_same_cache(tmp_path / "ray", tmp_path / "local")
    assert_same_cache(tmp_path / "ray", tmp_path / "dataset")
    # idempotent: a rerun writes nothing
    before = {f: os.stat(tmp_path / "ray" / f).st_mtime_ns for f in cache_files(tmp_path / "ray")}
    again = dicomml.build_cache(cat, tmp_path / "ray", transform=CHAIN, engine="ray",
                                progress=False)
    assert again["present"] == len(cat.series) and again["cached"] == 0
    assert before == {f: os.stat(tmp_path / "ray" / f).st_mtime_ns
                      for f in cache_files(tmp_path / "ray")}
    # resumable: a removed entry is the only one rebuilt
    cache = VolumeCache(tmp_path / "ray")
    cache.remove(cache.keys()[0])
    resumed = dicomml.build_cache(cat, tmp_path / "ray", transform=CHAIN, engine="ray",
                                  progress=False)
    assert (resumed["cached"], resumed["present"]) == (1, len(cat.series) - 1)
    assert_same_cache(tmp_path / "ray", tmp_path / "local")


def test_build_cache_ray_over_bad_files_reports_them(local_ray, tmp_path):
    cases = build_corpus(tmp_path / "bad", names=["truncated_pixels", "corrupt_jpeg",
                                                  "missing_ipp", "mixed_matrix"])
    cat = _local(tmp_path / "bad")
    ray_result = dicomml.build_cache(cat, tmp_path / "ray", engine="ray", progress=False)
    local_result = dicomml.build_cache(cat, tmp_path / "local", workers=0, progress=False)
    assert ray_result == local_result
    assert ray_result["failed"] >= 1 and len(cases) == 4
    if ray_result["cached"]:
        assert_same_cache(tmp_path / "ray", tmp_path / "local")


def test_cache_command_with_the_ray_engine(local_ray, corpus, tmp_path, capsys):
    from dicomml.cli import main

    root, _ = corpus
    saved = f"{tmp_path / 'catalog'}/"
    cat = dicomml.scan(root / "good", engine="ray", catalog=saved, progress=False)
    code = main(["cache", saved, "--cache-dir", str(tmp_path / "ray"), "--engine", "ray",
                 "--no-progress"])
    assert code == 0 and f"{len(cat.series)} cached" in capsys.readouterr().out
    dicomml.build_cache(cat, tmp_path / "local", workers=0, progress=False)
    assert_same_cache(tmp_path / "ray", tmp_path / "local")


def test_scan_command_with_the_ray_engine(local_ray, corpus, tmp_path, capsys):
    """``dicomml scan DIR -o CATALOG/ --engine ray``: the same catalog as the local engine,
    written as a partitioned folder; the summary names the series."""
    from dicomml.cli import main

    root, _ = corpus
    saved = f"{tmp_path / 'catalog'}/"
    assert main(["scan", str(root / "good"), "-o", saved, "--engine", "ray",
                 "--no-progress"]) == 0
    assert "catalog written to" in capsys.readouterr().out
    assert_same_catalog(dicomml.Catalog.load(saved), _local(root / "good"))


def test_to_ray_dataset_samples_batches_and_epochs(local_ray, corpus, tmp_path):
    root, _ = corpus
    cat = _local(root / "good")
    chain = T.Compose([CHAIN, T.RandomNoise(std=(0.5, 1.0))])
    local = DicomSeriesDataset(cat, transform=chain, seed=7)
    for epoch in (0, 1):
        rows = dicomml.to_ray_dataset(cat, transform=chain, seed=7, epoch=epoch).take_all()
        assert sorted(r["index"] for r in rows) == list(range(len(local)))
        local.set_epoch(epoch)
        for row in rows:
            sample = local[int(row["index"])]
            np.testing.assert_array_equal(row["image"], sample["image"].numpy())
            np.testing.assert_array_equal(row["affine"], sample["affine"].numpy())
    # unseeded: new draws every time the dataset is iterated
    stream = dicomml.to_ray_dataset(cat, transform=chain)
    first, second = ([b["image"] for b in stream.iter_torch_batches(batch_size=4)]
                     for _ in range(2))
    assert all(isinstance(b, torch.Tensor) and b.shape[1:] == (1, 4, 16, 16) for b in first)
    assert sum(len(b) for b in first) == len(cat.series)
    assert not any(torch.equal(a, b) for a, b in zip(first, second))
    text = dicomml.to_ray_dataset(cat, identifiers=True).take(1)[0]
    assert text["series_key"] in set(cat.series.series_key) and "Modality" in text["metadata"]


def test_to_ray_dataset_reads_the_cache(local_ray, corpus, tmp_path):
    root, _ = corpus
    cat = _local(root / "good")
    dicomml.build_cache(cat, tmp_path / "cache", transform=CHAIN, engine="ray", progress=False)
    source = DicomSeriesDataset(cat, cache_dir=tmp_path / "cache", transform=CHAIN).source
    key = source.cache_key(0)
    marked = source.cache.load(key)
    marked["image"] = torch.full_like(marked["image"], 123.0)
    source.cache.store(key, marked)  # a marker only a cache read can return
    rows = dicomml.to_ray_dataset(cat, transform=CHAIN, cache_dir=tmp_path / "cache").take_all()
    row = next(r for r in rows if r["index"] == 0)
    assert (row["image"] == 123.0).all()
    assert len(VolumeCache(tmp_path / "cache").keys()) == len(cat.series)


def test_without_ray_the_error_names_the_extra(tmp_path):
    """``import dicomml`` never needs Ray; the Ray engine says which extra to install."""
    import subprocess

    dicomml.synth.write_series(tmp_path / "s", shape=(2, 4, 4))
    script = ("import sys\nsys.modules['ray'] = None\nimport dicomml\n"
              f"dicomml.scan({str(tmp_path)!r}, progress=False)\n"
              "try:\n"
              f"    dicomml.scan({str(tmp_path)!r}, engine='ray', progress=False)\n"
              "except ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(dicomml.__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "dicomml.cluster needs ray: pip install 'dicomml[ray]'"
