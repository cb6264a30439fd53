"""Readable text summary of a Catalog (``dicomml info``).

Example
-------
>>> from dicomml.catalog import Catalog
>>> print(summary_text(Catalog()).splitlines()[0])
0 patients, 0 studies, 0 series, 0 instances (0 frames), 0 errors
"""

from __future__ import annotations

import pandas as pd

SERIES_VIEW = ("PatientID", "StudyDate", "SeriesNumber", "Modality", "SeriesDescription",
               "Rows", "Columns", "n_instances", "n_slices", "n_volumes", "split_reason",
               "series_key")


def summary_text(cat, max_rows: int = 50) -> str:
    """Counts line, the series table (at most ``max_rows`` rows), and the error summary."""
    s, errors = cat.series, cat.errors
    n_frames = int(s["n_frames"].sum()) if len(s) else 0
    n_patients = s["PatientID"].nunique(dropna=False) if len(s) else 0
    n_studies = s["StudyInstanceUID"].nunique() if len(s) else 0
    lines = [f"{n_patients} patients, {n_studies} studies, {len(s)} series, "
             f"{len(cat.instances)} instances ({n_frames} frames), {len(errors)} errors"]
    if cat.root:
        lines.append(f"root: {cat.root}")
    if len(s):
        view = s[[c for c in SERIES_VIEW if c in s]].copy()
        view["SeriesDescription"] = view["SeriesDescription"].fillna("").str.slice(0, 28)
        for name in ("SeriesNumber", "Rows", "Columns"):
            if name in view:
                view[name] = view[name].astype("Int64")  # display 3, not 3.0
        with pd.option_context("display.width", 200, "display.max_columns", 20,
                               "display.max_colwidth", 72):
            lines += ["", "series:", view.head(max_rows).to_string(index=False)]
        if len(s) > max_rows:
            lines.append(f"... {len(s) - max_rows} more series")
    if len(errors):
        counts = errors.groupby(["error_type", "reason"]).size().sort_values(ascending=False)
        lines += ["", "errors:"]
        for (etype, reason), n in counts.head(20).items():
            lines.append(f"  {n:6d}  {etype}: {reason}")
        lines.append("  first files: " + ", ".join(errors["path"].head(3)))
    return "\n".join(lines)
