"""The Ray engine of :func:`dicomml.scan`: header parsing as Ray tasks over batches of files.

:class:`RayEngine` has the local engine's contract
(:func:`dicomml.catalog.parallel.parse_to_frames`): ``(path, size, mtime_ns)`` items in, the
``(instances, errors)`` DataFrames out, built the same way (the same parser,
:func:`dicomml.catalog.header.parse_file_safe`; each task types its rows into
:class:`dicomml.catalog.table.InstanceColumns` batches, which travel back as arrays; the same
``WorkerCrash`` record), so ``scan`` builds the same Catalog from it.

- **Batches sized by measurement.** The first wave sends :data:`PROBE_FILES` files per CPU;
  each task reports its parse time, and later batches hold ``target_seconds`` of parsing at
  the measured mean time per file (between :data:`MIN_BATCH` and :data:`MAX_BATCH` files, and
  small enough that every CPU still gets work at the end). At ~0.2 ms per header and ~1-5 ms
  of Ray overhead per task, a 0.5 s batch keeps the overhead near 1% (benchmarks/bench_ray.py).
- **Per-file time bound.** Inside a task each file gets ``file_timeout`` seconds (SIGALRM in
  the worker's main thread, where Ray runs tasks); a file that overruns is recorded as
  ``error_type="ParseTimeout"``. A task that gives no answer by its deadline (a hang in C
  code that ignores the alarm) is cancelled (``ray.cancel(force=True)`` kills its worker).
- **Crashes.** A task whose worker died (a segfault, ``os._exit``, the OOM killer, a lost
  node) is retried by Ray (``max_retries``); if it still fails, its batch is bisected and
  retried until the one file that fails alone is recorded (``WorkerCrash``, as the local
  engine records it); the rest of the scan goes on. A batch killed at its deadline is
  retried one file per task instead (one more deadline finds the stuck file).

Example
-------
>>> import dicomml, ray  # doctest: +SKIP
>>> ray.init(address="auto")  # doctest: +SKIP
>>> cat = dicomml.scan("/data", engine="ray", catalog="cat/")  # doctest: +SKIP
>>> cat = dicomml.scan("/data", engine=RayEngine(file_timeout=10))  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import signal
import threading
import time

from dicomml.catalog.header import parse_file_safe
from dicomml.catalog.parallel import progress_bar, typed_batch
from dicomml.catalog.table import InstanceColumns, errors_frame

from ._ray import ensure_ray, total_cpus

#: Files per task in the first (measuring) wave.
PROBE_FILES = 32
MIN_BATCH = 16
MAX_BATCH = 8192
CRASH = ("WorkerCrash", "the worker process died while parsing this file", None)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _parse_one(parse, path, size, timeout):
    """``parse(path, size)`` bounded by ``timeout`` seconds (main thread only: SIGALRM)."""
    if timeout is None or threading.current_thread() is not threading.main_thread():
        return parse(path, size)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return parse(path, size)
    except _Timeout:
        return None, ("ParseTimeout", f"parsing did not finish within {timeout:g} s", None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_batch(items: list, timeout: float | None = None, parse=None) -> tuple:
    """One task: ``(typed column batches, error records, seconds spent parsing)``."""
    parse = parse_file_safe if parse is None else parse
    start = time.perf_counter()
    batches, failed = typed_batch(items, lambda path, size: _parse_one(parse, path, size,
                                                                       timeout))
    return batches, failed, time.perf_counter() - start


class RayEngine:
    """Parse headers as Ray tasks (see the module docstring).

    ``batch_size``: files per task (None: measured). ``target_seconds``: parse time per task
    when measured. ``file_timeout``: seconds one file may take (None: unbounded).
    ``task_timeout``: seconds a task may run before it is killed, counted from when it is sent
    (one task per CPU is in flight; None: ``4 * file_timeout`` plus 20 times its measured
    parse time, at least 60 s; the first task of a fresh worker also pays its start-up). ``max_retries``: Ray's retries of
    a task whose worker or node died. ``address``: the cluster for ``ray.init`` when Ray is
    not initialised yet. ``parse``: the per-file parser ``(path, size) -> (row, error)``
    (default: :func:`dicomml.catalog.header.parse_file_safe`; a test injects faults here).
    ``num_cpus``: Ray CPUs per task.
    """

    def __init__(self, *, batch_size: int | None = None, target_seconds: float = 0.5,
                 file_timeout: float | None = 60.0, task_timeout: float | None = None,
                 max_retries: int = 2, address: str | None = None, parse=None,
                 num_cpus: float = 1):
        self.batch_size = batch_size
        self.target_seconds = float(target_seconds)
        self.file_timeout = file_timeout
        self.task_timeout = task_timeout
        self.max_retries = int(max_retries)
        self.address = address
        self.parse = parse
        self.num_cpus = num_cpus
        self.stats: dict = {}

    def parse_to_frames(self, items: list, progress: bool = True) -> tuple:
        """``[(path, size, mtime_ns)]`` -> ``(instances, errors)`` DataFrames, both in path
        order. ``self.stats`` then holds ``files``, ``tasks``, ``batch_size`` (the last one),
        ``seconds_per_file`` (measured) and ``retried_batches``."""
        if not items:
            return InstanceColumns().frame(), errors_frame([])
        run = _Run(self, ensure_ray(self.address), list(items))
        with progress_bar(len(items), progress) as bar:
            run.loop(bar)
        self.stats = run.stats()
        return run.table.frame(), errors_frame(sorted(run.failed, key=_first))


def _first(item):
    return item[0]


class _Run:
    """The state of one ``parse_to_frames`` call: the items not sent yet, the bisected batches
    to retry, the tasks in flight (ref -> (batch, deadline))."""

    def __init__(self, engine: RayEngine, ray, items: list):
        self.engine, self.ray, self.items = engine, ray, items
        self.cpus = total_cpus(ray)
        self.next = 0
        self.retry: collections.deque = collections.deque()
        self.flight: dict = {}
        self.table, self.failed = InstanceColumns(), []
        self.per_file: float | None = None
        self.tasks = self.retried = 0
        self.size = engine.batch_size or PROBE_FILES
        self.remote = ray.remote(parse_batch).options(
            max_retries=engine.max_retries, retry_exceptions=False, num_cpus=engine.num_cpus)

    def stats(self) -> dict:
        return {"files": len(self.items), "tasks": self.tasks, "batch_size": self.size,
                "cpus": self.cpus,
                "seconds_per_file": self.per_file, "retried_batches": self.retried}

    def _batch_size(self) -> int:
        if self.engine.batch_size or self.per_file is None:
            return self.size
        size = int(self.engine.target_seconds / max(self.per_file, 1e-6))
        left = len(self.items) - self.next
        tail = -(-left // (2 * self.cpus))  # at least two batches per CPU for what is left
        return max(MIN_BATCH, min(MAX_BATCH, size, tail))

    def _submit(self) -> bool:
        if self.retry:
            batch = self.retry.popleft()
        elif self.next < len(self.items):
            self.size = self._batch_size()
            batch = self.items[self.next:self.next + self.size]
            self.next += len(batch)
        else:
            return False
        ref = self.remote.remote(batch, self.engine.file_timeout, self.engine.parse)
        self.flight[ref] = (batch, time.monotonic() + self._deadline(len(batch)))
        self.tasks += 1
        return True

    def _deadline(self, n: int) -> float:
        if self.engine.task_timeout is not None:
            return self.engine.task_timeout
        bound = 4 * (self.engine.file_timeout or 15.0)
        return max(60.0, bound + 20 * n * (self.per_file or 0.01))

    def loop(self, bar) -> None:
        while True:
            # one task per CPU in flight: a task starts when it is sent, so its deadline
            # does not run while it waits in a queue
            while len(self.flight) < self.cpus and self._submit():
                pass
            if not self.flight:
                return
            ready, _ = self.ray.wait(list(self.flight), num_returns=1, timeout=0.5)
            for ref in ready:
                self._collect(ref, bar)
            self._kill_overdue()

    def _collect(self, ref, bar) -> None:
        batch, _ = self.flight.pop(ref)
        try:
            batches, failed, seconds = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - worker died, task cancelled, lost object
            self._failed(batch, exc, bar)
            return
        mean = seconds / max(len(batch), 1)
        self.per_file = mean if self.per_file is None else 0.7 * self.per_file + 0.3 * mean
        self.table.extend(batches)
        self.failed.extend(failed)
        bar.update(len(batch))

    def _failed(self, batch: list, exc: Exception, bar) -> None:
        self.retried += 1
        killed = isinstance(exc, self.ray.exceptions.TaskCancelledError)
        if len(batch) > 1:
            # a crash is found by bisection (fast); a task killed at its deadline is retried
            # one file per task, so that finding the stuck file costs one more deadline
            half = len(batch) // 2
            parts = [[item] for item in batch] if killed else [batch[:half], batch[half:]]
            self.retry.extendleft(reversed(parts))
            return
        path, size, mtime_ns = batch[0]
        error = CRASH
        if killed:
            error = ("ParseTimeout", "the parsing task gave no answer in time and was killed",
                     None)
        self.failed.append((path, size, mtime_ns, error))
        bar.update(1)

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for ref, (_, deadline) in list(self.flight.items()):
            if now > deadline:
                self.ray.cancel(ref, force=True)
                self.flight[ref] = (self.flight[ref][0], float("inf"))  # cancelled once
