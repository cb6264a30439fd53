"""Benchmark: series retrieval over DICOMweb (a real Orthanc on 127.0.0.1) against the disk.

In one run, on the same synthetic series (``dicomml.synth``, uncompressed CT, written to a
temporary folder and uploaded to an Orthanc started by ``tests/_orthanc.py``):

- ``disk read``: the series' files read whole from the page cache (the floor);
- ``disk load_series``: ``load_series`` from a folder catalog;
- ``web fetch cold, N``: every instance retrieved with WADO-RS into an empty store, at most N
  requests in flight (N = 1, 4, 8), MB/s of DICOM files stored;
- ``web load_series cold / warm``: ``load_series`` of the DICOMweb catalog with an empty store
  (retrieval + decode) and with the store filled (no request);
- ``epoch 1 / epoch 2``: a ``DicomSeriesDataset`` over ``--series`` series of the DICOMweb
  catalog through a DataLoader with 2 workers: the first epoch retrieves, the second reads the
  store only.

MB/s count the bytes of the DICOM files. Times are the best of ``--repeat`` (cold runs start
from a new store each time). Needs Orthanc and its DICOMweb plugin (Debian: ``apt-get install
orthanc orthanc-dicomweb``) and root (the server runs in a private network namespace).

Run::

    python benchmarks/bench_dicomweb.py                       # 4 series of 60 x 512 x 512
    python benchmarks/bench_dicomweb.py --slices 20 --series 2 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout
sys.path.insert(0, str(REPO / "tests"))  # the Orthanc launcher


def best(function, repeat: int, setup=None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import _orthanc
    import torch

    import dicomml
    from dicomml import synth
    from dicomml.web import DicomWebSource, fetch_all

    work = Path(tempfile.mkdtemp(prefix="bench-dicomweb-"))
    try:
        for i in range(args.series):
            synth.write_series(work / "data" / f"s{i}", shape=(args.slices, args.rows, args.rows),
                               seed=i, series_number=i + 1)
        files = sorted(glob.glob(str(work / "data" / "*" / "*.dcm")))
        first = [f for f in files if "/s0/" in f]
        nbytes = sum(os.path.getsize(f) for f in first)
        with _orthanc.Orthanc(str(work / "orthanc")) as server:
            server.upload(files)
            rows = []

            def mbps(seconds: float) -> str:
                return f"{nbytes / seconds / 1e6:8.1f} MB/s"

            def read_disk():
                for f in first:
                    with open(f, "rb") as handle:
                        handle.read()

            read_disk()
            t = best(read_disk, args.repeat)
            rows.append(("disk read (page cache)", t, mbps(t)))
            local = dicomml.scan(str(work / "data" / "s0"), progress=False)
            key = local.series.series_key[0]
            dicomml.load_series(local, key)
            t = best(lambda: dicomml.load_series(local, key), args.repeat)
            rows.append(("disk load_series", t, mbps(t)))

            store = work / "store"

            def source(concurrency: int) -> DicomWebSource:
                return DicomWebSource(server.dicomweb_url, auth=server.auth, store=store,
                                      concurrency=concurrency, progress=False)

            def empty_store():
                shutil.rmtree(store, ignore_errors=True)

            cat = dicomml.scan(source(4), progress=False)
            one = cat.instances[cat.instances["SeriesInstanceUID"] ==
                                local.instances["SeriesInstanceUID"].iloc[0]]
            urls = one["path"].tolist()
            for concurrency in (1, 4, 8):
                source(concurrency)  # registered: the latest source serves the URLs
                t = best(lambda: fetch_all(urls), args.repeat, setup=empty_store)
                rows.append((f"web fetch cold, {concurrency} concurrent", t, mbps(t)))
                t = best(lambda: fetch_all(urls), args.repeat)
                rows.append((f"web fetch warm, {concurrency} concurrent", t, mbps(t)))
            source(4)
            t = best(lambda: dicomml.load_series(cat, key), args.repeat, setup=empty_store)
            rows.append(("web load_series cold (4 concurrent)", t, mbps(t)))
            t = best(lambda: dicomml.load_series(cat, key), args.repeat)
            rows.append(("web load_series warm", t, mbps(t)))

            empty_store()
            loader = torch.utils.data.DataLoader(dicomml.DicomSeriesDataset(cat),
                                                 batch_size=None, num_workers=2)
            for epoch in (1, 2):
                start = time.perf_counter()
                count = sum(1 for _ in loader)
                t = time.perf_counter() - start
                rows.append((f"epoch {epoch}: {count} series, 2 workers", t,
                             f"{count / t:8.2f} series/s"))
        print(f"series: {args.slices} x {args.rows} x {args.rows} uint16, "
              f"{len(first)} files, {nbytes / 1e6:.1f} MB; {args.series} series in the epoch")
        for name, seconds, rate in rows:
            print(f"{name:40s} {seconds * 1000:9.1f} ms {rate}")
        base = rows[1][1]
        print(f"web load_series cold / disk load_series: {rows[-4][1] / base:.1f}x; "
              f"warm / disk: {rows[-3][1] / base:.2f}x; epoch 1 / epoch 2: "
              f"{rows[-2][1] / rows[-1][1]:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
