"""Pixel decoding throughput per transfer syntax: dicomml vs the bare decoder vs peers.

A synthetic 512x512 CT series (``--slices`` files, int16, written by ``dicomml.synth`` into a
temporary folder) is decoded, per transfer syntax, by:

* ``dicomml-1t``: ``dicomml.decode.read_many(paths, threads=1)`` (read + parse + decode + checks)
* ``catalog-1t``: ``read_many(catalog.series_instances(key), threads=1)``: the same decode, the
  header facts and Pixel Data offsets taken from a catalog scanned beforehand (as
  ``load_series`` and the datasets do), so no header is walked
* ``dicomml``: ``read_many(paths)`` with the default thread pool
* ``bare``: the first-choice decoder's ``decode()`` on the already-extracted frame bytes in a
  tight loop (no file reading, no checks): the limit for one thread. Uncompressed syntaxes
  have no decoder worth the name (a view of the bytes), so their limit is reading each
  file's Pixel Data bytes at its known offset into a new array for the series (big endian:
  plus the byte swap); for deflated files it is inflating each file's data set from memory
* ``pydicom``: ``pydicom.dcmread(p).pixel_array`` for each file
* ``sitk``: SimpleITK ``ImageSeriesReader`` (GDCM) on the file list
* ``monai``: MONAI ``PydicomReader`` (if monai is installed)

Throughput is MB/s of output voxels (2 bytes each), best of ``--repeat`` round-robin runs
(every method once per round, so that a busy machine slows all alike). Ratios printed: the
time of ``dicomml-1t`` and of ``catalog-1t`` over that of ``bare`` (target <= 1.2) and
``dicomml/peer`` (the best of our columns over the best peer; target > 1 for every peer).
``--decoders`` also times every installed decoder of each syntax (the registry's order of
preference comes from that table).

Run: ``python benchmarks/bench_decode.py`` (about two minutes on 2 cores).
Quick check of the per-file overhead on the fast codecs (about 20 s):
``python benchmarks/bench_decode.py --quick`` (8 slices, best of 9, RLE / JPEG lossless /
JPEG-LS / HTJ2K, no peers); add ``--cpu`` to time CPU seconds (steadier on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dicomml  # noqa: E402
from dicomml import synth  # noqa: E402
from dicomml.decode import decoders_for, load_encoded, read_many  # noqa: E402
from dicomml.decode import syntaxes as ts  # noqa: E402
from dicomml.decode.fastheader import deflated_start, parse_header  # noqa: E402

QUICK_SYNTAXES = [ts.RLE_LOSSLESS, ts.JPEG_LOSSLESS_SV1, ts.JPEG_LOSSLESS, ts.JPEG_LS_LOSSLESS,
                  ts.HTJ2K_LOSSLESS]
SYNTAXES = [ts.EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_BE, ts.DEFLATED_EXPLICIT_VR_LE,
            ts.RLE_LOSSLESS, ts.JPEG_LOSSLESS_SV1, ts.JPEG_LOSSLESS, ts.JPEG_LS_LOSSLESS,
            ts.JPEG_LS_NEAR_LOSSLESS, ts.JPEG2000_LOSSLESS, ts.JPEG2000, ts.HTJ2K_LOSSLESS,
            ts.JPEG_EXTENDED]


def peers(paths) -> dict:
    """name -> zero-argument callable decoding the whole series, for installed peers."""
    import pydicom

    out = {"pydicom": lambda: [pydicom.dcmread(p).pixel_array for p in paths]}
    try:
        import SimpleITK as sitk

        sitk.ProcessObject_SetGlobalWarningDisplay(False)  # it warns about the uneven order

        def run_sitk():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames([str(p) for p in paths])
            return sitk.GetArrayFromImage(reader.Execute())

        out["sitk"] = run_sitk
    except ImportError:
        pass
    try:
        from monai.data import PydicomReader

        def run_monai():
            reader = PydicomReader()
            return [reader.get_data(reader.read(str(p)))[0] for p in paths]

        out["monai"] = run_monai
    except ImportError:
        pass
    return out


def bare_loop(paths, decoder):
    """Tight loop of ``decoder.decode`` over the series' pre-extracted frames."""
    encoded = [load_encoded(p) for p in paths]
    frames = [(bytes(e.frames[0]), e.info) for e in encoded]
    return lambda: [decoder.decode(f, info) for f, info in frames]


def read_limit(paths, syntax):
    """The least an uncompressed series costs: each file's Pixel Data bytes read at their
    offset into a new array for the series (big endian: swapped to native order as well)."""
    headers = [parse_header(open(p, "rb").read()) for p in paths]
    info = load_encoded(paths[0]).info

    def run():
        out = np.empty((len(paths), *info.frame_shape), info.dtype)
        for path, header, slot in zip(paths, headers, out):
            with open(path, "rb", buffering=0) as handle:
                handle.seek(header.pixel_offset)
                handle.readinto(memoryview(slot.reshape(-1).view("u1")))
            if syntax == ts.EXPLICIT_VR_BE:
                np.copyto(slot, slot.view(slot.dtype.newbyteorder(">")))  # vectorised swap
        return out

    return run


def inflate_limit(paths):
    """The least a deflated series costs: each file's deflated data set inflated in memory."""
    blobs = []
    for path in paths:
        data = open(path, "rb").read()
        blobs.append(data[deflated_start(data):])
    return lambda: [zlib.decompressobj(-zlib.MAX_WBITS).decompress(b) for b in blobs]


def bench_syntax(folder, syntax, slices, repeat, all_decoders, with_peers=True,
                 clock=time.perf_counter) -> dict:
    """Throughputs (MB/s) for one syntax."""
    truth = synth.write_series(os.path.join(folder, syntax), shape=(slices, 512, 512),
                               transfer_syntax=syntax, modality="CT", seed=1,
                               **({"bits_stored": 12} if syntax == ts.JPEG_EXTENDED else {}))
    paths = truth.paths
    megabytes = slices * 512 * 512 * 2 / 1e6
    chain = decoders_for(syntax)
    catalog = dicomml.scan(os.path.dirname(paths[0]), workers=1, progress=False)
    rows = catalog.series_instances(catalog.series["series_key"].iloc[0])
    runs = {"dicomml-1t": lambda: read_many(paths, threads=1),
            "catalog-1t": lambda: read_many(rows, threads=1),
            "dicomml": lambda: read_many(paths),
            "bare": (inflate_limit(paths) if syntax == ts.DEFLATED_EXPLICIT_VR_LE
                     else read_limit(paths, syntax) if syntax in ts.NATIVE
                     else bare_loop(paths, chain[0]))}
    if all_decoders:
        for dec in chain:
            runs[f"bare:{dec.name}"] = bare_loop(paths, dec)
    if with_peers:
        runs.update(peers(paths))
    result = {"decoder": chain[0].name}
    times: dict[str, list[float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in list(runs.items()):  # warm up (imports, caches); drop failing peers
            try:
                fn()
                times[name] = []
            except Exception as exc:  # noqa: BLE001 - a peer that cannot read this syntax
                result[name] = f"n/a ({type(exc).__name__})"
        for _ in range(repeat):  # round-robin, so that load changes hit every method alike
            for name in times:
                start = clock()
                runs[name]()
                times[name].append(clock() - start)
    for name, values in times.items():
        result[name] = megabytes / min(values)
    return result


def fmt(value) -> str:
    return f"{value:10.0f}" if isinstance(value, float) else f"{value[:10]:>10}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=None, help="default 16 (--quick: 8)")
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (--quick: 9)")
    parser.add_argument("--decoders", action="store_true", help="time every decoder")
    parser.add_argument("--syntax", action="append", help="UID(s) to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="8 slices, best of 9 (unless given), the fast codecs only, no peers")
    parser.add_argument("--cpu", action="store_true",
                        help="time CPU seconds of this process instead of wall-clock (steadier "
                             "on a shared machine; the threaded 'dicomml' column then sums "
                             "its threads' CPU time)")
    args = parser.parse_args(argv)
    if args.quick:
        args.syntax = args.syntax or QUICK_SYNTAXES
    args.slices = args.slices or (8 if args.quick else 16)
    args.repeat = args.repeat or (9 if args.quick else 3)
    writable = set(synth.supported_transfer_syntaxes())
    syntaxes = [s for s in (args.syntax or SYNTAXES) if s in writable]
    print(f"{args.slices} x 512x512 int16 CT slices, MB/s of output voxels, best of "
          f"{args.repeat}; cores: {len(os.sched_getaffinity(0))}"
          + ("; CPU time" if args.cpu else "; wall-clock"))
    columns = ["dicomml-1t", "catalog-1t", "dicomml", "bare", "pydicom", "sitk", "monai"]
    print(f"{'syntax':26} {'decoder':20}" + "".join(f"{c:>11}" for c in columns)
          + "  1t/bare cat/bare vs-best-peer")
    with tempfile.TemporaryDirectory() as folder:
        for syntax in syntaxes:
            r = bench_syntax(folder, syntax, args.slices, args.repeat, args.decoders,
                             with_peers=not args.quick,
                             clock=time.process_time if args.cpu else time.perf_counter)
            cells = "".join(" " + fmt(r.get(c, "-")) for c in columns)
            peer_values = [r[c] for c in ("pydicom", "sitk", "monai")
                           if isinstance(r.get(c), float)]
            ours = max(r[c] for c in ("dicomml", "dicomml-1t", "catalog-1t"))
            limit, limit_cat = r["bare"] / r["dicomml-1t"], r["bare"] / r["catalog-1t"]
            vs_peer = ours / max(peer_values) if peer_values else float("nan")
            print(f"{ts.NAMES[syntax]:26} {r['decoder']:20}{cells}  {limit:6.2f}x  "
                  f"{limit_cat:6.2f}x  {vs_peer:6.2f}x")
            if args.decoders:
                for key, value in r.items():
                    if key.startswith("bare:"):
                        print(f"{'':26}   {key[5:]:24} {fmt(value)} MB/s")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
