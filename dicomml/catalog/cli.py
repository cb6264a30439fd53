"""``dicomml scan`` and ``dicomml info``.

Example::

    dicomml scan /data/ct -o ct.parquet --workers 4
    dicomml scan /shared/ct -o /shared/ct-catalog/ --engine ray --ray-address auto
    dicomml info ct.parquet
    DICOMML_WEB_PASSWORD=... dicomml scan http://pacs:8042/dicom-web -o pacs.parquet \
        --user me --query Modality=CT --query StudyDate=20240101-20241231
    dicomml info http://pacs:8042/dicom-web --user me

``scan`` exits with status 1 when it found no DICOM file (an empty or non-DICOM folder).
"""

from __future__ import annotations

import argparse
import sys

from dicomml._columns import is_url


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
    p.add_argument("root", metavar="DIR", help="folder to scan (or one file), or the URL of a "
                   "DICOMweb server (http(s)://host:port/dicom-web; needs dicomml[web])")
    p.add_argument("-o", "--output", required=True, metavar="CATALOG",
                   help="catalog file to create or update (e.g. catalog.parquet)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parser processes (default: all cores; 1: no pool)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="parse in local processes (default) or as Ray tasks on a cluster "
                        "(needs dicomml[ray])")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="Ray cluster address for --engine ray (default: RAY_ADDRESS, else a "
                        "local instance)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-rows", type=int, default=50, metavar="N",
                   help="series rows to print (default 50)")
    _web_arguments(p)
    p.set_defaults(func=_scan)

    q = subparsers.add_parser(
        "info", help="summarize a catalog file",
        description="Print the patient, study and series counts of a catalog written by "
                    "'dicomml scan', its image series, the objects that are not images, and "
                    "the files that could not be indexed.")
    q.add_argument("catalog", metavar="CATALOG", help="a catalog written by 'dicomml scan', a "
                   "folder of DICOM files or the URL of a DICOMweb server (both scanned, "
                   "nothing written)")
    q.add_argument("--max-rows", type=int, default=50, metavar="N",
                   help="series rows to print (default 50)")
    _web_arguments(q)
    q.set_defaults(func=_info)


def _web_arguments(parser) -> None:
    """Options of a DICOMweb source (credentials from the environment, never the command
    line, where other users of the machine could read them)."""
    web = parser.add_argument_group("DICOMweb (when the source is a URL)")
    web.add_argument("--query", action="append", default=[], metavar="KEY=VALUE",
                     help="QIDO-RS filter, repeatable (e.g. Modality=CT, PatientID=123, "
                          "StudyDate=20240101-20241231, SeriesDescription=T1)")
    web.add_argument("--user", metavar="NAME", help="HTTP basic user; the password is read "
                     "from $DICOMML_WEB_PASSWORD")
    web.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                     help="extra request header, repeatable")
    web.add_argument("--store", metavar="DIR", help="local instance store (default "
                     "$DICOMML_WEB_STORE or ~/.cache/dicomml/web)")
    web.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")


def _source(args: argparse.Namespace, root: str):
    """``root`` itself, or a DicomWebSource when it is a URL (bearer token from
    $DICOMML_WEB_TOKEN)."""
    import os

    if not is_url(root):
        return root
    from dicomml.web import DicomWebSource

    password = os.environ.get("DICOMML_WEB_PASSWORD", "")
    headers = dict(h.split(":", 1) for h in args.header)
    return DicomWebSource(root, auth=(args.user, password) if args.user else None,
                          token=os.environ.get("DICOMML_WEB_TOKEN") or None,
                          headers={k.strip(): v.strip() for k, v in headers.items()},
                          verify=not args.insecure, store=args.store,
                          progress=not getattr(args, "no_progress", True))


def _query(args: argparse.Namespace) -> dict:
    return dict(item.split("=", 1) for item in args.query)


def _scan(args: argparse.Namespace) -> int:
    from .scanner import scan

    engine = args.engine
    if engine == "ray":  # a call-time import of a higher layer (docs/architecture.md)
        from dicomml.cluster.scan import RayEngine

        engine = RayEngine(address=args.ray_address)
    cat = scan(_source(args, args.root), catalog=args.output, workers=args.workers,
               progress=not args.no_progress, query=_query(args) or None, engine=engine)
    print(cat.summary(max_rows=args.max_rows))
    print(f"\ncatalog written to {args.output}")
    if len(cat.instances) == 0:
        print(f"dicomml scan: no DICOM file found in {args.root} ({len(cat.errors)} "
              "file(s) not DICOM or unreadable)", file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    from .catalog import Catalog

    source = _source(args, args.catalog)
    if isinstance(source, str):  # a catalog file or folder; a DICOM folder is scanned
        cat = Catalog.open(args.catalog, progress=True)
    else:
        from .scanner import scan

        cat = scan(source, query=_query(args) or None, progress=False)
    print(cat.summary(max_rows=args.max_rows))
    return 0
