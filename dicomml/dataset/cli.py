"""``dicomml cache``: decode every series of a catalog into a cache folder, in parallel.

Example::

    dicomml scan /data/ct -o ct.parquet
    dicomml cache ct.parquet --cache-dir /scratch/ct-cache --workers 8
    # then: DicomSeriesDataset("ct.parquet", cache_dir="/scratch/ct-cache")

``--transform package.module:NAME`` caches the volumes after the deterministic prefix of that
transform (the same object the training script passes as ``transform=``), so the keys match.
``--prune`` then deletes entries no longer referenced (changed files or transforms).
"""

from __future__ import annotations

import argparse
import importlib
import sys

import torch

from ._core import SERIES_ERRORS, SeriesSource


def register(subparsers) -> None:
    """Add the ``cache`` command to the ``dicomml`` CLI."""
    parser = subparsers.add_parser(
        "cache", help="decode every series into a dataset cache folder (parallel)",
        description="Decode every image series of a catalog into a cache folder, in "
                    "parallel, so that DicomSeriesDataset(..., cache_dir=...) starts warm. "
                    "With --transform, volumes are cached after the deterministic prefix "
                    "of that transform, as the Dataset caches them.",
        epilog="Prints the counts of series cached, already present and failed (each "
               "failure with its reason). Exit status: 0 when every series is cached, 1 when "
               "any failed, 2 on a bad argument.")
    parser.add_argument("catalog", help="a saved catalog file, or a folder to scan")
    parser.add_argument("--cache-dir", required=True, help="cache folder (not the data folder)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: CPU count, at most 8; 0: in-process)")
    parser.add_argument("--transform", default=None, metavar="MODULE:NAME",
                        help="transform whose deterministic prefix is cached")
    parser.add_argument("--prune", action="store_true",
                        help="delete cache entries not used by this catalog and transform")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def load_object(spec: str):
    """``"package.module:NAME"`` -> the object (attribute path may be dotted)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--transform must look like package.module:NAME, got {spec!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class _Warmer(torch.utils.data.Dataset):
    """Item i fills series i's cache entry; returns ``(series_key, status, error_text)``."""

    def __init__(self, source: SeriesSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[str, str, str]:
        key = self.source.series_keys[index]
        try:
            return (*self.source.warm(index), "")
        except SERIES_ERRORS as exc:
            return key, "failed", f"{type(exc).__name__}: {exc}"


def warm_cache(source: SeriesSource, *, workers: int = 0, progress: bool = True) -> dict:
    """Fill every entry of ``source``'s cache; returns counts and the failures.

    ``{"cached": n, "present": n, "failed": n, "errors": {series_key: text}, "keys": [...]}``.
    """
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(_Warmer(source), batch_size=None,
                                         num_workers=workers)
    counts = {"cached": 0, "present": 0, "failed": 0}
    errors = {}
    with tqdm(total=len(source), unit="series", disable=not progress, file=sys.stderr) as bar:
        for key, status, error in loader:
            counts[status] += 1
            if error:
                errors[key] = error
            bar.update(1)
            bar.set_postfix(counts, refresh=False)
    return {**counts, "errors": errors}


def run(args: argparse.Namespace) -> int:
    """The ``cache`` command: exit 0 when every series is cached, 1 when any failed, 2 on a
    bad argument."""
    import os

    try:
        transform = load_object(args.transform) if args.transform else None
        catalog = args.catalog
        if os.path.isdir(catalog):  # a folder: scan it with a progress bar on stderr
            from dicomml.catalog import scan

            catalog = scan(catalog, progress=not args.no_progress)
        source = SeriesSource(catalog, transform=transform, cache_dir=args.cache_dir)
    except (ValueError, ImportError, AttributeError) as exc:
        print(f"dicomml cache: error: {exc}", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    result = warm_cache(source, workers=workers, progress=not args.no_progress)
    for key, error in sorted(result["errors"].items()):
        print(f"failed: {key}: {error}", file=sys.stderr)
    removed = 0
    if args.prune:
        keep = []
        for i in range(len(source)):
            try:
                keep.append(source.cache_key(i))
            except SERIES_ERRORS:
                continue
        removed = source.cache.prune(keep)
    size_mb = source.cache.nbytes() / 1e6
    print(f"{result['cached']} cached, {result['present']} already present, "
          f"{result['failed']} failed, {removed} stale removed; "
          f"{args.cache_dir}: {size_mb:.1f} MB")
    return 1 if result["failed"] else 0
