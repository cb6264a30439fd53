"""``dicomml scan`` and ``dicomml info``.

Example::

    dicomml scan /data/ct -o ct.parquet --workers 4
    dicomml info ct.parquet

``scan`` exits with status 1 when it found no DICOM file (an empty or non-DICOM folder).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``scan`` and ``info`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser(
        "scan", help="index the DICOM headers of a folder",
        description="Index the DICOM headers of DIR (recursively; pixel data is not read) "
                    "into a Parquet catalog. A rescan into the same catalog file reads only "
                    "new or changed files.",
        epilog="Prints a summary: the image series, the objects that are not images (SR, RT "
               "structure sets, raw data...), and the files that could not be indexed (not "
               "DICOM, unreadable) with the reason. Exit status: 0 when DICOM files were "
               "indexed, 1 when none was found (an empty or non-DICOM folder).")
    p.add_argument("root", metavar="DIR", help="folder to scan (or one file)")
    p.add_argument("-o", "--output", required=True, metavar="CATALOG",
                   help="catalog file to create or update (e.g. catalog.parquet)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parser processes (default: all cores; 1: no pool)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-rows", type=int, default=50, metavar="N",
                   help="series rows to print (default 50)")
    p.set_defaults(func=_scan)

    q = subparsers.add_parser(
        "info", help="summarize a catalog file",
        description="Print the patient, study and series counts of a catalog written by "
                    "'dicomml scan', its image series, the objects that are not images, and "
                    "the files that could not be indexed.")
    q.add_argument("catalog", metavar="CATALOG", help="a catalog written by 'dicomml scan'")
    q.add_argument("--max-rows", type=int, default=50, metavar="N",
                   help="series rows to print (default 50)")
    q.set_defaults(func=_info)


def _scan(args: argparse.Namespace) -> int:
    from .scanner import scan

    cat = scan(args.root, catalog=args.output, workers=args.workers,
               progress=not args.no_progress)
    print(cat.summary(max_rows=args.max_rows))
    print(f"\ncatalog written to {args.output}")
    if len(cat.instances) == 0:
        print(f"dicomml scan: no DICOM file found in {args.root} ({len(cat.errors)} "
              "file(s) not DICOM or unreadable)", file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    from .catalog import Catalog

    print(Catalog.load(args.catalog).summary(max_rows=args.max_rows))
    return 0
