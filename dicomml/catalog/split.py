"""Series splitting: one Series Instance UID -> one or more sub-series of consistent images.

Rules (applied per SeriesInstanceUID, on header values only):

0. **class**: SOPClassUID differs -> split (a classic and an enhanced export of one
   acquisition: different objects that never form one volume).
0. **number**: SeriesNumber differs -> split (one UID reused for several series, as dcm2niix
   also keeps them apart).
1. **orientation**: ImageOrientationPatient differs by more than :data:`IOP_TOLERANCE`
   (direction-cosine units, ~0.06 degrees) -> split.
2. **matrix**: (Rows, Columns) differ -> split.
2. **colour**: colour (Samples per Pixel > 1, or PALETTE COLOR) and greyscale images -> split
   (``rgb`` / ``grey``).
3. **echo**: EchoNumbers differ (or, with equal/absent EchoNumbers, EchoTime) -> split.
4. **temporal**: TemporalPositionIdentifier differs -> split.
5. **acquisition**: AcquisitionNumber differs *and* at least one slice position occurs in two
   acquisitions (the acquisitions repeat the same coverage) -> split. CT scanners that number
   each slice (or each table step) as its own acquisition cover distinct positions, so they
   stay one series.

Objects that are not images but share a SeriesInstanceUID with images (a Philips raw-data
object beside its images, an SR in an image series) take no part in the rules: they get the
key ``UID#<object kind>`` (``1.2.3#raw-data``; ``object_kind`` from :mod:`.table`) and
``split_reason`` ``"object"``, and the images are split as if they were alone. (An image
file whose pixels were stripped stays in its series, whose loading then names it.)

Sub-series split by rules class, number, orientation, matrix or colour (:data:`UNSTACKABLE`)
can never form one volume; those split only by echo, temporal or acquisition stack into a 4D
volume when the whole Series Instance UID is loaded.

Rules 3-5 apply only to single-slice images. When every file of the series is itself a volume
(a Siemens mosaic, ``NumberOfImagesInMosaic`` > 0 or ``MOSAIC`` in ImageType, or a
multi-frame file with NumberOfFrames > 1), the files are the time points of one 4D series
(DWI, fMRI: one file per volume, each with its own AcquisitionNumber) and are kept together.

**Series key format** (stable across rescans and file order): the SeriesInstanceUID itself
when the series is not split; otherwise ``UID#label`` where the label joins, in the rule order
above, one part per rule that split this UID: ``c`` + the SOP Class UID (its part after
``1.2.840.10008.5.1.4.1.1.``), ``s{SeriesNumber}``, ``o`` + 6 hex digits of a hash of the
rounded orientation, ``m{Rows}x{Columns}``, ``rgb`` / ``grey``, ``e{EchoNumbers}`` (or
``te{EchoTime}``), ``t{n}``, ``a{n}`` (``?`` for an absent value). Example:
``1.2.3.4#e2-t5``. ``split_reason`` lists the rules that split the UID
(``"echo,temporal"``), empty when unsplit.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"SeriesInstanceUID": ["1.2", "1.2"], "EchoNumbers": [1, 2],
...                    "ImagePositionPatient": [[0, 0, 0], [0, 0, 0]]})
>>> assign_series(df)[["series_key", "split_reason"]].values.tolist()
[['1.2#e1', 'echo'], ['1.2#e2', 'echo']]
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from dicomml._columns import absent

from .table import normalize, object_columns

IOP_TOLERANCE = 1e-3
POSITION_DECIMALS = 2  # mm: positions closer than 0.01 mm are the same slice position
RULES = ("class", "number", "orientation", "matrix", "colour", "echo", "temporal",
         "acquisition")
#: rules whose sub-series never stack into one volume
UNSTACKABLE = ("class", "number", "orientation", "matrix", "colour")
_STORAGE = "1.2.840.10008.5.1.4.1.1."


def _column(df: pd.DataFrame, name: str) -> list:
    """A column as a list with None for missing values (NaN, NA)."""
    if name not in df:
        return [None] * len(df)
    col = df[name]
    if col.dtype == object:
        return col.tolist()
    return col.astype(object).where(col.notna(), None).tolist()


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def position_grid(positions) -> np.ndarray:
    """Image Position (Patient) values (lists of 3 mm, or None) -> ``(n, 3)`` float64 rounded
    to :data:`POSITION_DECIMALS` (equal rows: one slice position); a row of NaN where the
    position is missing, not 3 values, or not finite.

    >>> position_grid([[0.004, 1.0, -2.0], None]).tolist()
    [[0.0, 1.0, -2.0], [nan, nan, nan]]
    """
    positions = list(positions)
    grid = np.full((len(positions), 3), np.nan)
    for i, ipp in enumerate(positions):
        if ipp is not None and len(ipp) == 3:
            grid[i] = ipp
    grid[~np.isfinite(grid).all(axis=1)] = np.nan
    return np.round(grid, POSITION_DECIMALS) + 0.0  # + 0.0: -0.0 and 0.0 are one position


def _orientation_labels(iops: list) -> list[str]:
    """Cluster orientations within IOP_TOLERANCE; label each by a hash of its cluster.

    Clusters are seeded in sorted order of the distinct orientations, so the labels do not
    depend on file order."""
    distinct = sorted({tuple(map(float, v)) for v in iops if v is not None})
    reps: list[tuple] = []
    label_of: dict = {None: "o?"}
    for iop in distinct:
        rep = next((r for r in reps if len(r) == len(iop) and
                    max(abs(a - b) for a, b in zip(iop, r)) <= IOP_TOLERANCE), None)
        if rep is None:
            reps.append(iop)
            rep = iop
        text = ",".join(f"{v:.3f}" for v in rep)
        label_of[iop] = "o" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return [label_of[None if v is None else tuple(map(float, v))] for v in iops]


def _fmt(prefix: str, value) -> str:
    if value is None:
        return f"{prefix}?"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{prefix}{value}"


def _is_volume(frames, mosaic, image_type) -> bool:
    if mosaic is not None and mosaic > 0:
        return True
    if image_type is not None and "MOSAIC" in str(image_type).split("\\"):
        return True
    return frames is not None and frames > 1


def _labels_for_group(cols: dict, idx: np.ndarray) -> tuple[list[str], list[str]]:
    """Per-instance label parts for each rule that splits this UID group; and the rules.

    A rule's labels are a function of its raw values, so labels are only formatted for the
    rules whose raw values differ within the group (most groups: none)."""
    pick = {name: values[idx].tolist() for name, values in cols.items()}
    rules = [rule for rule in RULES if _raw_values_differ(rule, pick)]
    candidates = {rule: _LABELLERS[rule](pick) for rule in rules}
    rules = [rule for rule in rules if len(set(candidates[rule])) > 1]
    if not rules:
        return [""] * len(idx), []
    parts = list(zip(*(candidates[rule] for rule in rules)))
    return ["-".join(p) for p in parts], rules


#: rule -> the columns whose values it labels
_RULE_COLUMNS = {
    "class": ("SOPClassUID",), "number": ("SeriesNumber",),
    "orientation": ("ImageOrientationPatient",), "matrix": ("Rows", "Columns"),
    "colour": ("SamplesPerPixel", "PhotometricInterpretation"),
    "echo": ("EchoNumbers", "EchoTime"), "temporal": ("TemporalPositionIdentifier",),
    "acquisition": ("AcquisitionNumber",),
}
_PER_SLICE_RULES = ("echo", "temporal", "acquisition")  # only when the files are not volumes


def _raw_values_differ(rule: str, pick: dict) -> bool:
    if rule in _PER_SLICE_RULES and _all_volumes(pick):
        return False
    if rule == "acquisition":
        return _acquisitions_repeat(pick["AcquisitionNumber"], pick["ImagePositionPatient"])
    return any(_differ(pick[name]) for name in _RULE_COLUMNS[rule])


def _differ(values: list) -> bool:
    """True when ``values`` (scalars, or lists such as orientations) are not all equal."""
    if any(isinstance(v, list) for v in values):
        return len({None if v is None else tuple(v) for v in values}) > 1
    return len(set(values)) > 1


def _all_volumes(pick: dict) -> bool:
    if "_volumes" not in pick:
        pick["_volumes"] = all(_is_volume(f, m, t) for f, m, t in zip(
            pick["NumberOfFrames"], pick["NumberOfImagesInMosaic"], pick["ImageType"]))
    return pick["_volumes"]


def _echo_labels(pick: dict) -> list[str]:
    echo_numbers = pick["EchoNumbers"]
    if len(set(echo_numbers)) > 1:
        return [_fmt("e", v) for v in echo_numbers]
    return [_fmt("te", None if v is None else round(v, 3)) for v in pick["EchoTime"]]


_LABELLERS = {
    "class": lambda pick: [_class_label(v) for v in pick["SOPClassUID"]],
    "number": lambda pick: [_fmt("s", _number(v)) for v in pick["SeriesNumber"]],
    "orientation": lambda pick: _orientation_labels(pick["ImageOrientationPatient"]),
    "matrix": lambda pick: [f"m{_fmt('', r)}x{_fmt('', c)}"
                            for r, c in zip(pick["Rows"], pick["Columns"])],
    "colour": lambda pick: [_colour_label(n, p) for n, p in zip(
        pick["SamplesPerPixel"], pick["PhotometricInterpretation"])],
    "echo": _echo_labels,
    "temporal": lambda pick: [_fmt("t", v) for v in pick["TemporalPositionIdentifier"]],
    "acquisition": lambda pick: [_fmt("a", v) for v in pick["AcquisitionNumber"]],
}


def _colour_label(samples, photometric) -> str:
    """``rgb`` for colour images (Samples per Pixel > 1, or a palette), ``grey`` otherwise."""
    text = "" if photometric is None else str(photometric).strip().upper()
    try:
        colour = (not absent(samples) and float(samples) > 1) or text.startswith("PALETTE")
    except (TypeError, ValueError):
        colour = False
    return "rgb" if colour else "grey"


def _class_label(uid) -> str:
    if uid is None:
        return "c?"
    uid = str(uid)
    if uid.startswith(_STORAGE):
        return "c" + uid[len(_STORAGE):]
    return "c" + hashlib.sha1(uid.encode()).hexdigest()[:6]


def _number(value):
    try:
        return None if absent(value) else int(float(value))
    except (TypeError, ValueError):
        return str(value)


#: rules whose sub-series stack into a 4D volume when the whole UID is loaded
STACKABLE = ("echo", "temporal", "acquisition")


def stackable(split_reason) -> bool:
    """True when a ``split_reason`` names only :data:`STACKABLE` rules (not ``"object"``, a
    non-image object beside the images, nor an :data:`UNSTACKABLE` rule).

    >>> stackable("echo,temporal"), stackable("object"), stackable("matrix,echo")
    (True, False, False)
    """
    rules = [] if absent(split_reason) else str(split_reason).split(",")
    return bool(rules) and all(rule in STACKABLE for rule in rules)


def unstackable(split_reason) -> list[str]:
    """The rules of a ``split_reason`` (``"echo,matrix"``) whose sub-series cannot stack
    into one volume (:data:`UNSTACKABLE`); ``[]`` when they can.

    >>> unstackable("orientation,echo"), unstackable("temporal")
    (['orientation'], [])
    """
    rules = [] if absent(split_reason) else str(split_reason).split(",")
    return [rule for rule in rules if rule in UNSTACKABLE]


def _acquisitions_repeat(acquisitions: list, positions: list) -> bool:
    """True when AcquisitionNumber varies and some position is imaged in two acquisitions."""
    if len(set(acquisitions)) < 2:
        return False
    seen: dict = {}
    grid = position_grid(positions)
    for acq, key in zip(acquisitions, map(tuple, grid.tolist())):
        if key[0] != key[0]:  # NaN: no usable position
            continue
        first = seen.setdefault(key, acq)
        if first != acq:
            return True
    return False


_SPLIT_COLUMNS = ("SOPClassUID", "SeriesNumber", "SamplesPerPixel", "PhotometricInterpretation", "ImageOrientationPatient", "Rows", "Columns", "NumberOfFrames",
                  "NumberOfImagesInMosaic", "ImageType", "EchoNumbers", "EchoTime",
                  "TemporalPositionIdentifier", "AcquisitionNumber", "ImagePositionPatient")


def assign_series(instances: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``instances`` with ``series_key`` and ``split_reason`` columns."""
    out = instances.copy()
    n = len(out)
    keys = out["SeriesInstanceUID"].astype(object).tolist() if n else []
    reasons = [""] * n
    if n:
        cols = {name: _objects(_column(out, name)) for name in _SPLIT_COLUMNS}
        groups = out.groupby("SeriesInstanceUID", sort=False).indices
        kinds = out["object_kind"].to_numpy(dtype=object) if "object_kind" in out else \
            object_columns(out)[1]
        image = kinds == "image"
        for uid, idx in groups.items():
            other = idx[~image[idx]]
            if 0 < len(other) < len(idx):  # objects that are not images beside images: apart
                for i in other:
                    keys[i], reasons[i] = f"{uid}#{kinds[i].replace(' ', '-')}", "object"
                idx = idx[image[idx]]
            labels, rules = _labels_for_group(cols, idx)
            if not rules:
                continue
            reason = ",".join(rules)
            for i, label in zip(idx, labels):
                keys[i] = f"{uid}#{label}"
                reasons[i] = reason
    out["series_key"] = pd.Series(keys, index=out.index, dtype=object)
    out["split_reason"] = pd.Series(reasons, index=out.index, dtype=object)
    return out


SERIES_COLUMNS = (
    "series_key", "PatientID", "PatientName", "StudyInstanceUID", "StudyDate",
    "StudyDescription", "AccessionNumber", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "ProtocolName", "SeriesDate", "Modality", "BodyPartExamined", "Manufacturer",
    "SOPClassUID", "TransferSyntaxUID", "FrameOfReferenceUID", "ImageType", "Rows", "Columns",
    "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "ImageOrientationPatient",
    "EchoNumbers", "EchoTime", "TemporalPositionIdentifier", "BitsAllocated",
    "PhotometricInterpretation", "NumberOfImagesInMosaic",
)
COUNT_COLUMNS = ("n_instances", "n_frames", "n_slices", "n_volumes", "split_reason", "folder")


def summarize_series(instances: pd.DataFrame) -> pd.DataFrame:
    """One row per series_key: the first instance's (lowest InstanceNumber) values + counts.

    ``n_instances``: files; ``n_frames``: frames summed over files (1 per single-frame file);
    ``n_slices``: slices of one volume (distinct positions for single-frame images, the mosaic
    tile count for mosaics, the frame count for one multi-frame file); ``n_volumes``: time
    points/volumes (files of a mosaic series, instances / slices otherwise); ``folder``: the
    deepest folder holding all files.
    """
    columns = list(SERIES_COLUMNS) + list(COUNT_COLUMNS)
    if instances.empty:
        return normalize(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), columns)
    df = instances.reset_index(drop=True)
    order = df[["series_key", "InstanceNumber", "path"]].sort_values(
        ["series_key", "InstanceNumber", "path"], na_position="last")
    first_rows = order.index[~order["series_key"].duplicated()]  # sorting only 3 columns
    first = df.iloc[first_rows].set_index("series_key")
    grouped = df.groupby("series_key", sort=False)
    frames = df["NumberOfFrames"].fillna(1).clip(lower=1).astype("int64")
    counts = pd.DataFrame({
        "n_instances": grouped.size(),
        "n_frames": frames.groupby(df["series_key"], sort=False).sum(),
        "n_positions": _distinct_positions(df),
        "folder": grouped["path"].agg(_common_folder),
    })
    out = first.join(counts)
    out["n_slices"], out["n_volumes"] = zip(*(
        _slices_and_volumes(row) for row in out[
            ["n_instances", "n_frames", "n_positions", "NumberOfImagesInMosaic",
             "NumberOfFrames"]].itertuples(index=False)))
    out = out.reset_index()
    out = out.sort_values(["PatientID", "StudyDate", "StudyInstanceUID", "SeriesNumber",
                           "series_key"], na_position="last").reset_index(drop=True)
    return normalize(out[[c for c in columns if c in out]], columns)


def _distinct_positions(df: pd.DataFrame) -> pd.Series:
    """Distinct slice positions per series_key (0 when no file has one)."""
    grid = position_grid(df["ImagePositionPatient"])
    keys = df["series_key"].to_numpy(dtype=object)
    known = ~np.isnan(grid[:, 0])
    table = pd.DataFrame({"key": keys[known], "x": grid[known, 0], "y": grid[known, 1],
                          "z": grid[known, 2]}).drop_duplicates()
    counts = table.groupby("key", sort=False).size()
    return counts.reindex(pd.unique(keys), fill_value=0).astype("int64")


def _slices_and_volumes(row) -> tuple[int, int]:
    n_instances, n_frames, n_positions, mosaic, frames = row
    if not absent(mosaic) and mosaic > 0:
        return int(mosaic), int(n_instances)
    if n_frames > n_instances:  # multi-frame files
        return int(n_frames // max(n_instances, 1)), int(n_instances)
    slices = int(n_positions) if n_positions else int(n_instances)
    return slices, max(1, int(n_instances) // max(slices, 1))


def _common_folder(paths: pd.Series) -> str:
    import os

    folders = {os.path.dirname(p) for p in paths}
    return folders.pop() if len(folders) == 1 else os.path.commonpath(list(folders))
