"""The Ray engine of :func:`dicomml.build_cache`: decode + deterministic transform prefix +
cache writes as Ray tasks, several series per task.

Each task fills entries through :meth:`dicomml.dataset._core.SeriesSource.warm`, the path the
Dataset itself takes (same keys, same sample, :class:`~dicomml.dataset.cache.VolumeCache`'s
atomic writes: every file under a unique temporary name moved into place, the JSON sidecar
last), so many nodes can share one cache directory, a killed task leaves no entry that a
reader takes for complete, and a rerun only fills what is missing (``"present"`` entries are
skipped). A task whose worker or node died is retried by Ray (``max_retries``); a series that
still fails is reported with its error, never fatal to the build.

Example
-------
>>> import dicomml  # doctest: +SKIP
>>> dicomml.build_cache("cat/", "/cache", transform=prefix, engine="ray")  # doctest: +SKIP
{'cached': 120, 'present': 0, 'failed': 1, 'errors': {'1.2.3': 'DecodeError: ...'}}
"""

from __future__ import annotations

import uuid

from ._ray import ensure_ray, ray_module, total_cpus

#: SeriesSource objects already read in this worker process, by the token of their build
_SOURCES: dict = {}


def _source_of(token: str, boxed: list):
    """The build's SeriesSource, read from the object store once per worker process (the
    reference travels inside a list, so Ray does not resolve it for every task): unpickling a
    catalog of many files costs more than decoding a small series."""
    source = _SOURCES.get(token)
    if source is None:
        _SOURCES.clear()  # one build at a time per worker
        source = _SOURCES[token] = ray_module().get(boxed[0])
    return source


def warm_batch(token: str, boxed: list, indices: list[int]) -> list[tuple[str, str, str]]:
    """One task: ``(series_key, "cached" | "present" | "failed", error text)`` per index."""
    from dicomml.dataset._core import SERIES_ERRORS

    source = _source_of(token, boxed)
    out = []
    for index in indices:
        try:
            out.append((*source.warm(index), ""))
        except SERIES_ERRORS as exc:
            out.append((source.series_key(index), "failed", f"{type(exc).__name__}: {exc}"))
    return out


def warm_cache_ray(source, *, progress: bool = True, series_per_task: int | None = None,
                   max_retries: int = 3, address: str | None = None,
                   num_cpus: float = 1) -> dict:
    """Fill every cache entry of ``source`` (a SeriesSource with a cache) with Ray tasks.

    ``series_per_task``: None = enough tasks for four per CPU, at most 16 series each.
    ``num_cpus``: Ray CPUs per task.
    Returns what :func:`dicomml.dataset.cli.warm_cache` returns: ``{"cached", "present",
    "failed", "errors": {series_key: text}}``.
    """
    from tqdm.auto import tqdm

    if source.cache is None:
        raise ValueError("build_cache needs a cache folder (cache_dir)")
    ray = ensure_ray(address)
    n = len(source)
    size = series_per_task or max(1, min(16, n // (4 * total_cpus(ray)) or 1))
    shared, token = [ray.put(source)], uuid.uuid4().hex
    task = ray.remote(warm_batch).options(max_retries=max_retries, retry_exceptions=False,
                                          num_cpus=num_cpus)
    batches = {task.remote(token, shared, list(range(i, min(n, i + size)))):
               range(i, min(n, i + size)) for i in range(0, n, size)}
    counts = {"cached": 0, "present": 0, "failed": 0}
    errors: dict = {}
    with tqdm(total=n, unit="series", disable=not progress) as bar:
        refs = list(batches)
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            for key, status, error in _results(ray, ready[0], batches[ready[0]], source):
                counts[status] += 1
                if error:
                    errors[key] = error
                bar.update(1)
    return {**counts, "errors": errors}


def _results(ray, ref, indices, source) -> list:
    """The task's results, or every series of its batch as failed when the task itself
    failed after its retries (a worker that died on every try)."""
    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - one lost task must not end the build
        text = f"WorkerCrash: the task died ({type(exc).__name__})"
        return [(source.series_key(i), "failed", text) for i in indices]
