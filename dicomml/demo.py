"""``dicomml demo``: the whole pipeline on embedded synthetic data, in a few seconds.

Four steps, each a function of its own:

1. :func:`write_step` — write a small mixed corpus with :func:`dicomml.synth.write_corpus`
   (3 patients, CT and MR, single- and multi-frame, compressed and not, names in no order);
2. :func:`scan_step` — index it with :func:`dicomml.scan` and print the series table;
3. :func:`load_step` — load one series with :func:`dicomml.load_series`, print its shape,
   spacing and affine, and compare them with the writer's ground truth;
4. :func:`iterate_step` — iterate a ``torch.utils.data.DataLoader`` over
   :class:`dicomml.DicomSeriesDataset` with worker processes for two epochs and print
   volumes/s (the first epoch includes worker start-up; the second is returned).

A step whose module is not installed is reported as skipped, never faked.

Example::

    dicomml demo                  # corpus in a temporary folder, removed afterwards
    dicomml demo --out demo_data  # keep the corpus (DIR must be new or empty)

>>> result = run_demo(n_patients=1, workers=0, say=lambda *a, **k: None)  # doctest: +SKIP
>>> result.volumes_per_second > 0                                        # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

STEPS = 4
TABLE_COLUMNS = ("PatientID", "Modality", "SeriesNumber", "SeriesDescription", "n_instances",
                 "n_slices", "n_volumes", "Rows", "Columns")


@dataclass
class DemoResult:
    """What the demo did: the corpus folder, each step's output, timings (s), skipped steps."""

    folder: pathlib.Path
    corpus: list = field(default_factory=list)
    catalog: object = None
    volume: object = None
    truth: object = None
    volumes_per_second: float | None = None
    seconds: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)


def register(subparsers) -> None:
    """Add the ``demo`` command to the ``dicomml`` command line."""
    parser = subparsers.add_parser(
        "demo", help="write a synthetic corpus, scan, load and iterate it",
        description="Write a small synthetic corpus of CT and MR series, scan it, load one "
                    "series and compare it with the writer's ground truth, then iterate a "
                    "DataLoader over the corpus, in a few seconds.")
    parser.add_argument("--out", metavar="DIR",
                        help="write the corpus into DIR, which must be new or empty "
                             "(default: a temporary folder, removed afterwards)")
    parser.add_argument("--patients", type=int, default=3, metavar="N",
                        help="number of synthetic patients (4 series each; default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="DataLoader worker processes (default 2; 0 = main process)")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.out is not None:
        out = pathlib.Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            print(f"dicomml demo: error: {out} exists and is not an empty folder; "
                  "choose a new or empty one", file=sys.stderr)
            return 2
    if args.patients < 1:
        print("dicomml demo: error: --patients must be at least 1", file=sys.stderr)
        return 2
    run_demo(args.out, n_patients=args.patients, seed=args.seed, workers=args.workers)
    return 0


def run_demo(folder=None, *, n_patients: int = 3, seed: int = 0, workers: int = 2,
             say=print) -> DemoResult:
    """Run the four steps on a corpus written to ``folder`` (default: a temporary folder,
    removed afterwards) and return a :class:`DemoResult`. ``say`` prints each line."""
    started = time.perf_counter()
    say("dicomml demo: synthetic DICOM -> catalog -> Volume -> DataLoader", flush=True)
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="dicomml-demo-") as tmp:
            result = _run_steps(pathlib.Path(tmp), n_patients, seed, workers, say)
    else:
        result = _run_steps(pathlib.Path(folder), n_patients, seed, workers, say)
        say(f"corpus kept in {folder}; next: dicomml scan {folder} -o catalog.parquet")
    result.seconds["total"] = time.perf_counter() - started
    skipped = f" ({len(result.skipped)} steps skipped)" if result.skipped else ""
    say(f"done in {result.seconds['total']:.1f} s{skipped}", flush=True)
    return result


def _run_steps(folder: pathlib.Path, n_patients, seed, workers, say) -> DemoResult:
    result = DemoResult(folder=folder)
    result.corpus = _timed(result, "write", write_step, folder, n_patients, seed, say)
    result.catalog = _timed(result, "scan", scan_step, folder, say)
    if result.catalog is None:
        result.skipped.append("scan")
        say("[3/4] load     skipped: needs the catalog")
        say("[4/4] iterate  skipped: needs the catalog")
        result.skipped += ["load", "iterate"]
        return result
    loaded = _timed(result, "load", load_step, result.catalog, result.corpus, say)
    if loaded is None:
        result.skipped.append("load")
    else:
        result.volume, result.truth = loaded
    result.volumes_per_second = _timed(result, "iterate", iterate_step, result.catalog,
                                       workers, say)
    if result.volumes_per_second is None:
        result.skipped.append("iterate")
    return result


def _timed(result: DemoResult, name: str, step, *args):
    started = time.perf_counter()
    value = step(*args)
    result.seconds[name] = time.perf_counter() - started
    return value


def _optional(module: str, name: str):
    """``module.name``, or None when that module (not one of its dependencies) is absent."""
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise
    except AttributeError:
        return None


# --- step 1 ---------------------------------------------------------------------------------
def write_step(folder: pathlib.Path, n_patients: int, seed: int, say=print) -> list:
    """Write the synthetic corpus into ``folder``; return its ground truth (SynthSeries list)."""
    from dicomml import synth

    say(f"[1/{STEPS}] write    synthetic corpus ({n_patients} patients) ...", flush=True)
    started = time.perf_counter()
    corpus = synth.write_corpus(folder, n_patients=n_patients, seed=seed)
    seconds = time.perf_counter() - started
    files = sum(len(s.paths) for s in corpus)
    studies = len({s.study_uid for s in corpus})
    say(f"         {files} files, {len(corpus)} series, {studies} studies in {seconds:.1f} s "
        f"-> {folder}")
    syntaxes = Counter(_syntax_name(s.transfer_syntax) for s in corpus)
    say("         transfer syntaxes: "
        + ", ".join(f"{name} x{count}" for name, count in syntaxes.most_common()))
    return corpus


def _syntax_name(uid: str) -> str:
    """A short name of a transfer syntax: its DICOM keyword (e.g. ``JPEGLSLossless``)."""
    from pydicom.uid import UID

    return UID(uid).keyword or uid


# --- step 2 ---------------------------------------------------------------------------------
def scan_step(folder: pathlib.Path, say=print):
    """Scan ``folder`` with :func:`dicomml.scan`; print the series table; return the Catalog
    (None when the catalog module is not installed)."""
    scan = _optional("dicomml.catalog", "scan")
    if scan is None:
        say(f"[2/{STEPS}] scan     skipped: dicomml.catalog is not available")
        return None
    say(f"[2/{STEPS}] scan     {folder} ...", flush=True)
    started = time.perf_counter()
    catalog = scan(folder, progress=False)
    seconds = max(time.perf_counter() - started, 1e-9)
    files = len(catalog.instances) + len(catalog.errors)
    say(f"         {files} files in {seconds:.2f} s ({files / seconds:.0f} files/s): "
        f"{len(catalog.series)} series, {len(catalog.errors)} errors")
    say(_indent(series_table(catalog)))
    return catalog


def series_table(catalog) -> str:
    """The catalog's series as a compact text table (one row per series)."""
    import pandas as pd

    series = catalog.series
    view = series[[c for c in TABLE_COLUMNS if c in series]].copy()
    if "SeriesDescription" in view:
        view["SeriesDescription"] = view["SeriesDescription"].fillna("").str.slice(0, 36)
    for name in ("SeriesNumber", "Rows", "Columns"):
        if name in view:
            view[name] = pd.to_numeric(view[name], errors="coerce").astype("Int64")
    if "TransferSyntaxUID" in series:
        view["TransferSyntax"] = [_syntax_name(uid) if isinstance(uid, str) else ""
                                  for uid in series["TransferSyntaxUID"]]
    sort = [c for c in ("PatientID", "Modality", "SeriesNumber") if c in view]
    view = view.sort_values(sort) if sort else view
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return view.to_string(index=False)


def _indent(text: str, prefix: str = "         ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# --- step 3 ---------------------------------------------------------------------------------
def load_step(catalog, corpus: list, say=print):
    """Load one compressed CT series with :func:`dicomml.load_series`; print its geometry and
    its difference to the ground truth. Return (Volume, SynthSeries), or None when the
    loader is not installed."""
    load_series = _optional("dicomml.loader", "load_series")
    if load_series is None:
        say(f"[3/{STEPS}] load     skipped: dicomml.loader is not available")
        return None
    truth = _pick_series(corpus)
    rows = catalog.series[catalog.series["SeriesInstanceUID"] == truth.series_uid]
    key = rows["series_key"].iloc[0]
    description = rows["SeriesDescription"].iloc[0] if "SeriesDescription" in rows else ""
    say(f"[3/{STEPS}] load     {truth.patient_id} {truth.modality} series "
        f"{truth.meta['series_number']} \"{description}\" ...", flush=True)
    volume = load_series(catalog, key)
    array, affine = np.asarray(volume.array), np.asarray(volume.affine)
    say(f"         shape {array.shape} {array.dtype} (slices, rows, columns), spacing "
        f"{tuple(round(float(s), 3) for s in volume.spacing)} mm, "
        f"orientation {getattr(volume, 'orientation', '?')}")
    say("         affine (slice, row, column, 1) -> LPS mm:")
    say(_indent(np.array2string(affine, precision=3, suppress_small=True)))
    value_error = float(np.abs(array - truth.array).max()) if array.shape == truth.shape \
        else float("inf")
    say(f"         vs ground truth: max |value error| {value_error:g}, "
        f"max |affine error| {float(np.abs(affine - truth.affine).max()):.2g} mm")
    return volume, truth


def _pick_series(corpus: list):
    """The first compressed CT series (file names and instance numbers out of order)."""
    for series in corpus:
        if series.modality == "CT" and series.transfer_syntax.startswith("1.2.840.10008.1.2.4"):
            return series
    return corpus[0]


# --- step 4 ---------------------------------------------------------------------------------
def iterate_step(catalog, workers: int = 2, say=print) -> float | None:
    """One epoch of a DataLoader over :class:`dicomml.DicomSeriesDataset`; return volumes/s
    (None when the dataset module is not installed)."""
    dataset_class = _optional("dicomml.dataset", "DicomSeriesDataset")
    collate = _optional("dicomml.dataset", "collate")
    if dataset_class is None or collate is None:
        say(f"[4/{STEPS}] iterate  skipped: dicomml.dataset is not available")
        return None
    import torch

    workers = max(0, min(workers, os.cpu_count() or 1))
    dataset = dataset_class(catalog)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=workers,
                                         collate_fn=collate, persistent_workers=workers > 0)
    say(f"[4/{STEPS}] iterate  DataLoader(DicomSeriesDataset, batch_size=1, "
        f"num_workers={workers}) over {len(dataset)} series, 2 epochs ...", flush=True)
    rates = []
    for epoch in (1, 2):
        started = time.perf_counter()
        volumes, voxels, shapes = _one_epoch(loader)
        seconds = max(time.perf_counter() - started, 1e-9)
        rates.append(volumes / seconds)
        note = " (worker start-up included)" if epoch == 1 and workers else ""
        say(f"         epoch {epoch}: {volumes} volumes, {voxels / 1e6:.1f} M voxels in "
            f"{seconds:.2f} s = {rates[-1]:.1f} volumes/s{note}")
    say("         image shapes (C, slices, rows, columns): "
        + ", ".join(f"{shape} x{n}" for shape, n in shapes.most_common()))
    return rates[-1]


def _one_epoch(loader):
    """Iterate ``loader`` once; return (volumes, voxels, Counter of image shapes)."""
    volumes = voxels = 0
    shapes = Counter()
    for batch in loader:
        image = batch["image"]
        for item in image if isinstance(image, (list, tuple)) else [image]:
            volumes += item.shape[0]
            voxels += item.numel()
            shapes[tuple(item.shape[1:])] += item.shape[0]
    return volumes, voxels, shapes
