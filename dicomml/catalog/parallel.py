"""Parse many headers in parallel, surviving crashing workers.

Header parsing is pure-Python CPU work, so threads do not scale under the GIL (measured by
``benchmarks/bench_scan.py``: 2 threads ~ 1 thread); the default is a process pool (``fork``
start method on Linux: no re-import, no ``if __name__ == "__main__"`` guard needed). Files
are sent in chunks; results come back as plain ``(row, error)`` tuples (the calling process
adds the path, size and mtime it sent). When a worker dies (a segfault, the
OOM killer), the chunks that were in flight are bisected and retried until the one file
that kills a worker alone is found; that file is recorded as an error (``WorkerCrash``) and
the scan goes on.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> import os
>>> path = get_testdata_file("CT_small.dcm")
>>> out = parse_files([(path, os.path.getsize(path), 0)], workers=1, progress=False)
>>> out[0][3] is not None, out[0][4]
(True, None)
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import NamedTuple

import pandas as pd

from .header import parse_file_safe
from .table import InstanceColumns, errors_frame

#: Below this many files, parsing stays in the calling process (pool start-up costs more).
IN_PROCESS_BELOW = 256


def default_workers() -> int:
    """Usable CPU cores (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _parse_rows(items: list) -> list:
    """A worker's share: ``[(row | None, error | None)]`` in the order of ``items`` (what the
    calling process does not already know; it adds path, size and mtime back)."""
    return [parse_file_safe(path, size) for path, size, _ in items]


def progress_bar(total: int, enabled: bool):
    """The scan's tqdm bar over ``total`` files (disabled when not ``enabled``), shared by the
    local pool and the Ray engine."""
    # tqdm.auto warns in notebooks without ipywidgets: import it only when a bar is shown
    if enabled:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="file", desc="scan", leave=False,
                dynamic_ncols=True, mininterval=0.2)


def parse_files(items: list, *, workers: int | None = None, progress: bool = True,
                kind: str = "process") -> list:
    """Parse every ``(path, size, mtime_ns)`` item; return
    ``(path, size, mtime_ns, row | None, error | None)`` tuples (any order).

    ``workers``: None = all usable cores; 1 = in this process. ``kind``: ``"process"``
    (default) or ``"thread"`` (kept for the benchmark's comparison).
    """
    out: list = []

    def take(chunk: list, result: list) -> None:
        out.extend((*item, row, error) for item, (row, error) in zip(chunk, result))

    _run(items, workers, progress, kind, _Job(_parse_rows, take,
                                               lambda item, error: out.append(
                                                   (*item, None, error))))
    return out


def parse_to_frames(items: list, *, workers: int | None = None,
                    progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(instances, errors)`` DataFrames of ``items``, both in path order (what
    :func:`~dicomml.catalog.table.instances_frame` and ``errors_frame`` build from
    :func:`parse_files`' tuples). Each worker types its own rows into column arrays
    (:class:`~dicomml.catalog.table.InstanceColumns`), which travel back as array buffers
    rather than one Python object per value: the calling process only joins them."""
    table, failed = InstanceColumns(), []

    def take(chunk: list, result: tuple) -> None:
        batches, errors = result
        table.extend(batches)
        failed.extend(errors)

    _run(items, workers, progress, "process",
         _Job(typed_batch, take, lambda item, error: failed.append((*item, error))))
    return table.frame(), errors_frame(sorted(failed, key=_first))


def typed_batch(items: list, parse=None) -> tuple[list, list]:
    """A worker's share for :func:`parse_to_frames` (and a Ray task's): ``(typed column
    batches, error records)`` of ``(path, size, mtime_ns)`` items, each parsed by
    ``parse(path, size) -> (row, error)`` (default: :func:`parse_file_safe`)."""
    parse = parse_file_safe if parse is None else parse
    table, ok, failed = InstanceColumns(), [], []
    for path, size, mtime_ns in items:
        row, error = parse(path, size)
        if error is None:
            ok.append((path, size, mtime_ns, row))
        else:
            failed.append((path, size, mtime_ns, error))
    table.add(ok)
    return table.batches, failed


class _Job(NamedTuple):
    work: Callable  # chunk of items -> result (runs in a worker)
    take: Callable  # (chunk, result) -> None, in the calling process
    crashed: Callable  # (item, error tuple) -> None: a file that kills any worker


def _first(item):
    return item[0]


def _run(items: list, workers: int | None, progress: bool, kind: str, job: _Job) -> None:
    workers = default_workers() if workers is None else max(1, int(workers))
    with progress_bar(len(items), progress) as bar:
        if workers == 1 or len(items) < IN_PROCESS_BELOW:
            _serial(items, bar, job)
        else:
            _pooled(items, workers, kind, bar, job)


def _serial(items: list, bar, job: _Job) -> None:
    step = 128
    for start in range(0, len(items), step):
        chunk = items[start:start + step]
        job.take(chunk, job.work(chunk))
        bar.update(len(chunk))


def _chunks(items: list, workers: int) -> list[list]:
    size = max(16, min(512, len(items) // (workers * 8) or 1))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _make_pool(workers: int, kind: str) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers)
    method = "fork" if sys.platform.startswith("linux") else None
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context(method))


def _pooled(items: list, workers: int, kind: str, bar, job: _Job) -> None:
    queue = _chunks(items, workers)
    suspects: list = []
    while queue:
        failed = _run_round(queue, workers, kind, job, bar)
        queue = []
        for chunk in failed:
            if len(chunk) == 1:
                suspects.append(chunk)
            else:
                half = len(chunk) // 2
                queue += [chunk[:half], chunk[half:]]
    for chunk in suspects:  # each alone in a fresh one-worker pool
        if _run_round([chunk], 1, kind, job, bar):
            job.crashed(chunk[0], ("WorkerCrash", "the worker process died while parsing "
                                   "this file", None))
            bar.update(1)


def _run_round(chunks: list, workers: int, kind: str, job: _Job, bar) -> list:
    """Run ``job.work`` on chunks in one pool; hand each chunk's result to ``job.take``;
    return the chunks lost to a crash."""
    failed = []
    with _make_pool(min(workers, len(chunks)), kind) as pool:
        futures = {pool.submit(job.work, chunk): chunk for chunk in chunks}
        for future in as_completed(futures):
            chunk = futures[future]
            try:
                result = future.result()
            except Exception:  # BrokenProcessPool (a worker died), or results lost in transit
                failed.append(chunk)
                continue
            job.take(chunk, result)
            bar.update(len(chunk))
    return failed
