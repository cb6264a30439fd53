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
