"""Scan benchmark: dicomml.scan vs a pydicom loop vs gdcm.Scanner vs reading 4 KiB per file.

Generates (once, cached in the system temp dir, never in the repo) a corpus of small DICOM
files: variants of three real headers (pydicom's CT_small and MR_small, and a Siemens MR
file of ../shared/data when present, with its CSA private headers), each with new UIDs,
positions and instance numbers and a ``--rows`` square pixel matrix (64x64 by default),
100 files per series. Then, in one
run and on a warm page cache, reports files/s for:

- ``read 4 KiB``: open + read the first 4 KiB of every file (the I/O limit);
- ``pydicom loop``: ``pydicom.dcmread(path, stop_before_pixels=True)`` (on a subset);
- ``gdcm.Scanner``: python-gdcm's scanner for the same tags the catalog collects;
- ``dicomml.scan`` with 1 worker and with all cores;
- header parsing alone on a 5,000-file subset: in-process, a process pool, a thread pool
  (what decided processes over threads);
- the incremental rescan of the unchanged corpus (``scan(root, catalog=path)`` again);

and prints the ratios against gdcm.Scanner, the pydicom loop and the first scan, and where the
time of the parallel scan goes (CPU of the calling process and of the workers; wall time of
each stage of a 1-worker and an all-cores scan, and the speed-up its serial stages allow).

Usage::

    python benchmarks/bench_scan.py                  # 20,000 64x64 files
    python benchmarks/bench_scan.py --files 2000     # a quick look
    python benchmarks/bench_scan.py --files 5000 --rows 512 --repeat 3   # best of 3 rounds
"""

from __future__ import annotations

import argparse
import copy
import glob
import io
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
CORPUS_VERSION = 2
PER_SERIES = 100


def _templates(rows: int) -> list[pydicom.Dataset]:
    paths = [get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")]
    siemens = sorted(glob.glob(str(REPO.parent / "shared" / "data" / "dcm_qa_decubitus" /
                                   "In" / "HFS" / "3_*" / "*.dcm")))
    paths += siemens[:1]
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.Rows = ds.Columns = rows
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = (np.arange(rows * rows) % 4096).astype(np.uint16).tobytes()
        out.append(ds)
    return out


_UID_MARK = "1.2.826.0.1.3680043.8.498.77777777777777777777777"
_INSTANCE_MARK = "987654321"
_Z_MARK = "-7777.77777"


def _series_bytes(template: pydicom.Dataset, series: int) -> bytes:
    """One series' file bytes with fixed-width placeholders for the per-file values."""
    ds = copy.deepcopy(template)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID = f"BENCH{series // 4:04d}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _UID_MARK
    ds.InstanceNumber = _INSTANCE_MARK
    ds.ImagePositionPatient = ["0.0", "0.0", _Z_MARK]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    assert data.count(_UID_MARK.encode()) == 2 and data.count(_INSTANCE_MARK.encode()) == 1
    return data


def make_corpus(n_files: int, rows: int = 64) -> Path:
    """The cached corpus folder with ``n_files`` files (built when missing).

    Each series is serialized once by pydicom; its files differ by fixed-width values
    (SOP Instance UID, Instance Number, slice position) patched into those bytes.
    """
    root = Path(tempfile.gettempdir()) / \
        f"dicomml_bench_scan_v{CORPUS_VERSION}_{n_files}_{rows}x{rows}"
    done = root.with_name(root.name + ".complete")
    if done.exists() and root.is_dir():
        return root
    templates = _templates(rows)
    start = time.perf_counter()
    prefix = generate_uid()[:40]
    for s in range(0, n_files, PER_SERIES):
        series = s // PER_SERIES
        data = _series_bytes(templates[series % len(templates)], series)
        folder = root / f"BENCH{series // 4:04d}" / f"series{series:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(min(PER_SERIES, n_files - s)):
            uid = f"{prefix}.{s + i}"
            uid = uid + "." + "1" * (len(_UID_MARK) - len(uid) - 1)
            out = data.replace(_UID_MARK.encode(), uid.encode())
            out = out.replace(_INSTANCE_MARK.encode(), f"{i + 1:9d}".encode())
            out = out.replace(_Z_MARK.encode(), f"{2.5 * i:11.5f}".encode())
            (folder / f"IM{i:05d}").write_bytes(out)
    done.write_text("ok")
    print(f"corpus: wrote {n_files} files in {time.perf_counter() - start:.0f} s to {root}")
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("IM*"))


class Clock:
    """Wall-clock and CPU time (this process) of a block: on a shared machine the CPU time
    of single-process methods is the steadier figure."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.children = _children_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.children = _children_cpu() - self.children


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (pool workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_read_4k(files) -> Clock:
    with Clock() as clock:
        for path in files:
            with open(path, "rb") as handle:
                handle.read(4096)
    return clock


def time_pydicom(files) -> Clock:
    with Clock() as clock:
        for path in files:
            pydicom.dcmread(path, stop_before_pixels=True)
    return clock


def time_gdcm(files) -> Clock | None:
    try:
        import gdcm
    except ImportError:
        return None
    from dicomml.catalog.tags import WANTED

    scanner = gdcm.Scanner()
    for tag in WANTED:
        scanner.AddTag(gdcm.Tag(tag >> 16, tag & 0xFFFF))
    names = gdcm.FilenamesType()
    for path in files:
        names.append(path)
    with Clock() as clock:
        if not scanner.Scan(names):
            raise RuntimeError("gdcm.Scanner failed")
    return clock


def time_scan(root, **kwargs) -> tuple[Clock, object]:
    from dicomml.catalog import scan

    with Clock() as clock:
        cat = scan(root, progress=False, **kwargs)
    return clock, cat


def time_parse_only(files, workers: int, kind: str) -> Clock:
    """Header parsing alone (no tables): serial, a process pool, or a thread pool."""
    from dicomml.catalog import parallel

    items = [(p, os.path.getsize(p), 0) for p in files]
    below, parallel.IN_PROCESS_BELOW = parallel.IN_PROCESS_BELOW, 0
    try:
        with Clock() as clock:
            parallel.parse_files(items, workers=workers, progress=False, kind=kind)
    finally:
        parallel.IN_PROCESS_BELOW = below
    return clock


def stage_times(root, workers: int, repeat: int = 3) -> dict[str, float]:
    """Wall seconds of each stage of ``scan(root, workers=workers)`` (best of ``repeat``):
    ``walk``, ``parse`` (headers to typed tables: pool start, workers, joining),
    ``split`` (series assignment), ``summary`` (the series table) and ``other`` (the rest:
    reuse bookkeeping, the Catalog itself)."""
    from dicomml.catalog import scanner

    names = {"walk": "_walk_all", "parse": "parse_to_frames", "split": "assign_series",
             "summary": "summarize_series"}
    best: dict[str, float] | None = None
    originals = {stage: getattr(scanner, name) for stage, name in names.items()}
    try:
        for _ in range(max(1, repeat)):
            spent = dict.fromkeys(names, 0.0)

            def timed(stage, function, spent=spent):
                def run(*args, **kwargs):
                    start = time.perf_counter()
                    try:
                        return function(*args, **kwargs)
                    finally:
                        spent[stage] += time.perf_counter() - start
                return run

            for stage, name in names.items():
                setattr(scanner, name, timed(stage, originals[stage]))
            start = time.perf_counter()
            scanner.scan(root, workers=workers, progress=False)
            spent["total"] = time.perf_counter() - start
            spent["other"] = spent["total"] - sum(spent[k] for k in names)
            if best is None or spent["total"] < best["total"]:
                best = spent
    finally:
        for stage, name in names.items():
            setattr(scanner, name, originals[stage])
    return best


def _report_stages(root, cores: int, repeat: int) -> None:
    """Where the time of a 1-worker and a ``cores``-worker scan goes, and the speed-up the
    serial stages allow (Amdahl: only ``parse`` runs on several cores)."""
    one, many = stage_times(root, 1, repeat), stage_times(root, cores, repeat)
    print(f"\nstages (ms, best of {repeat})   {'1 worker':>10s} {f'{cores} workers':>10s}")
    for stage in ("walk", "parse", "split", "summary", "other", "total"):
        print(f"  {stage:28s} {one[stage] * 1000:10.1f} {many[stage] * 1000:10.1f}")
    serial = one["total"] - one["parse"]
    print(f"  {cores} workers / 1 worker: {one['total'] / many['total']:.2f}x; parse alone "
          f"{one['parse'] / many['parse']:.2f}x; with a perfect {cores}x parse the serial "
          f"stages ({serial * 1000:.0f} ms) allow {one['total'] / (serial + one['parse'] / cores):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=64,
                        help="Rows = Columns of every file's pixel matrix (64: small files, "
                        "512: 512 KiB CT-like slices)")
    parser.add_argument("--pydicom-files", type=int, default=2_000,
                        help="subset timed for the (slow) pydicom loop")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every method, interleaved; the best wall time of each "
                        "is kept (a shared machine)")
    args = parser.parse_args()
    from dicomml.catalog.parallel import default_workers

    root = make_corpus(args.files, args.rows)
    files = _files(root)
    n, cores = len(files), default_workers()
    print(f"{n} files in {root} ({sum(os.path.getsize(f) for f in files) / 2**20:.0f} MiB), "
          f"{cores} cores, best of {args.repeat}")
    time_read_4k(files)  # warm the page cache for everyone
    results: dict[str, tuple[int, Clock, bool]] = {}  # name -> (files, clock, cpu comparable)
    for _ in range(max(1, args.repeat)):
        for name, count, clock, cpu_ok in _round(root, files, cores, args.pydicom_files):
            if name not in results or clock.wall < results[name][1].wall:
                results[name] = (count, clock, cpu_ok)
    _report(results, cores)
    _report_stages(root, cores, max(3, args.repeat))


def _round(root, files, cores: int, pydicom_files: int):
    """One timing of every method: ``(name, files, Clock, CPU time comparable)``."""
    n = len(files)
    yield "read 4 KiB", n, time_read_4k(files), True
    sub = files[:: max(1, n // pydicom_files)]
    yield "pydicom loop", len(sub), time_pydicom(sub), True
    gdcm_clock = time_gdcm(files)
    if gdcm_clock is not None:
        yield "gdcm.Scanner", n, gdcm_clock, True
    one, cat = time_scan(root, workers=1)
    assert len(cat.instances) == n and cat.errors.empty, "every corpus file must be indexed"
    yield "dicomml.scan 1 worker", n, one, True
    yield f"dicomml.scan {cores} workers", n, time_scan(root, workers=cores)[0], False
    sub = files[:: max(1, n // 5000)]
    yield "parse only, 1 process", len(sub), time_parse_only(sub, 1, "process"), True
    yield f"parse only, {cores} processes", len(sub), time_parse_only(sub, cores, "process"), \
        False
    yield f"parse only, {cores} threads", len(sub), time_parse_only(sub, cores, "thread"), True
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "catalog.parquet")
        yield f"first scan to catalog x{cores}", n, time_scan(root, workers=cores,
                                                              catalog=store)[0], False
        yield "rescan (unchanged)", n, time_scan(root, workers=cores, catalog=store)[0], True


def _report(results: dict, cores: int) -> None:
    wall = {k: n / c.wall for k, (n, c, _) in results.items()}
    cpu = {k: n / c.cpu for k, (n, c, ok) in results.items() if ok and c.cpu > 0}
    print(f"\n{'method':32s} {'files/s (wall)':>15s} {'files/s (CPU)':>15s}")
    for name in results:
        cpu_text = f"{cpu[name]:15.0f}" if name in cpu else f"{'-':>15s}"
        print(f"{name:32s} {wall[name]:15.0f} {cpu_text}")
    one = "dicomml.scan 1 worker"

    def ratio(label, a, b, note=""):
        line = f"  {label:40s} wall {wall[a] / wall[b]:7.2f}x"
        if a in cpu and b in cpu:
            line += f"   CPU {cpu[a] / cpu[b]:7.2f}x"
        print(line + (f"   {note}" if note else ""))

    print("\nratios")
    if "gdcm.Scanner" in results:
        ratio("dicomml 1 worker / gdcm.Scanner", one, "gdcm.Scanner", "(target >= 1)")
        ratio("gdcm.Scanner / pydicom loop", "gdcm.Scanner", "pydicom loop")
    ratio("dicomml 1 worker / pydicom loop", one, "pydicom loop")
    ratio(f"dicomml {cores} workers / 1 worker", f"dicomml.scan {cores} workers", one,
          f"(ideal {cores})")
    ratio(f"parse: {cores} processes / 1 process", f"parse only, {cores} processes",
          "parse only, 1 process", f"(ideal {cores})")
    ratio(f"parse: {cores} threads / 1 process", f"parse only, {cores} threads",
          "parse only, 1 process")
    ratio("dicomml 1 worker / read 4 KiB", one, "read 4 KiB")
    many = results[f"dicomml.scan {cores} workers"][1]
    print(f"  dicomml.scan {cores} workers: calling process {many.cpu:.3f} s CPU (walk, tables, "
          f"series split, results), workers {many.children:.3f} s CPU; on {cores} idle cores "
          f"at best {many.cpu + many.children / cores:.3f} s wall, i.e. "
          f"{results[one][1].cpu / (many.cpu + many.children / cores):.2f}x 1 worker's CPU time")
    ratio("rescan / first scan to catalog", "rescan (unchanged)",
          f"first scan to catalog x{cores}", "(target >= 50)")
    ratio("rescan / dicomml 1 worker", "rescan (unchanged)", one)


if __name__ == "__main__":
    main()
