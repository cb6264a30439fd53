"""Readable text summary of a Catalog (``dicomml info``).

Example
-------
>>> from dicomml.catalog import Catalog
>>> print(summary_text(Catalog()))
0 patients, 0 studies, 0 series, 0 instances (0 frames), 0 errors
no DICOM files were indexed
"""

from __future__ import annotations

import pandas as pd

#: Columns of the table of objects that are not image series.
OBJECT_VIEW = ("object_kind", "SeriesNumber", "Modality", "SeriesDescription", "sop_class",
               "n_instances", "series_key")
SERIES_VIEW = ("PatientID", "StudyDate", "SeriesNumber", "Modality", "SeriesDescription",
               "Rows", "Columns", "n_instances", "n_slices", "n_volumes", "split_reason",
               "series_key")


def summary_text(cat, max_rows: int = 50) -> str:
    """Counts line, the image series table (at most ``max_rows`` rows), the objects that are
    not image series (SR, RT structure sets, raw data, images without pixel data), and the
    error summary."""
    s, errors = cat.series, cat.errors
    others = _other_objects(cat)
    n_frames = int(s["n_frames"].sum()) if len(s) else 0
    n_patients = s["PatientID"].nunique(dropna=False) if len(s) else 0
    n_studies = s["StudyInstanceUID"].nunique() if len(s) else 0
    other_count = f", {len(others)} other objects" if len(others) else ""
    lines = [f"{n_patients} patients, {n_studies} studies, {len(s)} series{other_count}, "
             f"{len(cat.instances)} instances ({n_frames} frames), {len(errors)} errors"]
    if cat.root:
        lines.append(f"root: {cat.root}")
    if len(cat.instances) == 0:
        lines.append("no DICOM files were indexed")
    if len(s):
        lines += ["", "series:"] + _table(s, SERIES_VIEW, max_rows)
        if len(s) > max_rows:
            lines.append(f"... {len(s) - max_rows} more series")
    if len(others):
        lines += ["", "other objects (not image series; Catalog.objects lists them):"]
        lines += _table(others, OBJECT_VIEW, max_rows)
        if len(others) > max_rows:
            lines.append(f"... {len(others) - max_rows} more objects")
    if len(errors):
        counts = errors.groupby(["error_type", "reason"]).size().sort_values(ascending=False)
        lines += ["", "errors (files not indexed):"]
        for (etype, reason), n in counts.head(20).items():
            lines.append(f"  {n:6d}  {etype}: {reason}")
        lines.append("  first files: " + ", ".join(errors["path"].head(3)))
    return "\n".join(lines)


def _other_objects(cat) -> pd.DataFrame:
    """Rows of ``cat.objects`` not in ``cat.series``, with a readable ``sop_class``."""
    from dicomml.errors import sop_class_name

    objects = getattr(cat, "objects", cat.series)
    others = objects[~objects["series_key"].isin(cat.series["series_key"])].copy()
    if "SOPClassUID" in others:
        others["sop_class"] = [sop_class_name(u) for u in others["SOPClassUID"]]
    if "has_pixels" in others and "object_kind" in others:
        bare = ~others["has_pixels"].astype(bool) & others["object_kind"].eq("image")
        others.loc[bare, "object_kind"] = "image without pixels"
    return others


def _table(frame: pd.DataFrame, columns, max_rows: int) -> list[str]:
    view = frame[[c for c in columns if c in frame]].copy()
    if "SeriesDescription" in view:
        view["SeriesDescription"] = view["SeriesDescription"].fillna("").str.slice(0, 28)
    for name in ("SeriesNumber", "Rows", "Columns"):
        if name in view:
            view[name] = view[name].astype("Int64")  # display 3, not 3.0
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 72):
        return view.head(max_rows).to_string(index=False).splitlines()
