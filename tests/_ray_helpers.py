"""What tests/test_ray.py and tests/test_ray_cluster.py share: Ray kept on loopback, with its
session files under a pytest folder, and the comparisons of catalogs and cache folders.

``tests/`` is not a package: the Ray test modules put it on ``sys.path`` first.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pandas as pd

#: every Ray process on 127.0.0.1 (see issue 18): set before any node starts
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = "127.0.0.1"


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
