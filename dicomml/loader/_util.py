"""Small helpers shared by the loader modules: reading optional values from catalog rows.

Example
-------
>>> value({"Rows": float("nan")}, "Rows", 0)
0
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml._columns import absent, column_array


def value(row, name: str, default=None):
    """``row[name]`` (a dict or pandas row), or ``default`` when absent, None or NaN."""
    found = row.get(name, default) if hasattr(row, "get") else default
    return default if absent(found) else found


def column(frame: pd.DataFrame, name: str, default=None) -> np.ndarray:
    """A catalog column as a numpy array (object dtype for text), or ``default`` everywhere
    when the catalog lacks it. No pandas Series is built (see :mod:`dicomml._columns`)."""
    if name in frame.columns:
        return np.asarray(column_array(frame, name))
    out = np.empty(len(frame), dtype=object)
    out[:] = [default] * len(frame)
    return out
