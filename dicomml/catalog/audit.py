"""``Catalog.audit()`` / ``dicomml audit``: what a catalog holds, and what needs action before
training on it or sharing it. Nothing is modified.

The report (:class:`AuditReport`) has

- ``tables``: series per patient, modality mix, pixel spacing and slice thickness
  (histogram counts), orientation classes (:func:`.selection.orientation_class`), matrix
  sizes, study date range, vendors/models;
- ``findings``: one row per finding (``severity``: ``"action"`` / ``"warning"`` /
  ``"info"``, ``finding``, ``count``, ``examples``):

  - identifying attributes present (:data:`IDENTIFYING`: PatientName, PatientBirthDate,
    dates, institution, physicians...), private tags present, and de-identification declared
    or not (PatientIdentityRemoved, DeidentificationMethod). The catalog does not collect
    most of these tags: with ``read_files=True`` (default) one header per series is read with
    pydicom (``stop_before_pixels``); else only what the catalog holds is reported;
  - BurnedInAnnotation ``YES``, or absent, for modalities that burn text into pixels
    (:data:`BURN_IN_MODALITIES` and Secondary Capture objects);
  - series with inconsistent geometry: a Series Instance UID split by orientation or matrix,
    repeated slice positions, uneven slice spacing (beyond :data:`SPACING_TOLERANCE`);
  - duplicated files/series (:func:`.selection.duplicates`), localizers
    (:data:`.selection.LOCALIZER_RULE`), series without PatientID;
  - the scan's skipped files, grouped by error type.

``report.to_markdown()`` is one Markdown page; ``report.save(folder)`` writes it as
``audit.md`` with PNG plots beside it when matplotlib is installed.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(3, 8, 8), PatientName="Doe^Jane")
>>> report = dicomml.Catalog.open(folder).audit()
>>> bool(report.findings.finding.str.contains("PatientName").any())
True
>>> report.tables["modality"].to_dict("records")
[{'Modality': 'CT', 'series': 1}]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

#: Attributes that identify a person, a place or a time (PS3.15 Annex E, a subset), reported
#: when present and not empty.
IDENTIFYING = ("PatientName", "PatientBirthDate", "PatientAddress", "OtherPatientIDs",
               "OtherPatientNames", "PatientTelephoneNumbers", "InstitutionName",
               "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
               "OperatorsName", "StationName", "DeviceSerialNumber", "StudyDate", "SeriesDate",
               "AcquisitionDate", "ContentDate", "AccessionNumber")
#: Modalities whose images often carry burned-in text (ultrasound, screen captures).
BURN_IN_MODALITIES = ("US", "SC", "CR", "DX", "XC", "OT", "ES")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: Relative spread of slice spacing (``(max - min) / median``) above which a series is uneven.
SPACING_TOLERANCE = 0.1
_READ = IDENTIFYING + ("PatientIdentityRemoved", "DeidentificationMethod",
                       "BurnedInAnnotation", "ManufacturerModelName")
_EXAMPLES = 3


class AuditReport:
    """The result of :func:`audit`: ``tables`` (name -> DataFrame), ``findings`` (DataFrame),
    ``counts`` (dict), and ``to_markdown()`` / ``save(folder)``."""

    def __init__(self, counts: dict, tables: dict, findings: pd.DataFrame, plots: dict):
        self.counts, self.tables, self.findings, self._plots = counts, tables, findings, plots

    def __repr__(self) -> str:
        action = int((self.findings.severity == "action").sum())
        return (f"<AuditReport: {self.counts['series']} series, {len(self.findings)} "
                f"findings ({action} need action)>")

    def to_markdown(self, images: dict | None = None) -> str:
        """The report as Markdown; ``images``: table name -> image file name to show."""
        c = self.counts
        lines = ["# dicomml audit", "",
                 f"{c['patients']} patients, {c['studies']} studies, {c['series']} series, "
                 f"{c['instances']} files indexed, {c['skipped']} files skipped.", "",
                 "## Findings", ""]
        lines += [_md_table(self.findings) if len(self.findings) else "No findings.", ""]
        for name, table in self.tables.items():
            lines += [f"## {name.replace('_', ' ').capitalize()}", ""]
            if images and name in images:
                lines += [f"![{name}]({images[name]})", ""]
            lines += [_md_table(table) if len(table) else "(none)", ""]
        return "\n".join(lines)

    def save(self, folder) -> Path:
        """Write ``audit.md`` (and, with matplotlib, one PNG per plotted table) into
        ``folder`` (created if needed); returns the Markdown file's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        images = _plot(self.tables, self._plots, folder)
        path = folder / "audit.md"
        path.write_text(self.to_markdown(images))
        return path


def audit(catalog, *, read_files: bool = True) -> AuditReport:
    """Audit ``catalog`` (see the module docstring); reads at most one header per series."""
    from .selection import localizers, orientation_class

    s = catalog.series
    headers = _read_headers(catalog) if read_files and len(s) else None
    counts = {"patients": int(s.PatientID.nunique(dropna=False)) if len(s) else 0,
              "studies": int(s.StudyInstanceUID.nunique()) if len(s) else 0,
              "series": len(s), "instances": len(catalog.instances),
              "skipped": len(catalog.errors)}
    orientation = s.ImageOrientationPatient.map(
        lambda iop: orientation_class(iop, angle=False))
    tables = {
        "series_per_patient": _counts(s.groupby(s.PatientID.fillna("<none>")).size(),
                                      "series per patient", "patients"),
        "modality": _counts(s.Modality.fillna("<none>"), "Modality", "series"),
        "pixel_spacing_mm": _histogram(s.PixelSpacing.map(_first)),
        "slice_thickness_mm": _histogram(s.SliceThickness),
        "orientation": _counts(orientation, "orientation", "series"),
        "matrix": _counts(s.Rows.map(_int).astype(str) + "x" + s.Columns.map(_int).astype(str),
                          "matrix", "series"),
        "study_dates": _date_range(s),
        "vendors": _vendors(s, headers),
    }
    findings = (_identity_findings(s, headers) + _burn_in_findings(s, headers) +
                _geometry_findings(catalog) + _selection_findings(catalog, localizers) +
                _skipped_findings(catalog.errors))
    frame = pd.DataFrame(findings, columns=["severity", "finding", "count", "examples"])
    order = {"action": 0, "warning": 1, "info": 2}
    frame = frame.sort_values("severity", key=lambda c: c.map(order), kind="stable")
    plots = {"series_per_patient": "bar", "modality": "bar", "pixel_spacing_mm": "bar",
             "slice_thickness_mm": "bar", "orientation": "bar", "matrix": "bar",
             "vendors": "bar"}
    return AuditReport(counts, tables, frame.reset_index(drop=True), plots)


# --- reading what the catalog does not hold ------------------------------------------------
def _read_headers(catalog) -> pd.DataFrame:
    """One row per series key: the :data:`_READ` tags (text or None) and ``private`` (the
    header holds private tags), from the first file of the series (pydicom, no pixels)."""
    import pydicom

    from .selection import _first_files, _text

    rows = {}
    for key, path in _first_files(catalog).items():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:  # unreadable now: reported as unknown  # noqa: BLE001
            rows[key] = {"private": None}
            continue
        row = {k: _text(ds.get(k)) for k in _READ}
        row["private"] = any(elem.tag.is_private for elem in ds)
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(_READ) + ["private"])


def _identity_findings(s: pd.DataFrame, headers) -> list:
    out = []
    values = headers if headers is not None else s.set_index("series_key")
    for keyword in IDENTIFYING:
        if keyword not in values:
            continue
        present = values[keyword].map(lambda v: isinstance(v, str) and bool(v.strip()))
        if present.any():
            out.append(("action", f"identifying attribute {keyword} present",
                        int(present.sum()), _examples(present[present].index)))
    if headers is None:
        out.append(("info", "files not read (read_files=False): only the identifying "
                    "attributes the catalog collects were checked", len(s), ""))
        return out
    private = headers["private"].fillna(False).astype(bool)
    if private.any():
        out.append(("action", "private tags present", int(private.sum()),
                    _examples(private[private].index)))
    removed = headers["PatientIdentityRemoved"].fillna("").str.upper().eq("YES")
    method = headers["DeidentificationMethod"].map(lambda v: isinstance(v, str) and bool(v))
    if (~removed).any():
        out.append(("warning", "de-identification not declared (PatientIdentityRemoved absent "
                    "or not YES)", int((~removed).sum()), _examples(removed[~removed].index)))
    if removed.any():
        declared = removed & method
        out.append(("info", "de-identification declared (PatientIdentityRemoved YES"
                    f"{', DeidentificationMethod given' if declared.all() else ''})",
                    int(removed.sum()), _examples(removed[removed].index)))
    return out


def _burn_in_findings(s: pd.DataFrame, headers) -> list:
    burn = s.Modality.isin(BURN_IN_MODALITIES) | s.SOPClassUID.fillna("").str.startswith(
        SECONDARY_CAPTURE)
    keys = s.series_key[burn]
    if headers is None or keys.empty:
        return []
    flag = headers.reindex(keys)["BurnedInAnnotation"].fillna("").str.upper()
    out = []
    if flag.eq("YES").any():
        out.append(("action", "BurnedInAnnotation YES (text in the pixels)",
                    int(flag.eq("YES").sum()), _examples(flag[flag.eq("YES")].index)))
    if flag.eq("").any():
        out.append(("action", "BurnedInAnnotation absent for a modality that burns text in "
                    f"({', '.join(sorted(set(s.Modality[burn].dropna())))})",
                    int(flag.eq("").sum()), _examples(flag[flag.eq("")].index)))
    return out


def _geometry_findings(catalog) -> list:
    s = catalog.series
    out = []
    split = s.split_reason.fillna("").str.contains("orientation|matrix")
    if split.any():
        out.append(("warning", "SeriesInstanceUID split by orientation or matrix "
                    "(inconsistent geometry in one series)",
                    int(s.SeriesInstanceUID[split].nunique()), _examples(s.series_key[split])))
    repeated, uneven = [], []
    volumes = s.set_index("series_key").n_volumes
    for key, rows in catalog.instances.groupby("series_key", sort=False):
        if key not in volumes.index or volumes[key] != 1 or len(rows) < 3:
            continue
        positions = _positions(rows)
        if positions is None:
            continue
        distinct = np.unique(np.round(positions, 2))
        if distinct.size < positions.size:
            repeated.append(key)
        steps = np.diff(distinct)
        if steps.size > 1 and (steps.max() - steps.min()) > SPACING_TOLERANCE * np.median(steps):
            uneven.append(key)
    if repeated:
        out.append(("warning", "repeated slice positions in a 3D series", len(repeated),
                    _examples(repeated)))
    if uneven:
        out.append(("warning", f"uneven slice spacing (spread > {SPACING_TOLERANCE:.0%} of "
                    "the median: a gap or missing slices)", len(uneven), _examples(uneven)))
    return out


def _positions(rows: pd.DataFrame) -> np.ndarray | None:
    from .selection import _normal

    normal = next((n for n in map(_normal, rows.ImageOrientationPatient) if n is not None), None)
    ipp = [p for p in rows.ImagePositionPatient
           if isinstance(p, (list, tuple, np.ndarray)) and len(p) == 3]
    if normal is None or len(ipp) != len(rows):
        return None
    return np.asarray(ipp, dtype=np.float64) @ normal


def _selection_findings(catalog, localizers) -> list:
    from .selection import duplicates

    out = []
    found = duplicates(catalog)
    for kind, text in (("file", "duplicated files (one SOPInstanceUID, several files)"),
                       ("series", "duplicated series (identical instance sets)")):
        rows = found[found.kind == kind]
        if len(rows):
            out.append(("warning", text, len(rows), _examples(rows.duplicate)))
    scouts = localizers(catalog)
    if len(scouts):
        out.append(("info", "localizers (Catalog.exclude_localizers removes them)",
                    len(scouts), _examples(scouts.series_key)))
    s = catalog.series
    anonymous = s.PatientID.map(lambda v: not (isinstance(v, str) and v.strip()))
    if anonymous.any():
        out.append(("warning", "series without PatientID (splits group them per study)",
                    int(anonymous.sum()), _examples(s.series_key[anonymous])))
    return out


def _skipped_findings(errors: pd.DataFrame) -> list:
    out = []
    for error_type, rows in errors.groupby(errors.error_type.fillna("?"), sort=True):
        reason = rows.reason.dropna().iloc[0] if rows.reason.notna().any() else ""
        out.append(("info", f"skipped files: {error_type} (e.g. {reason})", len(rows),
                    _examples(rows.path)))
    return out


# --- tables ---------------------------------------------------------------------------------
def _counts(values, name: str, unit: str) -> pd.DataFrame:
    counts = pd.Series(values).value_counts(sort=False).sort_index()
    return pd.DataFrame({name: counts.index.tolist(), unit: counts.to_numpy(dtype=int)})


def _histogram(values) -> pd.DataFrame:
    """Counts of the values rounded to 0.01 mm (``mm``, ``series``); absent values counted as
    ``"absent"``."""
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    table = _counts(numeric.dropna().round(2), "mm", "series")
    missing = int(numeric.isna().sum())
    if missing:
        table = pd.concat([table, pd.DataFrame({"mm": ["absent"], "series": [missing]})],
                          ignore_index=True)
    return table


def _date_range(s: pd.DataFrame) -> pd.DataFrame:
    dates = pd.to_datetime(s.StudyDate, format="%Y%m%d", errors="coerce").dropna()
    if dates.empty:
        return pd.DataFrame({"first": [], "last": [], "studies with a date": []})
    return pd.DataFrame({"first": [dates.min().date().isoformat()],
                         "last": [dates.max().date().isoformat()],
                         "studies with a date": [int(s.StudyInstanceUID[
                             s.StudyDate.notna()].nunique())]})


def _vendors(s: pd.DataFrame, headers) -> pd.DataFrame:
    vendor = s.Manufacturer.fillna("<none>")
    if headers is not None:
        model = s.series_key.map(headers["ManufacturerModelName"]).fillna("")
        vendor = (vendor + " " + model).str.strip()
    return _counts(vendor, "vendor/model", "series")


def _first(value):
    return float(value[0]) if isinstance(value, (list, tuple, np.ndarray)) and len(value) else \
        math.nan


def _int(value):
    return int(value) if isinstance(value, (int, float)) and value == value else "?"


def _examples(values) -> str:
    values = [str(v) for v in values]
    more = f" (+{len(values) - _EXAMPLES})" if len(values) > _EXAMPLES else ""
    return ", ".join(values[:_EXAMPLES]) + more


def _md_table(frame: pd.DataFrame) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(cell, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body)


def _plot(tables: dict, plots: dict, folder: Path) -> dict:
    """One bar chart per table in ``plots`` (PNG in ``folder``); {} without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    images = {}
    for name in plots:
        table = tables.get(name)
        if table is None or table.empty:
            continue
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.bar(table.iloc[:, 0].astype(str), table.iloc[:, 1])
        ax.set_xlabel(table.columns[0])
        ax.set_ylabel(table.columns[1])
        ax.set_title(name.replace("_", " "))
        ax.tick_params(axis="x", labelrotation=45)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=80)
        plt.close(fig)
        images[name] = f"{name}.png"
    return images


# --- command line ---------------------------------------------------------------------------
def register(subparsers) -> None:
    """Add the ``audit`` subcommand."""
    p = subparsers.add_parser(
        "audit", help="report what a catalog holds and what needs action",
        description="Audit CATALOG (a catalog file written by 'dicomml scan', or a folder, "
                    "scanned now): series per patient, modalities, spacing, orientation, "
                    "matrix sizes, dates, vendors, and findings that need action "
                    "(identifying attributes, private tags, de-identification, burned-in "
                    "annotations, inconsistent geometry, duplicates, skipped files). "
                    "Nothing is modified.",
        epilog="Prints the report as Markdown; with -o writes audit.md and PNG plots "
               "(matplotlib) into a folder. Exit status 0.")
    p.add_argument("catalog", metavar="CATALOG", help="a catalog file or a DICOM folder")
    p.add_argument("-o", "--output", metavar="FOLDER", default=None,
                   help="write audit.md and plots into FOLDER (created if needed)")
    p.add_argument("--no-read", action="store_true",
                   help="do not read headers: report only what the catalog holds")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .catalog import Catalog

    report = audit(Catalog.open(args.catalog), read_files=not args.no_read)
    print(report.to_markdown())
    if args.output:
        print(f"\nreport written to {report.save(args.output)}")
    return 0
