"""DICOMweb sources against a real Orthanc server (tests/_orthanc.py): catalogs, volumes and
Dataset samples equal those of the same files; retries, typed errors, credentials, the store.

The server runs once for the module (a private network namespace behind 127.0.0.1, a
temporary storage folder, authentication on). Without Orthanc the module is skipped, except
under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dicomweb_client")
sys.path.insert(0, os.path.dirname(__file__))

import _orthanc  # noqa: E402
import torch  # noqa: E402

import dicomml  # noqa: E402
from dicomml import synth  # noqa: E402
from dicomml.errors import (  # noqa: E402
    DicomWebAuthError,
    DicomWebResponseError,
    DicomWebUnavailableError,
)
from dicomml.web import DicomWebSource, InstanceStore  # noqa: E402

#: file columns: where the bytes lie, which differs between a folder and a server by design
FILE_ONLY = ("path", "file_size", "mtime", "mtime_ns", "pixel_data_offset", "pixel_data_length",
             "TransferSyntaxUID")
SHARED_SETS = ("dcm_qa_ts/In", "dcm_qa_ge/In/01_Ax_DWI_TENSOR_R2")


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_data) -> list[str]:
    """Synthetic series (RLE CT, MR, enhanced multi-frame) and a few real ones."""
    folder = tmp_path_factory.mktemp("web-files")
    synth.write_series(folder / "ct", shape=(5, 16, 16), transfer_syntax="1.2.840.10008.1.2.5")
    synth.write_series(folder / "mr", shape=(4, 8, 12), modality="MR", seed=3,
                       orientation="oblique")
    synth.write_series(folder / "mf", shape=(3, 10, 6), modality="MR", seed=5, multiframe=True)
    found = sorted(glob.glob(str(folder / "*" / "*.dcm")))
    for name in SHARED_SETS:
        found += sorted(p for p in glob.glob(str(shared_data / name / "*")) if os.path.isfile(p))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory, files):
    missing = _orthanc.available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"Orthanc is needed under CI: {missing}")
        pytest.skip(missing)
    folder = str(tmp_path_factory.mktemp("orthanc"))
    orthanc = _orthanc.Orthanc(folder)
    try:
        orthanc.start()
    except (RuntimeError, OSError) as exc:
        orthanc.close()
        if os.environ.get("CI"):
            pytest.fail(f"Orthanc did not start: {exc}")
        pytest.skip(f"Orthanc did not start: {exc}")
    try:
        orthanc.upload(files)
        yield orthanc
    finally:
        orthanc.close()
        left = subprocess.run(["pgrep", "-af", "Orthanc"], capture_output=True, text=True).stdout
        assert folder not in left, f"an Orthanc process outlived the tests: {left}"


def _source(server, tmp_path, url=None, **options) -> DicomWebSource:
    options.setdefault("backoff_s", 0.05)
    return DicomWebSource(url or server.dicomweb_url, auth=server.auth, store=tmp_path / "store",
                          progress=False, **options)


@pytest.fixture(scope="module")
def local(files):
    return dicomml.scan(files, progress=False)


@pytest.fixture(scope="module")
def remote(server, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    source = DicomWebSource(server.dicomweb_url, auth=server.auth, store=store, progress=False)
    return dicomml.scan(source)


def _by_uid(frame):
    return frame.sort_values("SOPInstanceUID").reset_index(drop=True)


def test_catalog_rows_equal_those_of_the_files(local, remote):
    assert len(remote.errors) == 0 and len(remote.instances) == len(local.instances)
    web, disk = _by_uid(remote.instances), _by_uid(local.instances)
    assert all(p.startswith("http://127.0.0.1:") and "/instances/" in p for p in web["path"])
    assert web["has_pixels"].all() and (web["pixel_data_length"] == -1).all()
    for column in disk.columns:
        if column in FILE_ONLY:
            continue
        a, b = web[column].tolist(), disk[column].tolist()
        if column in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            # DS values travel as JSON numbers: Orthanc writes -1e-16 as 0
            np.testing.assert_allclose(np.array(a, float), np.array(b, float), atol=1e-9)
            continue
        assert [x if x == x else None for x in a] == [x if x == x else None for x in b], column
    assert sorted(remote.series.series_key) == sorted(local.series.series_key)


def test_volumes_equal_those_of_the_files(local, remote):
    for key in remote.series.series_key:
        web, disk = dicomml.load_series(remote, key), dicomml.load_series(local, key)
        assert web.array.dtype == disk.array.dtype and np.array_equal(web.array, disk.array)
        np.testing.assert_allclose(web.affine, disk.affine, atol=1e-6)


def test_read_pixels_of_a_row(remote, local):
    from dicomml.decode.located import load_located, location_from_row

    row = _by_uid(remote.instances).iloc[0]
    location = location_from_row(row)
    assert os.path.exists(location.path) and not location.path.startswith("http")
    disk = _by_uid(local.instances).iloc[0]
    a = load_located(location).frames[0]
    b = load_located(location_from_row(disk)).frames[0]
    assert bytes(a) == bytes(b)


def test_query_filters_and_paging(server, tmp_path, remote):
    source = _source(server, tmp_path, page_size=2)
    paged = dicomml.scan(source)
    assert sorted(paged.instances["SOPInstanceUID"]) == sorted(remote.instances["SOPInstanceUID"])
    ct = dicomml.scan(source, query={"Modality": "CT"})
    assert set(ct.instances["Modality"]) == {"CT"} and len(ct.series) == 1
    ts = dicomml.scan(source, query={"SeriesDescription": "ax_asc_35sl",
                                     "StudyDate": "20140101-20141231"})
    assert set(ts.instances["SeriesDescription"]) == {"ax_asc_35sl"} and len(ts.instances) == 9


def test_incremental_rescan_asks_only_for_new_series(server, tmp_path, files):
    extra = tmp_path / "extra"
    synth.write_series(extra, shape=(3, 8, 8), modality="MR", seed=11)
    with _orthanc.FaultProxy(server.url) as proxy:
        source = _source(server, tmp_path, url=proxy.url + "/dicom-web")
        path = tmp_path / "pacs.parquet"
        first = dicomml.scan(source, catalog=path)
        assert sum("/metadata" in p for p, _, _ in proxy.seen) == len(first.series.groupby(
            "SeriesInstanceUID"))
        proxy.seen.clear()
        again = dicomml.scan(source, catalog=path)
        assert not any("/metadata" in p for p, _, _ in proxy.seen)  # nothing new: no metadata
        assert len(again.instances) == len(first.instances)
        server.upload(sorted(glob.glob(str(extra / "*.dcm"))))
        proxy.seen.clear()
        third = dicomml.scan(source, catalog=path)
        asked = [p for p, _, _ in proxy.seen if "/metadata" in p]
        uid = dicomml.scan(extra, progress=False).instances["SeriesInstanceUID"].iloc[0]
        assert len(asked) == 1 and uid in asked[0]
        assert len(third.instances) == len(first.instances) + 3
        assert dicomml.Catalog.load(path).instances["path"].tolist() == \
            third.instances["path"].tolist()


def test_dataset_two_workers_fetch_each_instance_once(server, tmp_path, remote, local):
    with _orthanc.FaultProxy(server.url) as proxy:
        source = _source(server, tmp_path, url=proxy.url + "/dicom-web")
        cat = dicomml.scan(source).filter(Modality="MR", min_slices=3)
        proxy.seen.clear()
        ds = dicomml.DicomSeriesDataset(cat)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        first = {s["series_key"]: s["image"] for s in loader}
        fetched = [p for p, _, _ in proxy.seen if "/instances/" in p]
        assert len(fetched) == len(set(fetched)) == len(cat.instances)
        proxy.seen.clear()
        second = {s["series_key"]: s["image"] for s in loader}
        assert proxy.seen == []  # the second epoch reads nothing from the network
    disk = dicomml.DicomSeriesDataset(local.filter(Modality="MR", min_slices=3))
    for i in range(len(disk)):
        sample = disk[i]
        assert torch.equal(first[sample["series_key"]], sample["image"])
        assert torch.equal(second[sample["series_key"]], sample["image"])


def test_spawned_workers_find_the_server_without_worker_init_fn(server, tmp_path, local):
    """A ``spawn`` DataLoader worker starts a fresh interpreter, where no DicomWebSource was
    created: it used to fail with "no DicomWebSource for this URL in this process" unless the
    user re-created the source in ``worker_init_fn``. The datasets now carry the sources that
    serve their URLs (unpickling one registers it), so both read the server's pixels, equal
    to the files'. (DicomImageDataset also read the headers of multi-frame and LUT images
    from the URL as if it were a file, in any process: now from the local store.)"""
    source = _source(server, tmp_path)
    cat = dicomml.scan(source).filter(Modality="MR", min_slices=3)
    on_disk = local.filter(Modality="MR", min_slices=3)
    for kind, key in ((dicomml.DicomSeriesDataset, "series_key"),
                      (dicomml.DicomImageDataset, "SOPInstanceUID")):
        disk = kind(on_disk)
        expected: dict = {}  # a key may come twice (a series' volumes as samples)
        for i in range(len(disk)):
            expected.setdefault((disk[i][key], disk[i].get("frame")), []).append(disk[i]["image"])
        dataset = kind(cat)
        assert getattr(dataset, "source", dataset).web_sources == (source,)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1,
                                             multiprocessing_context="spawn")
        samples = list(loader)
        assert len(samples) == len(dataset)
        seen = {(sample[key], sample.get("frame")) for sample in samples}
        assert set(expected) <= seen  # (the server may hold series other tests added)
        for sample in samples:
            found = expected.get((sample[key], sample.get("frame")), [])
            assert not found or any(torch.equal(sample["image"], image) for image in found)


def test_volume_cache_on_a_dicomweb_catalog(server, tmp_path, remote):
    ds = dicomml.DicomSeriesDataset(remote.filter(Modality="CT"), cache_dir=tmp_path / "cache")
    a = ds[0]["image"]
    b = dicomml.DicomSeriesDataset(remote.filter(Modality="CT"),
                                   cache_dir=tmp_path / "cache")[0]["image"]
    assert torch.equal(a, b) and any((tmp_path / "cache").rglob("*"))


def test_wrong_password_is_an_authentication_error(server, tmp_path):
    source = DicomWebSource(server.dicomweb_url, auth=(_orthanc.USER, "wrong-password-42"),
                            store=tmp_path, progress=False)
    with pytest.raises(DicomWebAuthError, match="refused the credentials") as err:
        dicomml.scan(source)
    assert "wrong-password-42" not in str(err.value) and err.value.status == 401
    assert err.value.path.startswith(server.dicomweb_url)


def test_bearer_token_and_custom_headers_are_sent(server, tmp_path):
    with _orthanc.FaultProxy(server.url) as proxy:
        source = DicomWebSource(proxy.url + "/dicom-web", token="tok-123-secret",
                                headers={"X-Api-Key": "k-456"}, store=tmp_path, progress=False)
        with pytest.raises(DicomWebAuthError) as err:  # Orthanc knows no bearer tokens
            dicomml.scan(source, progress=False)
        sent = proxy.headers[0]
    assert sent["Authorization"] == "Bearer tok-123-secret" and sent["X-Api-Key"] == "k-456"
    assert "tok-123" not in str(err.value) and "tok-123" not in repr(source)


def test_credentials_never_printed_logged_or_stored(server, tmp_path, caplog, capsys):
    user, password = server.auth
    url = server.dicomweb_url.replace("http://", f"http://{user}:{password}@")
    caplog.set_level(logging.DEBUG)
    source = DicomWebSource(url, store=tmp_path / "store", progress=True)
    path = tmp_path / "cat.parquet"
    cat = dicomml.scan(source, catalog=path, query={"Modality": "CT"})
    dicomml.load_series(cat, cat.series.series_key[0])
    out = capsys.readouterr()
    texts = [repr(source), caplog.text, out.out, out.err, cat.root]
    for file in [path, *(tmp_path / "store").rglob("*")]:
        if file.is_file():
            texts.append(file.read_bytes().decode("latin-1"))
    assert all(password not in text for text in texts)
    assert cat.instances["path"].str.startswith(server.dicomweb_url).all()


def test_server_restarted_during_an_epoch(server, tmp_path):
    source = _source(server, tmp_path, backoff_s=0.2, retries=8)
    cat = dicomml.scan(source).filter(Modality="MR")
    ds = dicomml.DicomSeriesDataset(cat)
    samples = [ds[0]]
    server.command("stop")
    try:
        import threading

        threading.Timer(1.0, server.command, args=("start",), kwargs={"wait": False}).start()
        samples += [ds[i] for i in range(1, len(ds))]  # retried until the server is back
    finally:
        server.wait_ready()
    assert len(samples) == len(ds) and all(s["image"].numel() > 0 for s in samples)


def test_server_stopped_for_good_is_a_typed_error(server, tmp_path):
    source = _source(server, tmp_path, retries=2, backoff_s=0.05)
    cat = dicomml.scan(source).filter(Modality="CT")
    server.command("stop")
    try:
        with pytest.raises(DicomWebUnavailableError, match="after 3 attempt") as err:
            dicomml.load_series(cat, cat.series.series_key[0])
        assert err.value.path.startswith(server.dicomweb_url + "/studies/")
    finally:
        server.command("start")


def _store_is_whole(root) -> None:
    """Every stored object's name is the hash of its bytes; no half-written file is left."""
    objects = list((root / "objects").rglob("*")) if (root / "objects").exists() else []
    assert not [p for p in root.rglob(".part-*")]
    for path in objects:
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem


@pytest.mark.parametrize("fault", ["429", "503", "truncate", "content-type", "slow"])
def test_faults_are_retried_and_nothing_corrupt_is_stored(server, tmp_path, remote, local, fault):
    with _orthanc.FaultProxy(server.url, slow_s=2.0, retry_after=1) as proxy:
        source = _source(server, tmp_path, url=proxy.url + "/dicom-web", timeout=1.0,
                         concurrency=1)  # one request at a time: the faults hit one URL
        cat = dicomml.scan(source, query={"Modality": "CT"})
        proxy.faults = [fault] * 2
        proxy.seen.clear()
        vol = dicomml.load_series(cat, cat.series.series_key[0])
        tried = [(path, f, t) for path, f, t in proxy.seen if "/instances/" in path]
    assert [f for _, f, _ in tried[:3]] == [fault, fault, None]
    assert tried[0][0] == tried[1][0] == tried[2][0]  # the same instance, retried
    if fault == "429":  # Retry-After: 1 honoured although the backoff asks for 0.05 s
        assert tried[1][2] - tried[0][2] >= 0.9
    assert np.array_equal(vol.array, dicomml.load_series(local, cat.series.series_key[0]).array)
    _store_is_whole(tmp_path / "store")


def test_a_fault_every_time_is_a_typed_error_naming_the_url(server, tmp_path, remote):
    with _orthanc.FaultProxy(server.url) as proxy:
        source = _source(server, tmp_path, url=proxy.url + "/dicom-web", retries=1)
        cat = dicomml.scan(source, query={"Modality": "CT"})
        proxy.faults = ["truncate"] * 50
        with pytest.raises(DicomWebResponseError, match="after 2 attempt") as err:
            dicomml.load_series(cat, cat.series.series_key[0])
        assert err.value.path.startswith(proxy.url + "/dicom-web/studies/")
    _store_is_whole(tmp_path / "store")
    assert not list((tmp_path / "store").rglob("*.json"))


def test_transfer_syntax_fallback(server, tmp_path, remote, local):
    """Orthanc 1.10 cannot transcode to JPEG 2000 (it answers 500): Explicit VR Little Endian
    is asked for next, and the volume is the files' one."""
    with _orthanc.FaultProxy(server.url) as proxy:
        source = _source(server, tmp_path, url=proxy.url + "/dicom-web", concurrency=1,
                         transfer_syntax="1.2.840.10008.1.2.4.90")
        cat = dicomml.scan(source, query={"Modality": "CT"}, progress=False)
        key = cat.series.series_key[0]
        proxy.headers.clear()
        vol = dicomml.load_series(cat, key)
        asked = [h.get("Accept", "") for h in proxy.headers]
    assert "transfer-syntax=1.2.840.10008.1.2.4.90" in asked[0]
    assert "transfer-syntax=1.2.840.10008.1.2.1" in asked[1]
    entry = InstanceStore(tmp_path / "store").get(cat.instances["path"].iloc[0])
    assert entry["transfer_syntax"] == "1.2.840.10008.1.2.1"
    assert np.array_equal(vol.array, dicomml.load_series(local, key).array)


def test_cli_scan_and_info_of_a_url(server, tmp_path, monkeypatch, capsys):
    from dicomml.cli import main

    monkeypatch.setenv("DICOMML_WEB_PASSWORD", server.auth[1])
    out = tmp_path / "cat.parquet"
    assert main(["scan", server.dicomweb_url, "-o", str(out), "--user", server.auth[0],
                 "--query", "Modality=CT", "--no-progress", "--store", str(tmp_path / "s")]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert server.dicomweb_url in text and "CT" in text and server.auth[1] not in text
    monkeypatch.setenv("DICOMML_WEB_PASSWORD", "nope")
    assert main(["info", server.dicomweb_url, "--user", server.auth[0]]) == 1
    assert "refused the credentials" in capsys.readouterr().err


def test_store_refuses_a_cut_short_instance(tmp_path):
    from pydicom.data import get_testdata_file

    store = InstanceStore(tmp_path)
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    url = "http://h/dicom-web/studies/1/series/2/instances/3"
    with pytest.raises(DicomWebResponseError, match="unreadable"):
        store.put(url, data[:-2000])
    with pytest.raises(DicomWebResponseError, match="not '9.9'"):
        store.put(url, data, "9.9")
    assert store.get(url) is None and not list(tmp_path.rglob(".part-*"))
    assert store.put(url, data)["size"] == len(data) == os.path.getsize(store.get(url)["path"])


def test_retry_after_header_forms():
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    from dicomml.web.source import retry_after

    class R:
        def __init__(self, value):
            self.headers = {"Retry-After": value} if value is not None else {}

    assert retry_after(R("3")) == 3.0 and retry_after(R(None)) == 0.0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after(R(later)) <= 30
    assert retry_after(R("soon")) == 0.0 and retry_after(None) == 0.0
