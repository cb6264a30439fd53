"""The ``dicomml`` command line.

Each subcommand lives beside the code it drives: a module listed in ``_COMMAND_MODULES``
exposes ``register(subparsers)``, which adds its parser(s) and sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code.

Example::

    dicomml demo
    dicomml scan /data/ct -o catalog.parquet
    dicomml info catalog.parquet
    dicomml audit catalog.parquet -o audit/
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> module that registers it (only the module of the command being run is imported,
# so that `dicomml scan` does not pay for importing torch)
_COMMANDS = {
    "demo": "dicomml.demo",
    "scan": "dicomml.catalog.cli",
    "info": "dicomml.catalog.cli",
    "audit": "dicomml.catalog.audit",
    "convert": "dicomml.convert",
    "doctor": "dicomml.decode.cli",
    "cache": "dicomml.dataset.cli",
    "conformance": "dicomml.conformance",
}


DESCRIPTION = ("dicomml turns folders of DICOM files into training-ready PyTorch data: it "
               "indexes headers, sorts slices, decodes every transfer syntax and assembles "
               "volumes with an exact affine.")
EPILOG = ("Run 'dicomml COMMAND --help' for the options of a command. A problem with the "
          "data prints 'dicomml: error: <file>: <message>' and exits with status 1.")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``command``, only that command's module is imported."""
    parser = argparse.ArgumentParser(prog="dicomml", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version",
                        version=f"dicomml {importlib.import_module('dicomml').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [_COMMANDS[command]] if command in _COMMANDS else dict.fromkeys(_COMMANDS.values())
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency: surface it
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
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
