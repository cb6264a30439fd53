"""dicomml.scan / Catalog: mixed folders, series splitting, persistence, incremental rescans,
queries and the CLI, on synthetic series (ground truth from dicomml.synth) and real data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pydicom
import pytest

import dicomml
from dicomml import synth
from dicomml.catalog import Catalog, parallel, scan
from dicomml.catalog.split import assign_series
from dicomml.errors import CatalogError, SeriesNotFoundError


def _tree(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One flat folder: 2 patients x (CT + MR), plus an MR 4D series, all files mixed."""
    root = tmp_path_factory.mktemp("mixed")
    staging = tmp_path_factory.mktemp("staging")
    truths = []
    for i, (pid, modality, shape, extra) in enumerate([
            ("P1", "CT", (6, 8, 8), {}), ("P1", "MR", (4, 10, 6), {"orientation": "sagittal"}),
            ("P2", "CT", (5, 8, 8), {"series_number": 3}),
            ("P2", "MR", (3, 4, 8, 8), {"fourth_dim": "temporal"})]):
        truth = synth.write_series(staging / str(i), modality=modality, shape=shape,
                                   patient_id=pid, seed=20 + i, **extra)
        truths.append(truth)
    moved = []
    for i, truth in enumerate(truths):
        paths = []
        for j, path in enumerate(truth.paths):
            target = root / f"IM{i}{j:03d}"  # no extension, interleaved names
            shutil.move(path, target)
            paths.append(str(target))
        moved.append((truth, sorted(paths)))
    (root / "notes.txt").write_text("not dicom")
    return root, moved


def test_mixed_folder_series_match_truth(mixed):
    root, moved = mixed
    cat = scan(root, progress=False)
    assert len(cat.errors) == 1 and cat.errors.path[0].endswith("notes.txt")
    assert cat.errors.error_type[0] == "NotDicomError"
    assert len(cat.instances) == sum(len(paths) for _, paths in moved)
    by_uid = cat.series.groupby("SeriesInstanceUID")
    for truth, paths in moved:
        rows = cat.series[cat.series.SeriesInstanceUID == truth.series_uid]
        assert sorted(sum((cat.files(k) for k in rows.series_key), [])) == paths
        assert set(rows.PatientID) == {truth.patient_id}
        assert set(rows.Modality) == {truth.modality}
    assert by_uid.ngroups == 4
    assert len(cat.patients()) == 2 and list(cat.patients().PatientID) == ["P1", "P2"]
    assert cat.patients().n_instances.sum() == len(cat.instances)
    assert len(cat.studies()) == len(set(t.study_uid for t, _ in moved))


def test_4d_temporal_series_is_split_with_stable_keys(mixed):
    root, moved = mixed
    cat = scan(root, progress=False)
    truth, paths = moved[3]
    rows = cat.series[cat.series.SeriesInstanceUID == truth.series_uid]
    assert sorted(rows.series_key) == [f"{truth.series_uid}#t{t}" for t in (1, 2, 3)]
    assert set(rows.split_reason) == {"temporal"}
    assert set(rows.n_instances) == {4} and set(rows.n_slices) == {4}
    for key in rows.series_key:  # each sub-series: one time point, per the files' headers
        tps = {int(pydicom.dcmread(p, stop_before_pixels=True).TemporalPositionIdentifier)
               for p in cat.files(key)}
        assert tps == {int(key.rsplit("#t", 1)[1])}
    unsplit = cat.series[cat.series.SeriesInstanceUID == moved[0][0].series_uid]
    assert list(unsplit.series_key) == [moved[0][0].series_uid]
    assert list(unsplit.split_reason) == [""]
    assert int(unsplit.n_slices.iloc[0]) == 6


def test_series_instances_sorted_and_missing_key(mixed):
    root, moved = mixed
    cat = scan(root, progress=False)
    key = moved[0][0].series_uid
    rows = cat.series_instances(key)
    assert list(rows.InstanceNumber) == sorted(rows.InstanceNumber)
    assert cat.files(key) == list(rows.path)
    assert cat[key].n_instances == len(rows) and key in cat
    with pytest.raises(SeriesNotFoundError):
        cat.files("1.2.3.nope")


def test_keys_stable_across_file_names_and_order(mixed, tmp_path):
    root, _ = mixed
    first = scan(root, progress=False)
    copy = tmp_path / "renamed"
    copy.mkdir()
    for i, path in enumerate(sorted(root.iterdir(), reverse=True)):
        shutil.copy(path, copy / f"z{i:04d}.dcm")
    second = scan(copy, progress=False)
    assert sorted(first.series.series_key) == sorted(second.series.series_key)


@pytest.mark.parametrize("case", ["echo", "orientation", "matrix"])
def test_split_reasons(tmp_path, case):
    base = dict(modality="MR", patient_id="P", seed=30)
    if case == "echo":
        truth = synth.write_series(tmp_path, shape=(2, 3, 6, 6), fourth_dim="echo", **base)
        expected = 2
    else:
        truth = synth.write_series(tmp_path / "a", shape=(3, 6, 6), **base)
        other = {"orientation": dict(orientation="coronal"), "matrix": dict(shape=(3, 8, 6))}
        synth.write_series(tmp_path / "b", series_uid=truth.series_uid,
                           study_uid=truth.study_uid, **{**base, "shape": (3, 6, 6),
                                                         **other[case]})
        expected = 2
    cat = scan(tmp_path, progress=False)
    assert len(cat) == expected
    assert set(cat.series.split_reason) == {case}
    assert set(cat.series.SeriesInstanceUID) == {truth.series_uid}
    assert all(k.startswith(truth.series_uid + "#") for k in cat.series.series_key)
    if case == "matrix":
        assert sorted(cat.series.series_key) == [f"{truth.series_uid}#m6x6",
                                                 f"{truth.series_uid}#m8x6"]


def _set_acquisition(paths, numbers):
    for path, number in zip(paths, numbers):
        ds = pydicom.dcmread(path)
        ds.AcquisitionNumber = number
        ds.save_as(path)


def test_acquisition_split_only_when_positions_repeat(tmp_path):
    # CT that numbers each slice as its own acquisition: distinct positions -> one series
    ct = synth.write_series(tmp_path / "ct", shape=(5, 6, 6), seed=31)
    _set_acquisition(sorted(ct.paths), range(1, 6))
    assert list(scan(tmp_path / "ct", progress=False).series.split_reason) == [""]
    # two acquisitions covering the same positions -> two sub-series
    a = synth.write_series(tmp_path / "rep" / "a", shape=(3, 6, 6), seed=32)
    b = synth.write_series(tmp_path / "rep" / "b", shape=(3, 6, 6), seed=32,
                           series_uid=a.series_uid, study_uid=a.study_uid,
                           patient_id=a.patient_id)
    _set_acquisition(b.paths, [2, 2, 2])
    cat = scan(tmp_path / "rep", progress=False)
    assert sorted(cat.series.series_key) == [f"{a.series_uid}#a1", f"{a.series_uid}#a2"]
    assert set(cat.series.split_reason) == {"acquisition"}


def test_real_dwi_mosaics_stay_one_series(shared_data):
    cat = scan(shared_data / "dcm_qa_decubitus" / "In", progress=False)
    assert len(cat) == 8 and set(cat.series.split_reason) == {""}
    dwi = cat.filter(SeriesDescription=lambda s: s.str.contains("diff"))
    assert len(dwi) == 4
    # each of the 13 files is a volume with its own AcquisitionNumber: not shredded
    assert set(dwi.series.n_instances) == {13} and set(dwi.series.n_volumes) == {13}
    assert set(dwi.series.n_slices) == {int(v) for v in dwi.instances.NumberOfImagesInMosaic}
    key = dwi.series.series_key[0]
    assert dwi.instances[dwi.instances.series_key == key].AcquisitionNumber.nunique() == 13
    t1 = cat.filter(SeriesDescription="t1_fl2d_sag")
    assert set(t1.series.n_instances) == {35} and set(t1.series.n_slices) == {35}


def test_save_load_roundtrip_and_incremental(tmp_path):
    data = tmp_path / "data"
    a = synth.write_series(data / "a", shape=(4, 6, 6), seed=40)
    b = synth.write_series(data / "b", shape=(3, 6, 6), seed=41, modality="MR")
    (data / "junk.bin").write_bytes(b"\x00" * 10)
    store = tmp_path / "out" / "cat.parquet"
    before = _tree(data)
    first = scan(data, catalog=store, progress=False)
    assert _tree(data) == before  # nothing written into the scanned folder
    assert store.is_file()
    loaded = Catalog.load(store)
    for name in ("instances", "series", "errors"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(loaded, name))
    assert loaded.root == str(data)
    assert pd.read_parquet(store).shape[0] == len(first.instances)

    # unchanged file, same size and mtime, different content: must NOT be read again
    victim = sorted(a.paths)[0]
    st = victim.stat()
    ds = pydicom.dcmread(victim)
    ds.PatientID = "X" * len(ds.PatientID)
    ds.save_as(victim)
    assert victim.stat().st_size == st.st_size
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    removed = sorted(b.paths)[0]
    removed.unlink()
    c = synth.write_series(data / "c", shape=(2, 6, 6), seed=42)
    second = scan(data, catalog=store, progress=False)
    assert second.instances.loc[second.instances.path == str(victim), "PatientID"].item() \
        == a.patient_id
    assert str(removed) not in set(second.instances.path)
    assert set(map(str, c.paths)) <= set(second.instances.path)
    assert len(second) == 3 and len(second.errors) == 1
    pd.testing.assert_frame_equal(Catalog.load(store).instances, second.instances)

    # a catalog loaded before a later save keeps its own snapshot, and pickles whole
    snapshot = Catalog.load(store)
    c.paths[0].unlink()
    scan(data, catalog=store, progress=False)
    assert len(Catalog.load(store).instances) == len(second.instances) - 1
    pd.testing.assert_frame_equal(snapshot.instances, second.instances)
    import pickle

    clone = pickle.loads(pickle.dumps(Catalog.load(store)))
    assert len(clone.instances) == len(second.instances) - 1

    # a changed mtime makes it read again
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = scan(data, catalog=store, progress=False)
    assert third.instances.loc[third.instances.path == str(victim), "PatientID"].item() \
        .startswith("X")
    assert str(c.paths[0]) not in set(third.instances.path)


def test_catalog_inside_scanned_folder_is_not_indexed(tmp_path):
    synth.write_series(tmp_path, shape=(2, 6, 6), seed=43)
    store = tmp_path / "catalog.parquet"
    scan(tmp_path, catalog=store, progress=False)
    again = scan(tmp_path, catalog=store, progress=False)
    assert str(store) not in set(again.errors.path) | set(again.instances.path)
    assert len(again.errors) == 0


def test_load_refuses_non_catalog(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"nope")
    with pytest.raises(CatalogError):
        Catalog.load(tmp_path / "x.parquet")
    with pytest.raises(CatalogError):
        Catalog.load(tmp_path / "missing.parquet")


def test_filter(mixed):
    root, moved = mixed
    cat = scan(root, progress=False)
    ct = cat.filter(Modality="CT")
    assert set(ct.series.Modality) == {"CT"} and len(ct) == 2
    assert set(ct.instances.Modality) == {"CT"}
    assert len(cat.filter(Modality=["CT", "MR"])) == len(cat)
    assert list(cat.filter(min_slices=6).series.n_slices) == [6]
    assert all(cat.filter(max_instances=3).series.n_instances <= 3)
    assert set(cat.filter(PatientID="P2", Modality="CT").series.SeriesNumber) == {3}
    big = cat.filter(min_Rows=9)
    assert set(big.series.Rows) == {10}
    one = cat.filter(InstanceNumber=1)  # an instance-level column: counts recomputed
    assert set(one.series.n_instances) == {1}
    with pytest.raises(KeyError):
        cat.filter(NoSuchColumn=1)
    assert "series" in repr(cat) and str(len(cat)) in repr(cat)
    assert "patient P1" in cat.tree() and moved[0][0].series_uid in cat.tree()


def test_parallel_equals_serial_and_survives_a_crash(mixed, monkeypatch):
    root, _ = mixed
    serial = scan(root, workers=1, progress=False)
    monkeypatch.setattr(parallel, "IN_PROCESS_BELOW", 0)
    pooled = scan(root, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial.instances, pooled.instances)
    pd.testing.assert_frame_equal(serial.series, pooled.series)
    # fault injection: the worker process dies (os._exit) on one file
    victim = sorted(serial.instances.path)[5]
    real = parallel.parse_file_safe

    def dying(path, size=None):
        if path == victim:
            os._exit(3)
        return real(path, size)

    monkeypatch.setattr(parallel, "parse_file_safe", dying)
    crashed = scan(root, workers=2, progress=False)
    assert list(crashed.errors.loc[crashed.errors.error_type == "WorkerCrash", "path"]) == \
        [victim]
    assert len(crashed.instances) == len(serial.instances) - 1


def _cli(argv) -> int:
    """Run our subcommands through argparse exactly as dicomml.cli does, without importing
    every other command module (torch)."""
    import argparse

    from dicomml.catalog import cli

    parser = argparse.ArgumentParser(prog="dicomml")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CatalogError:
        return 1


def test_cli_scan_and_info(mixed, tmp_path, capsys):
    root, _ = mixed
    out = tmp_path / "cat.parquet"
    main = _cli
    assert main(["scan", str(root), "-o", str(out), "--no-progress", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "2 patients" in text and "6 series" in text and "1 errors" in text
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "NotDicomError" in info and "series_key" in info
    assert main(["info", str(tmp_path / "nope.parquet")]) == 1
    assert main(["info", str(root)]) == 0  # a DICOM folder: scanned, nothing written
    assert capsys.readouterr().out == info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.parquet"]


def test_public_api_and_empty_folder(tmp_path):
    assert dicomml.scan is scan and dicomml.Catalog is Catalog
    cat = scan(tmp_path, progress=False)
    assert len(cat) == 0 and cat.instances.empty and cat.errors.empty
    assert "0 series" in cat.summary()
    assert assign_series(cat.instances).empty


def test_scan_a_list_of_files_and_folders(tmp_path):
    a = synth.write_series(tmp_path / "a", shape=(3, 6, 6), seed=50)
    b = synth.write_series(tmp_path / "b", shape=(2, 6, 6), seed=51)
    cat = scan([str(p) for p in a.paths[:2]] + [tmp_path / "b", a.paths[0]], progress=False)
    assert sorted(cat.instances.path) == sorted(map(str, a.paths[:2] + b.paths))
    assert cat.root == str(tmp_path)


def test_fifo_and_progress_bar(tmp_path, capfd):
    """A named pipe (reading it would block forever) is not a file to parse; the tqdm bar
    shows on stderr with progress=True and not with progress=False."""
    synth.write_series(tmp_path, shape=(2, 6, 6), seed=52)
    os.mkfifo(tmp_path / "pipe.dcm")
    cat = scan(tmp_path, progress=True)
    assert len(cat.instances) == 2 and cat.errors.empty
    assert "scan" in capfd.readouterr().err
    scan(tmp_path, progress=False)
    assert "scan" not in capfd.readouterr().err
