"""``dicomml doctor``: which decoders are installed, in which order they are tried, and what
to install for more coverage.

Example::

    $ dicomml doctor
    Explicit VR Little Endian (1.2.840.10008.1.2.1): numpy
    ...
"""

from __future__ import annotations

import argparse
import json


def format_table(table: dict) -> str:
    """Human-readable lines of :func:`dicomml.decode.decoders`' table."""
    lines = ["Pixel decoders (first = tried first):"]
    hints = set()
    for uid, entry in table.items():
        used = " > ".join(entry["available"]) or "NONE INSTALLED"
        line = f"  {entry['name']} ({uid}): {used}"
        if entry["opt_in"]:
            line += f"  [opt-in: {', '.join(entry['opt_in'])}]"
        lines.append(line)
        for name, package, hint in entry["missing"]:
            lines.append(f"      missing {name} ({package}): {hint}")
            hints.add(hint)
    lines.append("python-gdcm is never used (it aborts the process on corrupt data).")
    if hints:
        lines.append("To add coverage or speed: " + "; ".join(sorted(hints)))
    return "\n".join(lines)


def run_doctor(args: argparse.Namespace) -> int:
    """Print the decoder registry (as JSON with ``--json``)."""
    from dicomml.decode import decoders

    table = decoders()
    print(json.dumps(table, indent=2) if args.json else format_table(table))
    return 0


def register(subparsers) -> None:
    """Add the ``doctor`` command to the ``dicomml`` CLI."""
    parser = subparsers.add_parser(
        "doctor", help="show installed pixel decoders and their order",
        description="List the installed pixel decoders of each transfer syntax, in the order "
                    "they are tried, and what to install for more coverage or speed.")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(func=run_doctor)
