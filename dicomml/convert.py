"""``dicomml convert``: DICOM series to NIfTI plus a JSON sidecar.

``dicomml convert CATALOG_OR_DIR [--series KEY] -o OUT`` converts one series (``--series``)
or every series of a catalog (a ``.parquet`` written by ``dicomml scan``) or folder. Each
series becomes ``OUT/<name>.nii.gz`` (RAS, as :meth:`dicomml.Volume.to_nifti`) and
``OUT/<name>.json``: the series-level tags, the geometry checks' findings, the LPS affine
(index (slice, row, column, 1) -> mm), spacing, shape and, for 4D, the values that tell the
volumes apart. ``<name>`` is the series key with characters outside ``[A-Za-z0-9._-]``
replaced by ``_``. Nothing is ever written next to the input files. Needs ``nibabel``.

Example::

    dicomml convert /data/ct -o /tmp/nifti
    dicomml convert catalog.parquet --series 1.2.3.4 -o /tmp/nifti --policy warn
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from dicomml.errors import DicommlError

__all__ = ["register", "convert_series", "sidecar"]


def register(subparsers) -> None:
    """Add the ``convert`` command to the ``dicomml`` CLI."""
    parser = subparsers.add_parser(
        "convert", help="DICOM series to NIfTI (+ JSON sidecar)",
        description=__doc__.split("\n\n")[1])
    parser.add_argument("source", metavar="CATALOG_OR_DIR",
                        help="a catalog (.parquet from 'dicomml scan') or a folder of DICOM files")
    parser.add_argument("--series", metavar="KEY", help="convert only this series key")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--policy", default="default",
                        choices=["default", "raise", "warn", "ignore"],
                        help="what geometry findings do (default: raise except gantry tilt)")
    parser.add_argument("--resample", action="store_true",
                        help="resample uneven / gapped / tilted series onto a regular grid")
    parser.add_argument("--stored", action="store_true",
                        help="write the stored integers (no rescale) instead of float32")
    parser.add_argument("--no-gzip", action="store_true", help="write .nii instead of .nii.gz")
    parser.set_defaults(func=_run)


def safe_name(key: str) -> str:
    """A file name for a series key: ``[A-Za-z0-9._-]`` kept, everything else ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(key)).strip("._") or "series"


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def sidecar(volume) -> dict:
    """The JSON sidecar of a volume: tags, findings, geometry (LPS affine, spacing, shape)."""
    return _json_ready({
        **dict(volume.metadata),
        "shape": list(volume.shape),
        "axes": "volume, slice, row, column" if volume.array.ndim == 4 else "slice, row, column",
        "affine_lps": volume.affine,
        "spacing_mm": volume.spacing,
        "orientation": volume.orientation,
        "sheared": volume.is_sheared,
        "dtype": str(volume.array.dtype),
    })


def convert_series(catalog, key: str, output: Path, *, policy="default", resample=False,
                   dtype="float32", gzip=True) -> Path:
    """Convert one series; return the NIfTI path."""
    from dicomml.loader import load_series

    volume = load_series(catalog, key, policy=policy, resample=resample, dtype=dtype)
    output.mkdir(parents=True, exist_ok=True)
    stem = output / safe_name(key)
    nifti = stem.with_name(stem.name + (".nii.gz" if gzip else ".nii"))
    volume.to_nifti().to_filename(str(nifti))
    stem.with_name(stem.name + ".json").write_text(json.dumps(sidecar(volume), indent=2))
    return nifti


def _run(args) -> int:
    source = Path(args.source)
    if not source.exists():
        print(f"dicomml convert: {source} does not exist", file=sys.stderr)
        return 2
    from dicomml.catalog import Catalog

    catalog = Catalog.open(source)
    keys = [args.series] if args.series else list(catalog.series["series_key"])
    failed = 0
    for key in keys:
        try:
            path = convert_series(catalog, key, Path(args.output), policy=args.policy,
                                  resample=args.resample, dtype=None if args.stored else "float32",
                                  gzip=not args.no_gzip)
        except DicommlError as exc:
            if args.series:
                raise
            failed += 1
            print(f"dicomml convert: skipped {key}: {exc}", file=sys.stderr)
            continue
        print(path)
    return 1 if failed else 0
