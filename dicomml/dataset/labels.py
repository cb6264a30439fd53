"""Join per-series (or per-image) labels from a CSV file, a DataFrame or a dict on any
identifier column.

The join column ``on`` is one of :data:`IDENTIFIERS`; by default the most specific one present
in both tables (``SOPInstanceUID`` for image tables such as
:class:`~dicomml.DicomImageDataset`'s, then ``series_key``, ``SeriesInstanceUID``,
``AccessionNumber``, ``StudyInstanceUID``, ``PatientID``). Identifiers are compared as stripped strings (a CSV is read
with them as text, so ``00123`` stays ``00123`` and UIDs are never parsed as numbers). A study- or
patient-level label applies to every series of that study or patient. Two different labels for
one identifier are an error.

Example
-------
>>> import pandas as pd
>>> series = pd.DataFrame({"series_key": ["a", "b", "c"], "PatientID": ["p1", "p1", "p2"]})
>>> labels = pd.DataFrame({"PatientID": ["p1", "p9"], "label": [1, 0]})
>>> values, report = join_labels(series, labels)
>>> values, report.n_unlabeled, report.n_label_rows_unmatched
([1, 1, None], 1, 1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

IDENTIFIERS = ("SOPInstanceUID", "series_key", "SeriesInstanceUID", "AccessionNumber",
               "StudyInstanceUID", "PatientID")


@dataclass(frozen=True)
class LabelReport:
    """How the label join went: counts of series and label rows (all ints)."""

    on: str
    label_columns: tuple[str, ...]
    n_series: int
    n_labeled: int
    n_unlabeled: int
    n_label_rows: int
    n_label_rows_unmatched: int
    kept_unlabeled: bool

    def __str__(self) -> str:
        fate = "kept" if self.kept_unlabeled else "dropped"
        return (f"labels joined on {self.on}: {self.n_labeled}/{self.n_series} series labelled, "
                f"{self.n_unlabeled} without a label ({fate}); "
                f"{self.n_label_rows_unmatched}/{self.n_label_rows} label rows matched no series")


def read_labels(labels, *, on: str | None = None,
                label_column: str | Sequence[str] = "label") -> pd.DataFrame:
    """``labels`` (CSV path, DataFrame, or ``{identifier: label}`` with ``on``) as a DataFrame."""
    if isinstance(labels, pd.DataFrame):
        return labels.copy()
    if isinstance(labels, (str, os.PathLike)):
        return pd.read_csv(labels, dtype={name: str for name in IDENTIFIERS},
                           keep_default_na=True)
    if isinstance(labels, Mapping):
        if on is None or not isinstance(label_column, str):
            raise ValueError("a dict of labels needs on= (its keys' identifier) and one "
                             "label_column name")
        return pd.DataFrame({on: [str(k) for k in labels], label_column: list(labels.values())})
    raise TypeError(f"labels must be a CSV path, a DataFrame or a dict, got {type(labels)!r}")


def choose_on(table: pd.DataFrame, series: pd.DataFrame, on: str | None) -> str:
    """The join column: ``on`` checked, or the most specific identifier in both tables."""
    if on is not None:
        for name, frame in (("labels", table), ("series", series)):
            if on not in frame.columns:
                raise ValueError(f"join column {on!r} is not in the {name} table "
                                 f"(columns: {', '.join(map(str, frame.columns))})")
        return on
    for name in IDENTIFIERS:
        if name in table.columns and name in series.columns:
            return name
    raise ValueError(f"the label table has none of the identifier columns {IDENTIFIERS}; "
                     "pass on= to name one")


def _as_key(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip()


def join_labels(series: pd.DataFrame, labels, *, label_column: str | Sequence[str] = "label",
                on: str | None = None, keep_unlabeled: bool = False
                ) -> tuple[list, LabelReport]:
    """One label per row of ``series`` (a list; None where none) and a :class:`LabelReport`.

    ``series``: one row per series with identifier columns. With several ``label_column``
    names each label is a list of their values.
    """
    table = read_labels(labels, on=on, label_column=label_column)
    on = choose_on(table, series, on)
    columns = [label_column] if isinstance(label_column, str) else list(label_column)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"label column(s) {missing} not in the label table "
                         f"(columns: {', '.join(map(str, table.columns))})")
    table = table.dropna(subset=[on, *columns], how="any").copy()
    table["_key"] = _as_key(table[on])
    table = table.drop_duplicates(subset=["_key", *columns])
    duplicated = table["_key"][table["_key"].duplicated()]
    if len(duplicated):
        raise ValueError(f"conflicting labels for {on}={duplicated.iloc[0]!r} "
                         f"({int(duplicated.size)} identifiers have more than one label)")
    lookup = table.set_index("_key")[columns]
    keys = _as_key(series[on]).reset_index(drop=True)
    found = keys.isin(lookup.index)
    values = _label_values(lookup, keys, found, columns)
    report = LabelReport(
        on=on, label_columns=tuple(columns), n_series=len(series),
        n_labeled=int(found.sum()), n_unlabeled=int((~found).sum()),
        n_label_rows=len(table), n_label_rows_unmatched=int((~lookup.index.isin(keys)).sum()),
        kept_unlabeled=keep_unlabeled)
    return values, report


def _plain(value):
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _label_values(lookup: pd.DataFrame, keys: pd.Series, found: pd.Series,
                  columns: list[str]) -> list:
    out: list = [None] * len(keys)
    for i in found[found].index:
        row = lookup.loc[keys[i]]
        out[i] = (_plain(row[columns[0]]) if len(columns) == 1
                  else [_plain(row[c]) for c in columns])
    return out
