"""Fast access to one column of a DataFrame as a numpy array or a list.

``frame[name]`` builds a pandas Series (index, name, dtype checks): ~30-80 us per call on a
catalog's columns, which adds up when a series load reads dozens of columns. These helpers
ask pandas for the column's array directly where its version allows, and fall back to
``frame[name]`` otherwise (duplicate column names, other pandas internals).

``absent(value)`` is the one test for a value a catalog row does not hold (None, the NaN
that pandas fills in, or pandas' ``NA``); ``plain(value)`` the one JSON-safe copy of a
catalog value (for metadata and cache sidecars); ``is_url(path)`` the one test for a
``path`` that is a DICOMweb instance URL rather than a file.

Example
-------
>>> import pandas as pd
>>> frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
>>> column_list(frame, "b"), column_array(frame, "a").tolist()
(['x', 'y'], [1, 2])
>>> absent(float("nan")), absent(None), absent(pd.NA), absent(0.0), absent("")
(True, True, True, False, False)
"""

from __future__ import annotations

import numpy as np
from pandas import NA, NaT


def column_array(frame, name: str):
    """The values of column ``name`` (numpy array, or pandas' extension array for arrow /
    nullable dtypes); KeyError when absent."""
    getter = getattr(frame, "_get_column_array", None)
    if getter is not None:
        try:
            position = frame.columns.get_loc(name)
        except KeyError:
            raise
        except Exception:  # noqa: BLE001 - odd column indexes: the slow path decides
            position = None
        if isinstance(position, (int, np.integer)):
            try:
                return getter(int(position))
            except Exception:  # noqa: BLE001 - pandas internals differ by version
                pass
    return frame[name].array


def column_list(frame, name: str) -> list:
    """``frame[name].tolist()`` without building a Series (see the module docstring)."""
    return column_array(frame, name).tolist()


def absent(value) -> bool:
    """True for None, NaN (a float, numpy's included: the value pandas fills in for a
    missing catalog entry) and pandas' ``NA``; every other value, 0 and "" included, is
    present."""
    return value is None or (isinstance(value, float) and value != value) or value is NA


def plain(value):
    """A JSON-safe Python value: numpy scalars unwrapped, NaN/NA -> None, tuples -> lists."""
    if isinstance(value, np.generic):
        value = value.item()
    if absent(value) or value is NaT:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def is_url(value) -> bool:
    """True for an ``http://`` or ``https://`` string (a DICOMweb location, not a path; the
    scheme in any case).

    >>> is_url("HTTPS://pacs/dicom-web/studies/1"), is_url("/data/a.dcm"), is_url(None)
    (True, False, False)
    """
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))
