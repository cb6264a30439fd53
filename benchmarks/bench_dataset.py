"""Benchmark: one epoch of DicomSeriesDataset vs MONAI and TorchIO, plus the page-cache limit.

One run on a generated corpus of CT series (``dicomml.synth``, uncompressed, 16-bit), every
loader with the same DataLoader settings (``--workers`` fork workers, batch size 1, the
library's own collate), each over one full epoch:

* dicomml uncached (decode every series from its DICOM files), the cold cache (decode and write
  the cache) and the warm cache (read the cache; also with ``cache_mmap=True``);
* MONAI ``Dataset`` + ``LoadImaged(reader="PydicomReader")`` and ``PersistentDataset`` (cold,
  warm), TorchIO ``SubjectsDataset`` of ``ScalarImage(folder)``;
* the limit for the warm cache: reading the cache's bytes from the page cache — in one
  process (``readinto``) and through the same DataLoader (a dataset that only reads the bytes).

All files are read once before timing, so every run reads from the page cache (RAM), not the
disk. Peak memory per worker: after its first sample (a warm-up that also pays the lazy
imports) each worker resets its peak RSS (``/proc/self/clear_refs``) and then reports
``VmHWM - VmRSS after the warm-up`` after every sample (Linux only). Shared-memory pages that a
worker fills for the main process count (they are part of its RSS until handed over).

Runs through worker processes are timed over one epoch (worker start included); the cheap
in-process runs and raw reads take the best of 3. The machine's load average is printed: on a
shared machine the figures move by tens of percent between runs.

Printed: epoch seconds, volumes/s, MB/s of float32 voxels, peak MB per worker, and the targets:
uncached >= 3x MONAI ``Dataset``; warm cache <= 1.5x the page-cache read; peak per worker
<= 2 volumes.

Run::

    python benchmarks/bench_dataset.py                     # 10 series of 100 x 256 x 256
    python benchmarks/bench_dataset.py --series 4 --slices 40 --workers 2   # quick look
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dicomml  # noqa: E402
from dicomml.dataset import DicomSeriesDataset, collate  # noqa: E402


# ---------------------------------------------------------------------------- peak memory
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakMemory(torch.utils.data.Dataset):
    """Wraps a dataset; each worker records its peak RSS growth (bytes) in ``peaks``.

    A worker's first call loads its sample once and drops it (a warm-up that pays the lazy
    imports), resets the peak RSS and takes the RSS as the baseline, then loads it again.
    """

    def __init__(self, dataset, peaks):
        self.dataset, self.peaks = dataset, peaks
        self.baseline_kb = None

    def __len__(self):
        return len(self.dataset)

    def _reset(self, index):
        warm = self.dataset[index]
        del warm
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # peak RSS := current RSS
        self.baseline_kb = _status_kb("VmRSS")

    def __getitem__(self, index):
        if self.baseline_kb is None:
            self._reset(index)
        item = self.dataset[index]
        info = torch.utils.data.get_worker_info()
        slot = info.id if info is not None else 0
        grown = (_status_kb("VmHWM") - self.baseline_kb) * 1024
        with self.peaks.get_lock():
            self.peaks[slot] = max(self.peaks[slot], grown)
        return item


# ---------------------------------------------------------------------------- corpus
def write_corpus(folder: Path, n_series: int, slices: int, size: int) -> list[Path]:
    """``n_series`` CT series of (slices, size, size), one folder each (reused if present)."""
    folders = [folder / f"series{i:02d}" for i in range(n_series)]
    for i, target in enumerate(folders):
        if (target / "done").exists():
            continue
        shutil.rmtree(target, ignore_errors=True)
        dicomml.synth.write_series(target / "dicom", modality="CT", shape=(slices, size, size),
                                   spacing=(1.25, 0.7, 0.7), seed=i, patient_id=f"B{i:03d}",
                                   series_number=i + 1)
        (target / "done").write_text("ok")
    return [f / "dicom" for f in folders]


def read_everything(paths) -> int:
    """Read every file once (puts them in the page cache); returns bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                total += len(chunk)
    return total


# ---------------------------------------------------------------------------- runners
class RawNpy(torch.utils.data.Dataset):
    """The limit: read one cache file's array bytes into a tensor, nothing else."""

    def __init__(self, paths):
        self.paths = [str(p) for p in paths]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        from dicomml.dataset.cache import read_npy

        array = np.load(self.paths[index], mmap_mode="r")  # header only
        spec = {"shape": list(array.shape), "dtype": array.dtype.str}
        return {"image": read_npy(Path(self.paths[index]), spec)}


def raw_read_seconds(paths, *, reuse: bool) -> float:
    """Best of 3: read the array files in this process, into new buffers each time
    (``reuse=False``: pays the page faults of fresh memory, as any reader must) or into the
    same preallocated buffers (``reuse=True``: the copy bandwidth alone)."""
    sizes = [os.path.getsize(p) for p in paths]
    buffers = [bytearray(n) for n in sizes] if reuse else None
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i, path in enumerate(paths):
            with open(path, "rb", buffering=0) as f:
                if reuse:
                    f.readinto(buffers[i])
                else:
                    f.readall()
        best = min(best, time.perf_counter() - start)
    return best


def _loader(dataset, workers: int, collate_fn, loader_cls):
    loader_cls = loader_cls or torch.utils.data.DataLoader
    kwargs = dict(batch_size=1, num_workers=workers, shuffle=False)
    if workers:
        kwargs["multiprocessing_context"] = "fork"
    if collate_fn is not None:
        kwargs["collate_fn"] = collate_fn
    return loader_cls(dataset, **kwargs)


def time_epoch(dataset, *, workers: int, collate_fn=None, loader_cls=None,
               repeat: int = 1) -> dict:
    """The fastest of ``repeat`` timed epochs: seconds, volumes and voxels seen (``peak`` is
    filled by :func:`peak_memory`)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        n, voxels = 0, 0
        for batch in _loader(dataset, workers, collate_fn, loader_cls):
            voxels += _voxels(batch)
            n += 1
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "volumes": n, "voxels": voxels, "peak": float("nan")}


def peak_memory(dataset, *, workers: int, collate_fn=None, loader_cls=None) -> float:
    """An untimed epoch measuring the largest per-worker peak RSS growth (bytes)."""
    peaks = multiprocessing.get_context("fork").Array("d", max(workers, 1))
    for _ in _loader(PeakMemory(dataset, peaks), workers, collate_fn, loader_cls):
        pass
    return max(peaks[:])


def _voxels(batch) -> int:
    if isinstance(batch, dict):
        image = batch["image"]
        if hasattr(image, "data") and not isinstance(image, torch.Tensor):  # TorchIO
            image = image.data
        if isinstance(image, dict):  # TorchIO batch: {"data": tensor, ...}
            image = image["data"]
        return int(image.numel())
    if isinstance(batch, (list, tuple)):
        return sum(_voxels(b) for b in batch)
    raise TypeError(type(batch))


def monai_runs(folders, workdir: Path, workers: int) -> dict:
    from monai.data import DataLoader as MonaiLoader
    from monai.data import Dataset, PersistentDataset
    from monai.transforms import LoadImaged

    items = [{"image": str(f)} for f in folders]
    load = LoadImaged(keys="image", reader="PydicomReader", image_only=True)
    plain = Dataset(items, transform=load)
    out = {"MONAI Dataset + LoadImaged(PydicomReader)":
           time_epoch(plain, workers=workers, loader_cls=MonaiLoader)}
    out["MONAI Dataset + LoadImaged(PydicomReader)"]["peak"] = peak_memory(
        plain, workers=workers, loader_cls=MonaiLoader)
    cache = workdir / "monai_cache"
    shutil.rmtree(cache, ignore_errors=True)
    persistent = PersistentDataset(items, transform=load, cache_dir=cache)
    out["MONAI PersistentDataset (cold)"] = time_epoch(persistent, workers=workers,
                                                      loader_cls=MonaiLoader)
    read_everything(p for p in cache.rglob("*") if p.is_file())
    out["MONAI PersistentDataset (warm)"] = time_epoch(persistent, workers=workers,
                                                      loader_cls=MonaiLoader)
    return out


def torchio_runs(folders, workers: int) -> dict:
    import torchio as tio

    subjects = [tio.Subject(image=tio.ScalarImage(str(f))) for f in folders]
    loader_cls = getattr(tio, "SubjectsLoader", None)
    dataset = tio.SubjectsDataset(subjects)
    result = time_epoch(dataset, workers=workers, loader_cls=loader_cls)
    result["peak"] = peak_memory(dataset, workers=workers, loader_cls=loader_cls)
    return {"TorchIO SubjectsDataset(ScalarImage(folder))": result}


def dicomml_runs(catalog, cache_dir: Path, workers: int) -> tuple[dict, list[Path]]:
    uncached = DicomSeriesDataset(catalog)
    out = {"dicomml uncached": time_epoch(uncached, workers=workers, collate_fn=collate)}
    out["dicomml uncached"]["peak"] = peak_memory(uncached, workers=workers, collate_fn=collate)
    shutil.rmtree(cache_dir, ignore_errors=True)
    cached = DicomSeriesDataset(catalog, cache_dir=cache_dir)
    out["dicomml cache (cold: decode + write)"] = time_epoch(cached, workers=workers,
                                                             collate_fn=collate)
    npys = sorted(cache_dir.rglob("*.image.npy"))
    read_everything(p for p in cache_dir.rglob("*") if p.is_file())
    out["dicomml cache (warm)"] = time_epoch(cached, workers=workers, collate_fn=collate)
    mapped = DicomSeriesDataset(catalog, cache_dir=cache_dir, cache_mmap=True)
    out["dicomml cache (warm, mmap)"] = time_epoch(mapped, workers=workers, collate_fn=collate)
    out["dicomml cache (warm), in-process"] = time_epoch(cached, workers=0, collate_fn=collate,
                                                         repeat=3)
    for name, dataset in (("dicomml cache (warm)", cached), ("dicomml cache (warm, mmap)", mapped)):
        out[name]["peak"] = peak_memory(dataset, workers=workers, collate_fn=collate)
    return out, npys


# ---------------------------------------------------------------------------- report
def report(results: dict, volume_bytes: int, raw: dict, cache_bytes: int) -> None:
    print(f"\n{'run':46s} {'epoch s':>8s} {'vol/s':>7s} {'MB/s':>8s} {'peak MB/worker':>15s}")
    for name, r in results.items():
        mbps = r["voxels"] * 4 / 1e6 / r["seconds"]
        print(f"{name:46s} {r['seconds']:8.2f} {r['volumes'] / r['seconds']:7.2f} {mbps:8.0f} "
              f"{r['peak'] / 1e6:15.1f}")
    for name, seconds in raw.items():
        print(f"{name:46s} {seconds:8.2f} {'':7s} {cache_bytes / 1e6 / seconds:8.0f}")
    t = {k: v["seconds"] for k, v in results.items()}
    monai = t.get("MONAI Dataset + LoadImaged(PydicomReader)")
    print("\ntargets")
    if monai:
        ratio = monai / t["dicomml uncached"]
        print(f"  uncached speed-up vs MONAI Dataset: {ratio:.2f}x (target >= 3x) "
              f"{'OK' if ratio >= 3 else 'MISSED'}")
    pairs = (("dicomml cache (warm)", "page-cache read via DataLoader"),
             ("dicomml cache (warm, mmap)", "page-cache read via DataLoader"),
             ("dicomml cache (warm), in-process", "page-cache read, in-process"))
    for run, limit in pairs:
        ratio = t[run] / t[limit]
        print(f"  {run} / {limit}: {ratio:.2f}x (target <= 1.5x) "
              f"{'OK' if ratio <= 1.5 else 'MISSED'}")
    for name, seconds in raw.items():
        ratio = t["dicomml cache (warm), in-process"] / seconds
        print(f"  dicomml cache (warm), in-process / {name}: {ratio:.2f}x "
              f"{'OK' if ratio <= 1.5 else 'MISSED'}")
    for name, r in results.items():
        if name.startswith("dicomml") and r["peak"] == r["peak"]:
            vols = r["peak"] / volume_bytes
            print(f"  peak per worker, {name}: {vols:.2f} volumes (target <= 2) "
                  f"{'OK' if vols <= 2 else 'MISSED'}")
    for name in ("MONAI PersistentDataset (warm)", "TorchIO SubjectsDataset(ScalarImage(folder))"):
        if name in t:
            print(f"  dicomml warm cache vs {name}: {t[name] / t['dicomml cache (warm)']:.2f}x "
                  "faster")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="work folder (kept, corpus reused); default: a temporary one")
    parser.add_argument("--skip", nargs="*", default=[], choices=["monai", "torchio"])
    args = parser.parse_args(argv)
    keep = args.out is not None
    workdir = args.out or Path(tempfile.mkdtemp(prefix="dicomml-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(args, workdir)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run(args, workdir: Path) -> None:
    print(f"corpus: {args.series} CT series of {args.slices} x {args.size} x {args.size} "
          f"(16-bit, uncompressed) in {workdir}; workers={args.workers}; "
          f"cpus={os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    folders = write_corpus(workdir / "data", args.series, args.slices, args.size)
    print(f"written in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    catalog = dicomml.scan(workdir / "data", progress=False)
    print(f"scan: {len(catalog.instances)} files in {time.perf_counter() - start:.2f} s")
    read_everything(catalog.instances["path"])
    volume_bytes = args.slices * args.size * args.size * 4
    results, npys = dicomml_runs(catalog, workdir / "cache", args.workers)
    cache_bytes = sum(os.path.getsize(p) for p in npys)
    raw = {"bytes read into new buffers, 1 process": raw_read_seconds(npys, reuse=False),
           "bytes readinto reused buffers, 1 process": raw_read_seconds(npys, reuse=True)}
    results["page-cache read via DataLoader"] = time_epoch(RawNpy(npys), workers=args.workers,
                                                           collate_fn=collate)
    results["page-cache read, in-process"] = time_epoch(RawNpy(npys), workers=0,
                                                        collate_fn=collate, repeat=3)
    if "monai" not in args.skip:
        results.update(monai_runs(folders, workdir, args.workers))
    if "torchio" not in args.skip:
        results.update(torchio_runs(folders, args.workers))
    report(results, volume_bytes, raw, cache_bytes)
    print(f"\none volume = {volume_bytes / 1e6:.1f} MB float32; cache = {cache_bytes / 1e6:.0f} MB; "
          f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
