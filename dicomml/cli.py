"""The ``dicomml`` command line.

Each subcommand lives beside the code it drives: a module listed in ``_COMMAND_MODULES``
exposes ``register(subparsers)``, which adds its parser(s) and sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code.

Example::

    dicomml demo
    dicomml scan /data/ct -o catalog.parquet
    dicomml info catalog.parquet
"""

from __future__ import annotations

import argparse
import importlib
import sys

_COMMAND_MODULES = (
    "dicomml.demo",           # demo
    "dicomml.catalog.cli",    # scan, info
    "dicomml.convert",        # convert
    "dicomml.decode.cli",     # doctor
    "dicomml.dataset.cli",    # cache
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicomml", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version",
                        version=f"dicomml {importlib.import_module('dicomml').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency: surface it
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from dicomml.errors import DicommlError

    try:
        return int(args.func(args) or 0)
    except DicommlError as exc:
        print(f"dicomml: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
