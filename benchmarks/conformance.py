"""Conformance with dcm2niix on any folder: per-series verdicts and a summary line.

The same as ``dicomml conformance DIR`` (see :mod:`dicomml.conformance` for what is compared
and the tolerances). Run from the repository root::

    python benchmarks/conformance.py ../shared/data
    python benchmarks/conformance.py /data/export --json verdicts.json --quiet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dicomml.conformance import add_arguments, main_args  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return main_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
