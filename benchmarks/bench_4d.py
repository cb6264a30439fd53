"""Benchmark: load 4D series of single-slice MR files (issue 16), against the page-cache floor.

Three series of the same size (``--volumes`` x ``--slices`` files of ``--rows`` squared,
written with ``dicomml.synth`` into a temporary folder):

- ``temporal``: volumes told apart by Temporal Position Identifier (the standard case);
- ``no-tag``: fMRI without Temporal Position Identifier (volumes in Instance Number order);
- ``ge-dwi``: GE-style DWI (encoding only in GE private tags, read from the headers).

Each is loaded with ``dicomml.load_series(catalog, uid, dtype=None)`` (the stored integers:
the same bytes as the floor) and compared with the floor from ``bench_load.py``: every file's
pixel bytes read from page cache at the catalog's offsets into a fresh buffer of the output's
size. Times are the best of ``--repeat`` runs; ratios are what matter on a shared machine,
and the CPU-time ratio (process time of that run, all threads) is the one other processes'
load disturbs least.

Run::

    python benchmarks/bench_4d.py                       # 30 volumes x 40 slices of 128x128
    python benchmarks/bench_4d.py --volumes 60 --rows 96
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench_load import best_time, read_page_cache  # noqa: E402

CASES = {
    "temporal": {},
    "no-tag": {"instance_numbers": "sorted", "TemporalPositionIdentifier": None,
               "NumberOfTemporalPositions": None},
    "ge-dwi": {"fourth_dim": "ge_dwi"},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=30)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--rows", type=int, default=128, help="rows = columns")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import dicomml
    from dicomml import synth

    root = Path(tempfile.mkdtemp(prefix="dicomml-bench4d-"))
    try:
        shape = (args.volumes, args.slices, args.rows, args.rows)
        print(f"{args.volumes} volumes x {args.slices} slices of {args.rows}x{args.rows}, "
              f"one file per slice; best of {args.repeat}")
        for seed, (name, options) in enumerate(CASES.items()):
            folder = root / name
            synth.write_series(folder, modality="MR", shape=shape, seed=seed, **options)
            catalog = dicomml.scan(folder, progress=False)
            uid = str(catalog.instances["SeriesInstanceUID"].iloc[0])
            ours, volume = best_time(
                lambda c=catalog, u=uid: dicomml.load_series(c, u, dtype=None), args.repeat)
            ours_cpu = best_time.last_cpu
            floor, _ = best_time(read_page_cache(catalog.instances), args.repeat)
            floor_cpu = best_time.last_cpu
            print(f"{name:9s} dicomml {ours * 1000:7.1f} ms  floor {floor * 1000:7.1f} ms  "
                  f"ratio {ours / floor:5.2f}x  (CPU {ours_cpu * 1000:6.1f} / "
                  f"{floor_cpu * 1000:5.1f} ms = {ours_cpu / floor_cpu:5.2f}x)  "
                  f"shape {volume.shape}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
