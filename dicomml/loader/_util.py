"""Small helpers shared by the loader modules: reading optional values from catalog rows.

Example
-------
>>> value({"Rows": float("nan")}, "Rows", 0)
0
"""

from __future__ import annotations

import pandas as pd


def value(row, name: str, default=None):
    """``row[name]`` (a dict or pandas row), or ``default`` when absent, None or NaN."""
    found = row.get(name, default) if hasattr(row, "get") else default
    if found is None or (isinstance(found, float) and found != found):  # None or NaN
        return default
    return found


def column(frame: pd.DataFrame, name: str, default=None) -> pd.Series:
    """A catalog column, or ``default`` everywhere when the catalog lacks it."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)
