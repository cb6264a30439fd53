"""Where one-thread series decoding spends its time beyond the bare decoder, step by step.

A synthetic 512x512 CT series (``--slices`` files, written by ``dicomml.synth``, scanned into a
catalog) is decoded by loops that add one cost at a time, all timed round-robin in this
process (process CPU time, best of ``--repeat``), per frame and as a ratio to the bare decode:

* ``bare``: the first-choice decoder on frames already in memory (the benchmark's limit)
* ``+read``: each file's Pixel Data read (at the catalog's offset) just before its decode
* ``+read run``: the series' files read first, then decoded (what ``read_many`` does)
* ``+bit check``: plus the BitsStored correction / check of ``decode_frame`` (PS3.5 8.1.1)
* ``+new array``: plus a new result array per series instead of a reused one
* ``read_many``: ``dicomml.read_many(catalog rows, threads=1)``, all of the above and the
  catalog row handling

Run: ``python benchmarks/decode_overhead.py --syntax 1.2.840.10008.1.2.5`` (RLE; any syntax the
writer produces works; about 30 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dicomml  # noqa: E402
from dicomml import synth  # noqa: E402
from dicomml.decode import decoders_for, read_many  # noqa: E402
from dicomml.decode import syntaxes as ts  # noqa: E402
from dicomml.decode.located import (  # noqa: E402
    load_located,
    load_located_run,
    locations_from_frame,
)
from dicomml.decode.pipeline import decode_frame  # noqa: E402


def steps(folder: str, syntax: str, slices: int) -> dict:
    """name -> zero-argument callable decoding the whole series one way."""
    synth.write_series(folder, shape=(slices, 512, 512), transfer_syntax=syntax, modality="CT",
                       seed=1)
    catalog = dicomml.scan(folder, workers=1, progress=False)
    rows = catalog.series_instances(catalog.series["series_key"].iloc[0])
    locations = locations_from_frame(rows)
    chain = decoders_for(syntax)
    decoder = chain[0]
    frames = [(bytes(e.frames[0]), e.info) for e in (load_located(loc) for loc in locations)]
    info = frames[0][1]
    reused = np.empty((slices, *info.frame_shape), info.dtype)
    raw = reused.view(f"u{info.dtype.itemsize}")

    def bare():
        for src, frame_info in frames:
            decoder.decode(src, frame_info)

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

    runs = {"bare": bare, "+bit check": with_check, "+new array": with_new_array,
            "read_many": lambda: read_many(rows, threads=1)}
    if decoder.decodes_into:
        runs = {"bare": bare, "+read": with_read, "+read run": with_run, **runs}
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syntax", default=ts.RLE_LOSSLESS)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args(argv)
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
