"""``dicomml scan`` and ``dicomml info``.

Example::

    dicomml scan /data/ct -o ct.parquet --workers 4
    dicomml info ct.parquet
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``scan`` and ``info`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("scan", help="index the DICOM headers of a folder",
                              description="Scan DIR recursively (headers only) into a "
                                          "Parquet catalog; rescans are incremental.")
    p.add_argument("root", metavar="DIR", help="folder to scan (or one file)")
    p.add_argument("-o", "--output", required=True, metavar="CATALOG",
                   help="catalog file to create or update (e.g. catalog.parquet)")
    p.add_argument("--workers", type=int, default=None,
                   help="parser processes (default: all cores; 1: no pool)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-rows", type=int, default=50, help="series rows to print")
    p.set_defaults(func=_scan)

    q = subparsers.add_parser("info", help="summarize a catalog file",
                              description="Print patients/studies/series counts, the series "
                                          "table and the error summary of a catalog.")
    q.add_argument("catalog", metavar="CATALOG", help="a catalog written by `dicomml scan`")
    q.add_argument("--max-rows", type=int, default=50, help="series rows to print")
    q.set_defaults(func=_info)


def _scan(args: argparse.Namespace) -> int:
    from .scanner import scan

    cat = scan(args.root, catalog=args.output, workers=args.workers,
               progress=not args.no_progress)
    print(cat.summary(max_rows=args.max_rows))
    print(f"\ncatalog written to {args.output}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .catalog import Catalog

    print(Catalog.load(args.catalog).summary(max_rows=args.max_rows))
    return 0
