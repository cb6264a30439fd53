"""What tests/test_ray.py and tests/test_ray_cluster.py share: Ray kept on loopback, with its
session files under a pytest folder, and the comparisons of catalogs and cache folders.

``tests/`` is not a package: the Ray test modules put it on ``sys.path`` and import this
module *before* ``ray``: Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is first
imported (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``); set to 0, every address Ray picks
for itself is 127.0.0.1.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pandas as pd

#: every Ray process on 127.0.0.1 (see issue 18): set before ray is imported
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = "127.0.0.1"
os.environ.update(LOOPBACK_ENV)  # inherited by every Ray process the tests start


def require_loopback(ray) -> None:
    """Fail when Ray was imported before this module (it would bind the interface address)."""
    from ray._private import ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER, \
        "ray was imported before tests/_ray_helpers.py: Ray would leave loopback"


def reap(temp_dir, grace: float = 5.0) -> list[int]:
    """After a shutdown: end the Ray processes still running from ``temp_dir`` (a worker whose
    raylet was killed, or that was starting when its node went down, lingers for up to ~30 s
    before it notices). Only processes whose command line names this test's own temporary
    folder are touched. Returns their ids."""
    import signal
    import time

    folder = os.fspath(temp_dir).rstrip("/").encode()
    markers = (folder + b"/", folder + b"\0")  # the folder itself, not .../ray10 for .../ray1
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    line = f.read() + b"\0"
                    if any(m in line for m in markers):
                        found.append(int(entry))
            except OSError:
                continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in found:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if os.path.exists(f"/proc/{p}")]
            time.sleep(0.1)
        if not alive:
            break
    return found


def assert_same_catalog(a, b) -> None:
    """Identical rows, series keys and errors (frames equal, dtypes included)."""
    pd.testing.assert_frame_equal(a.instances, b.instances)
    pd.testing.assert_frame_equal(a.objects, b.objects)
    pd.testing.assert_frame_equal(a.errors, b.errors)


def cache_files(root) -> list[str]:
    """Relative paths of the entry files of a cache folder (hidden temporary files apart)."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def assert_same_cache(a, b) -> None:
    """The same entry files, byte for byte."""
    files = cache_files(a)
    assert files and files == cache_files(b)
    different = [f for f in files if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f),
                                                     shallow=False)]
    assert different == []
