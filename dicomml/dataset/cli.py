"""``dicomml cache``: decode every series of a catalog into a cache folder, in parallel.

Example::

    dicomml scan /data/ct -o ct.parquet
    dicomml cache ct.parquet --cache-dir /scratch/ct-cache --workers 8
    # then: DicomSeriesDataset("ct.parquet", cache_dir="/scratch/ct-cache")

``--transform package.module:NAME`` caches the volumes after the deterministic prefix of that
transform (the same object the training script passes as ``transform=``), so the keys match.
``--prune`` then deletes entries no longer referenced (changed files or transforms).
``--engine ray`` spreads the work over a Ray cluster (the ``ray`` extra; ``--ray-address``,
else ``RAY_ADDRESS`` or a local instance): the same entries, written atomically, so many nodes
can share one cache folder; a rerun fills only what is missing.

The same from Python: :func:`build_cache`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import torch

from dicomml.catalog import Catalog
from dicomml.errors import CatalogError

from ._core import SERIES_ERRORS, SeriesSource

ENGINES = ("local", "ray")


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
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local worker processes (default) or Ray tasks on a cluster")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster address for --engine ray (default: RAY_ADDRESS, "
                             "else a local instance)")
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


def build_cache(catalog, cache_dir, *, transform=None, engine: str = "local",
                workers: int | None = None, progress: bool = True, address: str | None = None,
                **options) -> dict:
    """Decode every image series of ``catalog`` (a Catalog, a saved catalog or a folder) into
    ``cache_dir``, after the deterministic prefix of ``transform``: the entries that
    ``DicomSeriesDataset(catalog, cache_dir=cache_dir, transform=transform, **options)``
    reads (same keys, byte-identical files). Idempotent and resumable: present entries are
    kept, only missing ones are written (atomically).

    ``engine``: ``"local"`` (``workers`` DataLoader processes: None = CPU count, at most 8;
    0 = in this process) or ``"ray"`` (Ray tasks; ``address`` of the cluster, see
    :mod:`dicomml.cluster`). ``options``: the other ``SeriesSource`` parameters
    (``filter``, ``loader_options``, ``metadata``...). Returns ``{"cached": n, "present": n,
    "failed": n, "errors": {series_key: "ErrorType: message"}}``.

    Example
    -------
    >>> import tempfile, dicomml
    >>> folder, cache = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = dicomml.synth.write_series(folder, shape=(2, 4, 4))
    >>> build_cache(folder, cache, workers=0, progress=False)["cached"]
    1
    >>> build_cache(folder, cache, workers=0, progress=False)["present"]
    1
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    source = SeriesSource(catalog, transform=transform, cache_dir=cache_dir, **options)
    return fill_cache(source, engine, workers=workers, progress=progress, address=address)


def fill_cache(source: SeriesSource, engine: str = "local", *, workers: int | None = None,
               progress: bool = True, address: str | None = None) -> dict:
    """Fill ``source``'s cache with the ``engine`` (see :func:`build_cache`)."""
    import os

    if engine == "ray":  # call-time import of the layer above (docs/architecture.md)
        from dicomml.cluster.cache import warm_cache_ray

        return warm_cache_ray(source, progress=progress, address=address)
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    return warm_cache(source, workers=workers, progress=progress)


def run(args: argparse.Namespace) -> int:
    """The ``cache`` command: exit 0 when every series is cached, 1 when any failed, 2 on a
    bad argument."""
    try:
        transform = load_object(args.transform) if args.transform else None
        catalog = Catalog.open(args.catalog, progress=not args.no_progress)
        source = SeriesSource(catalog, transform=transform, cache_dir=args.cache_dir)
        result = fill_cache(source, args.engine, workers=args.workers,
                            progress=not args.no_progress, address=args.ray_address)
    except (ValueError, ImportError, AttributeError, CatalogError) as exc:
        print(f"dicomml cache: error: {exc}", file=sys.stderr)
        return 2
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

