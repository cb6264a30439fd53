"""Benchmark: load a 512x512x300 uncompressed CT series.

Compares, on the same series in one run (page cache warm, best of ``--repeat``):

- ``dicomml``: ``load_series(catalog, key)`` with the catalog's pixel data offsets
  (float32, rescaled — twice the bytes of the stored int16 — and ``dtype=None``, the stored
  integers: the same bytes as the page-cache read; the catalog is built beforehand, not timed);
- SimpleITK ``ImageSeriesReader`` (GDCM);
- MONAI ``LoadImage(reader="PydicomReader")`` (``pip install monai``; skipped when absent);
- a plain pydicom loop (dcmread + pixel_array, sort by position, rescale to float32);
- the floor: the same pixel bytes read from page cache (single thread, ``readinto`` at the
  known offsets, no conversion) into a buffer allocated in the timed call, as dicomml
  allocates its output there: one floor per output dtype, with a buffer of that output's byte
  size (int16 for ``dtype=None``; float32, twice the bytes, for the default — the bytes land
  in the first half of each slice's float32 slot, so the floor pays the reading and the
  first-touch page faults of an output-sized allocation, but no conversion).

Each dicomml path is compared with the floor of its own output size. Times are the best of
``--repeat`` wall-clock runs; the process CPU time (``time.process_time``, all threads) of
the best run is printed too, since the machine may be shared.

Prints the times and the ratios against the targets: dicomml >= 3x faster than the fastest
peer, and within 1.5x of the page-cache read. The series is written with ``dicomml.synth``
into a temporary folder (or ``--folder``), removed afterwards unless ``--keep``.

Run::

    python benchmarks/bench_load.py                 # 512x512x300, 3 repeats
    python benchmarks/bench_load.py --slices 60     # quick check
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def best_time(function, repeat: int) -> tuple[float, object]:
    function()  # warm-up: page cache, imports
    times, result = [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = function()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    best = min(times)
    best_time.last_cpu = best[1]
    return best[0], result


def write_series(folder: Path, slices: int, rows: int) -> None:
    from dicomml import synth

    synth.write_series(folder, modality="CT", shape=(slices, rows, rows),
                       spacing=(1.0, 0.7, 0.7), signed=True, seed=0)


def load_dicomml(catalog, key, threads, dtype="float32"):
    import dicomml

    return lambda: dicomml.load_series(catalog, key, threads=threads, dtype=dtype).array


def load_sitk(folder: Path):
    import SimpleITK as sitk

    def run():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        return sitk.GetArrayFromImage(reader.Execute())
    return run


def load_monai(folder: Path):
    from monai.transforms import LoadImage

    loader = LoadImage(reader="PydicomReader", image_only=True)
    return lambda: np.asarray(loader(str(folder)))


def load_pydicom(files: list[str]):
    import pydicom

    def run():
        datasets = [pydicom.dcmread(f) for f in files]
        normal = np.cross(*np.reshape(datasets[0].ImageOrientationPatient, (2, 3)))
        datasets.sort(key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
        return np.stack([ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope)
                         + float(ds.RescaleIntercept) for ds in datasets])
    return run


def read_page_cache(instances, dtype=np.int16):
    """Read every file's int16 pixel bytes into a fresh (slices, rows, columns) array of
    ``dtype`` (the output's byte size); for float32 the bytes fill the first half of each
    slot (raw bytes, not converted values)."""
    paths = instances["path"].tolist()
    offsets = instances["pixel_data_offset"].astype(int).tolist()
    rows, columns = int(instances["Rows"].iloc[0]), int(instances["Columns"].iloc[0])
    nbytes = rows * columns * 2

    def run():
        out = np.empty((len(paths), rows, columns), dtype=dtype)
        for i, (path, offset) in enumerate(zip(paths, offsets)):
            with open(path, "rb", buffering=0) as handle:
                handle.seek(offset)
                handle.readinto(memoryview(out[i]).cast("B")[:nbytes])
        return out
    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512, help="rows = columns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="dicomml reader threads")
    parser.add_argument("--folder", type=Path, help="use/keep the series here")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sitk", "monai", "pydicom"])
    args = parser.parse_args(argv)

    import dicomml

    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_load_")) / "ct"
    try:
        if not folder.exists() or not any(folder.iterdir()):
            start = time.perf_counter()
            write_series(folder, args.slices, args.rows)
            print(f"wrote {args.slices} x {args.rows} x {args.rows} in "
                  f"{time.perf_counter() - start:.1f} s: {folder}")
        catalog = dicomml.scan(folder, progress=False)
        key = catalog.instances["series_key"].iloc[0]
        instances = catalog.instances
        size_mb = instances["pixel_data_length"].sum() / 1e6
        print(f"{len(instances)} files, {size_mb:.0f} MB of pixel data; best of {args.repeat}")

        results, cpu = {}, {}

        def timed(label, function):
            seconds, result = best_time(function, args.repeat)
            results[label], cpu[label] = seconds, best_time.last_cpu
            return seconds, result

        floor, raw = timed("page-cache read (int16 buffer)", read_page_cache(instances))
        floor32, _ = timed("page-cache read (float32 buffer)",
                           read_page_cache(instances, np.float32))
        ours, array = timed("dicomml (float32, rescaled)",
                            load_dicomml(catalog, key, args.threads))
        stored, _ = timed("dicomml (dtype=None: stored int16)",
                          load_dicomml(catalog, key, args.threads, None))
        peers = {}
        candidates = {"sitk": ("SimpleITK ImageSeriesReader", lambda: load_sitk(folder)),
                      "monai": ('MONAI LoadImage("PydicomReader")', lambda: load_monai(folder)),
                      "pydicom": ("pydicom loop", lambda: load_pydicom(
                          instances["path"].tolist()))}
        for name, (label, make) in candidates.items():
            if name in args.skip:
                continue
            try:
                function = make()
            except ImportError as exc:
                print(f"{label}: skipped ({exc})")
                continue
            peers[label], other = timed(label, function)
            assert np.asarray(other).size == array.size, (label, np.asarray(other).shape)
        print(f"  {'':34s} {'wall':>9s}    {'cpu':>9s}")
        for label, seconds in results.items():
            print(f"  {label:34s} {seconds * 1000:9.1f} ms {cpu[label] * 1000:9.1f} ms")
        if peers:
            fastest = min(peers, key=peers.get)
            speedup = peers[fastest] / ours
            print(f"dicomml vs fastest peer ({fastest}): {speedup:.2f}x faster "
                  f"(target >= 3x: {'met' if speedup >= 3 else 'NOT met'})")
        for label, seconds, base, size in (("float32", ours, floor32, "float32"),
                                           ("stored int16", stored, floor, "int16")):
            ratio = seconds / base
            print(f"dicomml ({label}) / page-cache read into a {size} buffer: {ratio:.2f}x "
                  f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}); "
                  f"vs the int16 buffer: {seconds / floor:.2f}x")
        assert raw.shape == array.shape
    finally:
        if not args.keep and args.folder is None:
            shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
