"""Mutation fuzzing of scan, load_series, read_pixels and read_many over real DICOM files.

Seeds are real files: synthetic series written by :mod:`dicomml.synth` in several transfer
syntaxes, and compressed files from pydicom's test data (RLE, JPEG, JPEG 2000, JPEG-LS,
deflated). Each input is a seed with a few mutations — bit flips, interesting-value
overwrites, truncations, element length-field corruptions (found by walking the explicit VR
element headers), chunk deletions/duplications. Inputs run in batches in a **child process**
(``python -c``) that logs each file before and after it, so a hard crash (segfault, abort,
Rust panic) or a hang (timeout) is pinned on one input and the fuzzer goes on with the rest.

Per input the child runs ``dicomml.scan(batch folder)`` once (the file's record in the
catalog's ``errors`` counts as an outcome: a type outside :mod:`dicomml.errors` is
``untyped``), then ``read_pixels(file)``, ``load_series(file)``, ``read_many([file, file])``,
``read_many`` of the file's catalog row and the ``DicomSeriesDataset`` item of the file's
series (in process); after the inputs, one ``DataLoader`` worker loads every series of the
batch (``on_error="skip"``, as in training: a skipped series' error type is checked too).
Outcomes: ``ok``, a :mod:`dicomml.errors` error (expected), or a finding: another exception
type (``untyped``), a crash, a hang, ``memory`` (the call's peak resident memory — Linux
``VmHWM`` after ``clear_refs`` — above twice the file size plus twice the output plus
:data:`SLACK_MB`), ``shape`` (an ``ok`` result whose shape is not the one the headers declare
as pydicom reads them, or a volume whose affine is not finite). The address space of the
child is limited (``--memory-mb``, 4 GiB) so a runaway allocation shows as MemoryError.

Speed: one child per batch (``--batch-size``, 500 by default) that imports the library and
warms every entry point once; a crash or hang ends the child, is pinned on the input in
progress (the child logs each step before and after it) and a fresh child goes on with the
rest. A step is allowed ``--timeout`` seconds per input it covers. ``--stop-at HH:MM`` (UTC)
stops starting batches at that time; the summary then counts the inputs that ran.

Usage::

    python benchmarks/fuzz_scan_load.py --inputs 2000 --seed 1 --out /tmp/fuzz_findings

prints a JSON summary (inputs tried, outcome counts, findings with the saved input path) and
the command line. Findings are copied to ``--out`` (never into the repository).
``DICOMML_FUZZ_SELFTEST=1`` makes the child abort on inputs starting with ``ABORT`` and hang
on ``HANG!`` (to test the harness itself).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
SHORT_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO",
             b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
#: outcome labels that count as findings (:func:`classify`)
FINDINGS = ("untyped", "crash", "hang", "memory", "shape")
#: MiB a call may touch beyond twice its file size and its output: the interpreter's own
#: churn (pandas frames of a catalog, decoder tables); a lie that makes a call allocate by a
#: header value shows as tens of MiB to GiB
SLACK_MB = 48
INTERESTING_32 = [0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFE,
                  0xFFFFFFFF]
PYDICOM_SEEDS = ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "JPEG-lossy.dcm", "JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm",
                 "SC_rgb_rle_2frame.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm", "no_meta.dcm",
                 "emri_small.dcm", "MR_small_implicit.dcm"]

CHILD = r"""
import json, os, resource, sys, time, traceback, warnings
warnings.simplefilter("ignore")
limit = int(sys.argv[3]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np
import pydicom
import dicomml
from dicomml.dataset import DicomSeriesDataset
from dicomml.errors import DicommlError
folder, log_path, slack = sys.argv[1], sys.argv[2], int(sys.argv[4]) * 2**20
names = sys.argv[5:]
scan_first = not (names and names[0] == "--no-scan")
names = names if scan_first else names[1:]
with_loader = not (names and names[0] == "--no-loader")
names = names if with_loader else names[1:]
log = open(log_path, "a", buffering=1)
selftest = os.environ.get("DICOMML_FUZZ_SELFTEST") == "1"


def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def reset_peak():  # Linux: VmHWM := VmRSS (the per-call peak resident set)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def nbytes(found):
    if isinstance(found, dict):
        return sum(nbytes(v) for v in found.values())
    if isinstance(found, (list, tuple)):
        return sum(nbytes(v) for v in found)
    return int(getattr(found, "nbytes", 0) or 0)


def shape_of(found):
    for name in ("array", "image"):
        found = found.get(name, found) if isinstance(found, dict) else \
            getattr(found, name, found)
    return tuple(int(n) for n in getattr(found, "shape", ()))


def outcome(call, file_bytes=0, expect=None):
    # "ok" | "E:<typed>" | "X:<untyped>" | "M:<peak beyond the bound>" | "S:<wrong shape>"
    reset_peak()
    base = rss_kib("VmRSS")
    try:
        found = call()
    except DicommlError as exc:
        found, result = None, "E:" + type(exc).__name__
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return f"X:{type(exc).__name__}: {str(exc)[:160]} @ {where.filename}:{where.lineno}"
    else:
        result = "ok"
    peak = (rss_kib("VmHWM") - base) * 1024
    allowed = 2 * file_bytes + 2 * nbytes(found) + slack
    if peak > allowed:
        return f"M:peak {peak} bytes > {allowed} (2 x file {file_bytes} + 2 x output " \
               f"{nbytes(found)} + slack) after {result}"
    if found is not None and expect is not None:
        got = shape_of(found)
        bad = expect(got)
        if bad:
            return f"S:shape {got}, the headers declare {bad}"
        affine = found.get("affine") if isinstance(found, dict) else \
            getattr(found, "affine", None)
        if affine is not None and not np.isfinite(np.asarray(affine, dtype=float)).all():
            return f"S:affine not finite {np.asarray(affine).tolist()}"
    return result


def declared(path):
    # (frames, rows, columns, samples) from pydicom's reading of the header, or None (also
    # when one of them has another VR than the standard's: NumberOfFrames written as FL
    # reads as 1.7e22 frames, which no reader can be held to)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if "NumberOfImagesInMosaic" in ds or "PixelData" not in \
                pydicom.dcmread(path, force=True, defer_size=64):
            return None
        for keyword in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel"):
            if keyword in ds and ds[keyword].VR != pydicom.datadict.dictionary_VR(keyword):
                return None  # another VR: pydicom's reading of it declares nothing
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
            samples = 3
        return (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns), samples)
    except Exception:
        return None


def frames_shape(facts, copies):
    if facts is None:
        return lambda got: None
    frames, rows, columns, samples = facts
    want = (copies * frames, rows, columns) + ((samples,) if samples > 1 else ())
    return lambda got: None if got == want else want


def volume_shape(facts):  # load_series / dataset items: rows x columns planes, any layout
    if facts is None:
        return lambda got: None
    frames, rows, columns, samples = facts
    total = frames * rows * columns * samples
    return lambda got: None if int(np.prod(got)) == total and rows in got and columns in got \
        else f"{total} values of {rows} x {columns} planes"


def loader_outcome(sample):
    record = getattr(sample, "record", None)
    if record is None:
        return "ok"
    kind = record["error_type"]
    return "E:" + kind if kind in typed else \
        f"X:{kind}: {str(record['message'])[:160]} @ DataLoader worker (skipped series)"


def _loader_outcomes(loader, keys, position):
    # yields once per series (None after an exception, which ends the loader's iterator)
    log.write("start\tloader:setup\t10\n")  # a worker starts: up to 10 timeouts
    it = iter(loader)
    while position < len(keys):
        first = files_of.get(keys[position], ["?"])[0]
        log.write(f"start\tloader:{first}\t{len(files_of.get(keys[position], [1]))}\n")
        try:
            got, ended = loader_outcome(next(it)), False
        except StopIteration:
            return
        except DicommlError as exc:
            got, ended = "E:" + type(exc).__name__, True
        except Exception as exc:
            got, ended = f"X:{type(exc).__name__}: {str(exc)[:160]} @ DataLoader", True
        log.write(f"end\tloader:{first}\t" + json.dumps({"loader": got}) + "\n")
        position += 1
        yield None if ended else got
        if ended:
            return


def warm_up():
    # every entry point once on pydicom's files of each codec, so that the first hostile
    # input of a child does not pay (in its peak memory) for lazy imports and decoder tables
    import shutil, tempfile
    from pydicom.data import get_testdata_file

    for name in WARM_FILES:
        try:
            source = get_testdata_file(name)
            dicomml.read_pixels(source)
            dicomml.read_many([source, source], threads=1)
        except Exception:
            pass
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(get_testdata_file("CT_small.dcm"), folder)
        warm = dicomml.scan(folder, workers=1, progress=False)
        dicomml.load_series(folder + "/CT_small.dcm")
        dicomml.read_many(warm.instances, threads=1)
        DicomSeriesDataset(warm)[0]


WARM_FILES = ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm", "JPEG-lossy.dcm",
              "SC_rgb_jpeg.dcm", "SC_rgb_jpeg_gdcm.dcm", "MR_small_jpeg_ls_lossless.dcm",
              "JPEGLSNearLossless_08.dcm", "MR_small_jp2klossless.dcm", "JPEG2000.dcm",
              "examples_palette.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm", "emri_small.dcm",
              "SC_rgb_small_odd_jpeg.dcm", "rtdose_rle_1frame.dcm", "JPEGLSNearLossless_16.dcm"]
warm_up()
catalogs = []
if scan_first:
    log.write(f"start\tscan\t{1 + len(names) / 20}\n")  # time allowed: see _wait
    log.write("end\tscan\t" + json.dumps({"scan": outcome(
        lambda: catalogs.append(dicomml.scan(folder, workers=1, progress=False)))}) + "\n")
rows_of, recorded, series_of, files_of = {}, {}, {}, {}
typed = {n for n in dir(dicomml.errors) if n.endswith("Error")} | {
    "DICOMDIR", "OSError", "WorkerCrash"}
if catalogs:
    found = catalogs[0].instances
    for i, (p, key) in enumerate(zip(found["path"], found["series_key"])):
        rows_of[os.path.basename(p)] = found.iloc[[i]]
        series_of[os.path.basename(p)] = key
        files_of.setdefault(key, []).append(os.path.basename(p))
    series_keys = set(catalogs[0].series["series_key"])
    for bad in catalogs[0].errors.itertuples():  # the scan's error record of each file
        kind = bad.error_type
        recorded[os.path.basename(bad.path)] = ("E:" + kind) if kind in typed else \
            f"X:{kind}: {str(bad.reason)[:160]} @ scan error record"
items = {}  # series key -> outcome of its DicomSeriesDataset item in this process


def item(name, facts):
    key = series_of[name]
    if key not in items:
        single = facts if len(files_of[key]) == 1 else None
        items[key] = outcome(
            lambda: DicomSeriesDataset(catalogs[0], filter=[key])[0],
            sum(os.path.getsize(folder + "/" + n) for n in files_of[key]), volume_shape(single))
    return items[key]


for name in names:
    path = folder + "/" + name
    log.write(f"start\t{name}\n")
    if selftest:  # proves the harness pins crashes and hangs (tests/test_fuzz.py)
        head = open(path, "rb").read(5)
        if head == b"ABORT":
            os.abort()
        if head == b"HANG!":
            time.sleep(3600)
    size, facts = os.path.getsize(path), declared(path)
    result = {"pixels": outcome(lambda: dicomml.read_pixels(path), size,
                                frames_shape(facts, 1)),
              "load": outcome(lambda: dicomml.load_series(path), size, volume_shape(facts)),
              "many": outcome(lambda: dicomml.read_many([path, path], threads=1), 2 * size,
                              frames_shape(facts, 2))}
    if name in rows_of:  # the catalog row's offsets and values (no header walked again)
        result["rows"] = outcome(lambda: dicomml.read_many(rows_of[name], threads=1), size,
                                 frames_shape(facts, 1))
        if series_of[name] in series_keys:  # files without pixels form no series
            result["item"] = item(name, facts)
    if name in recorded:  # an untyped exception recorded by the scan is a finding too
        result["scan_record"] = recorded[name]
    log.write(f"end\t{name}\t{json.dumps(result)}\n")

if catalogs and with_loader and len(catalogs[0].series):
    # every series of the batch as a DicomSeriesDataset item (on_error="skip", as in
    # training) in one DataLoader worker; an error type outside dicomml.errors in a skipped
    # series' record, an exception that escapes, or a worker that dies or stalls is pinned
    # on the series' first file (logged as "loader:<file>")
    import logging
    import torch.utils.data

    logging.disable(logging.WARNING)
    log.write(f"start\tloader:setup\t{10 + len(catalogs[0].series) / 20}\n")
    dataset = DicomSeriesDataset(catalogs[0], on_error="skip")
    keys = dataset.series_keys
    position = 0
    while position < len(keys):
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(dataset, range(position, len(keys))), batch_size=None,
            num_workers=1)  # no timeout here: the parent's (per step, weighted) applies
        for sample in _loader_outcomes(loader, keys, position):
            position += 1
            if sample is None:
                break  # the loader ended with an exception: a fresh one goes on
        del loader


"""


# --- seeds and mutations ----------------------------------------------------------------------------
def seed_files(work: Path) -> list[bytes]:
    """Bytes of the seed files: synthetic series in several syntaxes + pydicom test files."""
    import pydicom
    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    from dicomml import synth

    seeds = []
    for i, syntax in enumerate([ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]):
        truth = synth.write_series(work / f"seed{i}", shape=(2, 16, 16), transfer_syntax=syntax,
                                   orientation=["axial", "sagittal", "coronal", "oblique"][i])
        seeds.append(truth.paths[0].read_bytes())
    test_files = Path(pydicom.data.__file__).parent / "test_files"
    seeds += [(test_files / n).read_bytes() for n in PYDICOM_SEEDS if (test_files / n).is_file()]
    return seeds


def element_length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of the length fields of explicit VR little endian element headers."""
    fields, pos = [], 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data):
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            if pos + 12 > len(data):  # a long-VR header cut short (a mutated input)
                break
            fields.append((pos + 8, 4))
            length = struct.unpack_from("<I", data, pos + 8)[0]
            pos = pos + 12 + (0 if length == 0xFFFFFFFF else length)
        elif vr in SHORT_VRS:
            fields.append((pos + 6, 2))
            pos = pos + 8 + struct.unpack_from("<H", data, pos + 6)[0]
        else:
            pos += 8  # an item tag or implicit data: step over its header and go on
    return fields


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """Apply 1-3 random mutations; return the new bytes and what was done."""
    out = bytearray(data)
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["flip", "flip", "length", "length", "interesting", "truncate",
                           "delete", "duplicate"])
        header_end = min(len(out), 4096)
        if kind == "flip" and out:
            at = rng.randrange(len(out)) if rng.random() < 0.3 else rng.randrange(header_end)
            out[at] ^= 1 << rng.randrange(8)
            done.append(f"flip@{at}")
        elif kind == "length":
            fields = element_length_fields(bytes(out))
            if fields:
                at, size = rng.choice(fields)
                value = rng.choice(INTERESTING_32 + [rng.randrange(1 << 32)])
                out[at:at + size] = value.to_bytes(4, "little")[:size]
                done.append(f"length@{at}={value:#x}")
        elif kind == "interesting" and len(out) > 4:
            at = rng.randrange(len(out) - 4)
            out[at:at + 4] = struct.pack("<I", rng.choice(INTERESTING_32))
            done.append(f"value@{at}")
        elif kind == "truncate" and out:
            at = rng.randrange(len(out))
            del out[at:]
            done.append(f"truncate@{at}")
        elif kind == "delete" and len(out) > 8:
            at = rng.randrange(len(out) - 8)
            del out[at:at + rng.randint(1, 64)]
            done.append(f"delete@{at}")
        elif kind == "duplicate" and len(out) > 8:
            at = rng.randrange(len(out) - 8)
            out[at:at] = out[at:at + rng.randint(1, 256)]
            done.append(f"duplicate@{at}")
    return bytes(out), done


# --- running batches in a child -------------------------------------------------------------------------
def run_batch(folder: Path, names: list[str], *, timeout: float, memory_mb: int,
              slack_mb: int = SLACK_MB) -> dict:
    """Run the child on ``names``; return {name: outcome | "crash:..." | "hang"}, plus the
    batch scan's outcome under "scan".

    A crash or hang ends the child; the remaining names run in a fresh child (without the
    folder scan once that crashed: each file's ``load_series`` scans it alone anyway).
    """
    results: dict[str, object] = {}
    pending, with_scan, with_loader = list(names), True, True
    while pending:
        args = pending if with_scan else ["--no-scan", *pending]
        status, started = _run_child(folder, args if with_loader else ["--no-loader", *args],
                                     results, timeout=timeout, memory_mb=memory_mb,
                                     slack_mb=slack_mb)
        if status is None:
            break
        culprit = started or "scan"
        if culprit == "scan":
            results["scan"] = status
        elif culprit.startswith("loader:"):  # a DataLoader pass that hung or took the child
            results.setdefault(culprit[7:], {})["loader"] = status
        else:
            results[culprit] = {"child": status}
        with_scan = with_scan and culprit != "scan"
        with_loader = with_loader and not culprit.startswith("loader:")
        pending = [n for n in pending if n not in results]
    return results


def _run_child(folder: Path, args: list[str], results: dict, *, timeout: float,
               memory_mb: int, slack_mb: int):
    """One child run; fills ``results`` from its log; returns (status, file in progress).

    ``timeout`` is per input: the child is killed as hung when one input (or the folder scan,
    or the start-up, allowed 3x) runs longer than that.
    """
    log_path = folder.parent / f"{folder.name}.log"
    log_path.unlink(missing_ok=True)
    # RUST_BACKTRACE=0: a Rust decoder's panic (caught, a DecodeError) would otherwise
    # symbolise a backtrace, ~50 MB of debug info read once per process: not the library's
    env = {**os.environ, "RUST_BACKTRACE": "0",
           "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(log_path),
                                 str(memory_mb), str(slack_mb), *args], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env)
        status = _wait(proc, log_path, timeout)
        if status is None and proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-1:]
            status = f"crash:rc={proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
    started = None
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    for line in lines:
        parts = line.split("\t")
        if parts[0] == "start":
            started = parts[1]
        elif parts[0] == "end" and len(parts) == 3:
            value = json.loads(parts[2])
            if parts[1] == "scan":
                results["scan"] = value["scan"]
            elif parts[1].startswith("loader:"):  # the batch's DataLoader pass, per series
                results.setdefault(parts[1][7:], {}).update(value)
            else:
                results.setdefault(parts[1], {}).update(value)
            started = None
    log_path.unlink(missing_ok=True)
    return status, started


def _wait(proc, log_path: Path, timeout: float):
    """Wait for the child; kill it and return "hang" when one input runs over ``timeout``
    (a step that covers several inputs — the batch scan, a DataLoader item of a series of
    several files — logs its weight as a third field: it is allowed that many timeouts)."""
    last_size, since = -1, time.monotonic()
    allowed = 10 * timeout  # start-up (imports, warm-up) under a loaded machine's nice 19
    while proc.poll() is None:
        time.sleep(0.1)
        size = log_path.stat().st_size if log_path.exists() else 0
        if size != last_size:
            if last_size >= 0 or size > 0:
                allowed = timeout * _weight(log_path)
            last_size, since = size, time.monotonic()
        elif time.monotonic() - since > allowed:
            proc.kill()
            proc.wait()
            return "hang"
    return None


def _weight(log_path: Path) -> float:
    """The weight of the step in progress (the last log line's third field; 1 when none)."""
    with open(log_path, "rb") as log:
        log.seek(max(0, log_path.stat().st_size - 512))
        last = log.read().decode(errors="replace").rstrip("\n").rsplit("\n", 1)[-1]
    parts = last.split("\t")
    try:
        return max(1.0, float(parts[2])) if parts[0] == "start" and len(parts) == 3 else 1.0
    except ValueError:
        return 1.0


def classify(outcome) -> list[str]:
    """Labels of one input's outcome: "ok", "typed", "untyped", "crash", "hang", "memory"
    (a call's peak resident memory beyond twice the file size plus the output and the slack),
    "shape" (a result whose shape is not the one the headers declare, or a volume whose
    affine is not finite)."""
    if isinstance(outcome, str):
        return ["hang" if outcome == "hang" else "crash" if outcome.startswith("crash")
                else "untyped" if outcome.startswith("X:") else
                "memory" if outcome.startswith("M:") else
                "shape" if outcome.startswith("S:") else
                "typed" if outcome.startswith("E:") else "ok"]
    return [classify(v)[0] for v in outcome.values()]


def fuzz(n_inputs: int, *, seed: int = 0, batch_size: int = 50, timeout: float = 30.0,
         memory_mb: int = 3072, out: Path | None = None, work: Path | None = None,
         stop_at: float | None = None) -> dict:
    """Run ``n_inputs`` mutated inputs; return the summary dict (see the module docstring)."""
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="dicomml_fuzz_")) if own_work else Path(work)
    try:
        seeds = seed_files(work / "seeds")

        def generate(rng: random.Random) -> tuple[bytes, str]:
            which = rng.randrange(len(seeds))
            data, recipe = mutate(seeds[which], rng)
            return data, f"seed {which}: {', '.join(recipe)}"

        return run_inputs(generate, n_inputs, work, seed=seed, batch_size=batch_size,
                          timeout=timeout, memory_mb=memory_mb, out=out, stop_at=stop_at)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


def run_inputs(generate, n_inputs: int, work: Path, *, seed: int, batch_size: int,
               timeout: float, memory_mb: int, out: Path | None,
               stop_at: float | None = None) -> dict:
    """Run ``n_inputs`` files made by ``generate(rng) -> (bytes, recipe)`` through the
    child harness in batches under ``work``; return the summary dict (module docstring).
    The fuzzers differ only in ``generate`` (this one's mutations, fuzz_structured's lies)."""
    rng = random.Random(seed)
    started = time.perf_counter()
    counts: Counter = Counter()
    findings = []
    done = 0
    while done < n_inputs and (stop_at is None or time.time() < stop_at):
        batch = work / f"batch{done:07d}"
        batch.mkdir(parents=True)
        recipes = {}
        for i in range(min(batch_size, n_inputs - done)):
            data, recipe = generate(rng)
            name = f"in{done + i:07d}.dcm"
            (batch / name).write_bytes(data)
            recipes[name] = recipe
        results = run_batch(batch, list(recipes), timeout=timeout, memory_mb=memory_mb)
        for name, outcome in results.items():
            labels = classify(outcome)
            counts.update(f"{name == 'scan' and 'scan_' or ''}{label}" for label in labels)
            if any(label in FINDINGS for label in labels):
                findings.append(_finding(batch, name, outcome, recipes.get(name), out))
        done += len(recipes)
        shutil.rmtree(batch)
        print(json.dumps({"done": done, "seconds": round(time.perf_counter() - started, 1),
                          "findings": len(findings), "outcomes": dict(counts)}),
              file=sys.stderr, flush=True)
    return {"inputs": done, "inputs_asked": n_inputs, "seed": seed, "seconds": round(time.perf_counter() - started, 1),
            "outcomes": dict(counts), "findings": findings,
            "n_crashes": sum("crash" in classify(f["outcome"]) for f in findings),
            "n_hangs": sum("hang" in classify(f["outcome"]) for f in findings),
            "n_untyped": sum("untyped" in classify(f["outcome"]) for f in findings),
            "n_memory": sum("memory" in classify(f["outcome"]) for f in findings),
            "n_shape": sum("shape" in classify(f["outcome"]) for f in findings),
            "inputs_per_second": round(done / max(time.perf_counter() - started, 1e-9), 2)}


def _finding(batch: Path, name: str, outcome, recipe, out: Path | None) -> dict:
    finding = {"input": name, "outcome": outcome, "recipe": recipe}
    source = batch / name
    if out is not None and source.is_file():
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{batch.name}_{name}"
        shutil.copy2(source, target)
        finding["saved"] = str(target)
    return finding


def cli(fuzz_function, argv, *, description: str, inputs: int, batch_size: int,
        memory_mb: int) -> int:
    """The command line both fuzzers share: run ``fuzz_function`` and print its summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--inputs", type=int, default=inputs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds one input may run before it counts as a hang")
    parser.add_argument("--memory-mb", type=int, default=memory_mb,
                        help="address-space limit of the child (MiB)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to copy crashing/hanging/untyped inputs to")
    parser.add_argument("--stop-at", default=None,
                        help="UTC time (HH:MM, the next one) after which no new batch starts; the "
                             "summary counts the inputs that ran")
    args = parser.parse_args(argv)
    summary = fuzz_function(args.inputs, seed=args.seed, batch_size=args.batch_size,
                            timeout=args.timeout, memory_mb=args.memory_mb, out=args.out,
                            stop_at=_epoch(args.stop_at))
    summary["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print(json.dumps(summary, indent=2))
    return 0


def _epoch(hh_mm: str | None) -> float | None:
    """Seconds since the epoch of ``HH:MM`` UTC today (None stays None)."""
    if hh_mm is None:
        return None
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    hours, minutes = map(int, hh_mm.split(":"))
    target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target <= now:  # past today: the next one (a run started before midnight)
        target += datetime.timedelta(days=1)
    return target.timestamp()


def main(argv=None) -> int:
    return cli(fuzz, argv, description=__doc__.split("\n\n")[0], inputs=2000,
               batch_size=500, memory_mb=4096)


if __name__ == "__main__":
    sys.exit(main())
