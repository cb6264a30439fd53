"""On a Ray cluster: scan, cache build and a ``ray.data`` stream (the ``ray`` extra).

Everything here spreads work that the local engine does in one process pool over Ray tasks,
and reuses the local owners of each concept: the walk, incremental reuse, series splitting
and saving of :func:`dicomml.scan` (only the header parsing becomes Ray tasks,
:class:`RayEngine`), the cache keys and atomic writes of
:class:`dicomml.dataset.cache.VolumeCache` and the decode + transform path of
:class:`dicomml.dataset._core.SeriesSource` (so entries are byte-identical to the Dataset's).
Ray is imported when a function here runs (``dicomml._optional.require``), never by
``import dicomml``.

- ``dicomml.scan(root, engine="ray", catalog="cat/")``: :class:`RayEngine` (module
  :mod:`.scan`); a partitioned Parquet catalog directory when the path ends with ``/``.
- ``dicomml.build_cache(catalog, cache_dir, transform=..., engine="ray")``:
  :func:`.cache.warm_cache_ray`.
- ``dicomml.to_ray_dataset(catalog, ...)``: a ``ray.data.Dataset`` of samples (:mod:`.data`).

Example
-------
>>> import dicomml  # doctest: +SKIP
>>> cat = dicomml.scan("/data", engine="ray", catalog="cat/")  # doctest: +SKIP
>>> dicomml.build_cache(cat, "/cache", transform=prefix, engine="ray")  # doctest: +SKIP
>>> ds = dicomml.to_ray_dataset(cat, cache_dir="/cache", transform=prefix)  # doctest: +SKIP
"""

from __future__ import annotations

from dicomml._lazy import lazy_exports

_EXPORTS = {"RayEngine": "dicomml.cluster.scan", "warm_cache_ray": "dicomml.cluster.cache",
            "to_ray_dataset": "dicomml.cluster.data", "ensure_ray": "dicomml.cluster._ray"}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
