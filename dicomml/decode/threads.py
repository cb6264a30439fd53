"""How many threads a decode may use.

Inside a torch DataLoader worker the answer is 1 (the workers already use the cores); torch
is only consulted when it is already imported. Elsewhere a small pool, but only when the
decoder releases the GIL (otherwise threads only add overhead).

Example
-------
>>> default_threads(releases_gil=False)
1
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

#: Upper bound of the default pool (more threads than this rarely pays off for one series).
MAX_DEFAULT_THREADS = 8


def in_dataloader_worker() -> bool:
    """True inside a torch DataLoader worker process (only checked if torch is imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return torch.utils.data.get_worker_info() is not None
    except Exception:  # noqa: BLE001 - a partially imported torch
        return False


def available_cores() -> int:
    """Cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(*, releases_gil: bool, tasks: int | None = None) -> int:
    """Threads to decode ``tasks`` items with: 1 in DataLoader workers or without GIL release."""
    if not releases_gil or in_dataloader_worker():
        return 1
    threads = min(available_cores(), MAX_DEFAULT_THREADS)
    if tasks is not None:
        threads = min(threads, tasks)
    return max(1, threads)


#: Name prefix of every thread that decodes frames side by side (read_many, load_series).
DECODE_POOL_PREFIX = "dicomml-decode"


def on_decode_pool() -> bool:
    """True on a thread of :func:`run_each`'s pool (frames are already decoded in parallel)."""
    return threading.current_thread().name.startswith(DECODE_POOL_PREFIX)


def run_each(work, items, threads: int) -> None:
    """``work(item)`` for every item, on ``threads`` threads (inline when 1 or one item);
    the first exception is raised."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix=DECODE_POOL_PREFIX) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()
