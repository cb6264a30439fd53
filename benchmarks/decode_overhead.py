"""Where one-thread series decoding spends its time beyond the bare decoder, step by step.

A synthetic 512x512 CT series (``--slices`` files, written by ``dicomml.synth``, scanned into a
catalog) is decoded by loops that add one cost at a time, all timed round-robin in this
process (process CPU time, best of ``--repeat``), per frame and as a ratio to the bare decode:

* ``bare``: ``bench_decode``'s limit, the same functions: the first-choice decoder on frames
  already in memory; for uncompressed syntaxes each file's Pixel Data read into a new array
* ``floor``: the least any reader of catalogued files must add to ``bare``, with no library
  code: per file ``os.open``, ``os.fstat`` (a file changed since the scan must be noticed),
  ``os.preadv`` at the known offset, ``os.close``; the decoder writing into the result; the
  BitsStored check of PS3.5 8.1.1 (:func:`~dicomml.decode.pipeline.high_bits_clear`). No
  catalog rows, no codestream or error checks: a ratio here is a bound no reader can beat
* ``+read``: each file's Pixel Data read (at the catalog's offset) just before its decode
* ``+read run``: the series' files read first, then decoded (what ``read_many`` does)
* ``+bit check``: plus the BitsStored correction / check of ``decode_frame`` (PS3.5 8.1.1)
* ``+new array``: plus a new result array per series instead of a reused one
* ``read_many``: ``dicomml.read_many(catalog rows, threads=1)``, all of the above and the
  catalog row handling

Run: ``python benchmarks/decode_overhead.py --syntax 1.2.840.10008.1.2.5`` (RLE; any syntax the
writer produces works, uncompressed ones get ``bare``, ``floor`` and ``read_many`` only; about
30 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_decode import bare_loop, read_limit  # noqa: E402  (same folder: the same limits)

import dicomml  # noqa: E402
from dicomml import synth  # noqa: E402
from dicomml.decode import decoders_for, read_many  # noqa: E402
from dicomml.decode import syntaxes as ts  # noqa: E402
from dicomml.decode.frames import simple_frames  # noqa: E402
from dicomml.decode.located import (  # noqa: E402
    load_located,
    load_located_run,
    locations_from_frame,
)
from dicomml.decode.pipeline import decode_frame, high_bits_clear  # noqa: E402


def floor(locations, info, decoder):
    """The least a reader adds to the bare decoder (see the module docstring); a new result
    array per series, files read into one reused buffer (compressed) or the result."""
    unused = info.bits_allocated - info.bits_stored
    native = info.transfer_syntax in ts.NATIVE
    swap = info.transfer_syntax == ts.EXPLICIT_VR_BE
    arena = bytearray(sum(location.file_size - location.offset for location in locations))

    def check(frame):
        if unused > 0:
            high_bits_clear(frame, unused)

    def run():
        out = np.empty((len(locations), *info.frame_shape), info.dtype)
        raw = out.view(f"u{info.dtype.itemsize}")
        view, used, frames = memoryview(arena), 0, []
        for k, location in enumerate(locations):
            handle = os.open(location.path, os.O_RDONLY)
            os.fstat(handle)
            if native:
                os.preadv(handle, [memoryview(raw[k].reshape(-1).view("u1"))], location.offset)
            else:
                size = location.file_size - location.offset
                target, used = view[used:used + size], used + size
                os.preadv(handle, [target], location.offset)
                frames.append(simple_frames(target, 1)[0])
            os.close(handle)
            if swap:
                np.copyto(out[k], out[k].view(out.dtype.newbyteorder(">")))
            if native:
                check(out[k])
        for k, frame in enumerate(frames):
            decoder.decode_into(frame, info, raw[k])
            check(out[k])
        return out

    return run


def steps(folder: str, syntax: str, slices: int) -> dict:
    """name -> zero-argument callable decoding the whole series one way."""
    synth.write_series(folder, shape=(slices, 512, 512), transfer_syntax=syntax, modality="CT",
                       seed=1)
    catalog = dicomml.scan(folder, workers=1, progress=False)
    rows = catalog.series_instances(catalog.series["series_key"].iloc[0])
    locations = locations_from_frame(rows)
    chain = decoders_for(syntax)
    decoder = chain[0]
    paths = [location.path for location in locations]
    info = locations[0].info
    reused = np.empty((slices, *info.frame_shape), info.dtype)
    raw = reused.view(f"u{info.dtype.itemsize}")

    def with_read():
        for k, location in enumerate(locations):
            encoded = load_located(location, reuse=True)
            decoder.decode_into(encoded.frames[0], encoded.info, raw[k])

    def with_run():
        for k, encoded in enumerate(load_located_run(locations)):
            decoder.decode_into(encoded.frames[0], encoded.info, raw[k])

    def with_check(out=None):
        out = reused if out is None else out
        for k, encoded in enumerate(load_located_run(locations)):
            decode_frame(encoded.frames[0], encoded.info, chain, out=out[k])

    def with_new_array():
        with_check(np.empty_like(reused))

    last = {"read_many": lambda: read_many(rows, threads=1)}
    if syntax in ts.NATIVE:
        return {"bare": read_limit(paths, syntax), "floor": floor(locations, info, None),
                **last}
    bare = bare_loop(paths, decoder)
    runs = {"bare": bare, "+bit check": with_check, "+new array": with_new_array, **last}
    if decoder.decodes_into:
        runs = {"bare": bare, "floor": floor(locations, info, decoder), "+read": with_read,
                "+read run": with_run, **runs}
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syntax", default=ts.RLE_LOSSLESS)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args(argv)
    if args.syntax == ts.DEFLATED_EXPLICIT_VR_LE:
        parser.error("deflated files have no Pixel Data offset to read at")
    with tempfile.TemporaryDirectory() as folder:
        runs = steps(folder, args.syntax, args.slices)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeat):  # round-robin: a busy spell slows every step alike
            for name, run in runs.items():
                start = time.process_time()
                run()
                best[name] = min(best[name], time.process_time() - start)
    print(f"{ts.describe(args.syntax)}: {args.slices} x 512x512 frames, process CPU time, "
          f"best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:12} {seconds / args.slices * 1e6:8.1f} us/frame  "
              f"{seconds / best['bare']:5.2f}x bare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
