"""Header facts of segmentation objects (DICOM SEG, RTSTRUCT) and the ``Catalog.labels`` table.

The scan keeps SEG and RTSTRUCT objects apart from the image series (``object_kind``
"segmentation" / "rt structure set" in ``Catalog.objects``); what they refer to and which
segments they hold is read here, lazily, with pydicom (headers only), for the few such
objects a catalog has.

``Catalog.labels`` columns: ``path``, ``series_key`` (the object's own), ``object_kind``,
``sop_class``, ``SOPInstanceUID``, ``referenced_series`` (list of SeriesInstanceUIDs),
``FrameOfReferenceUID``, ``segment_numbers`` (list of int: SEG segment / RTSTRUCT ROI
numbers), ``segment_names`` (list of str), ``segmentation_type`` (SEG: BINARY / FRACTIONAL /
LABELMAP; RTSTRUCT: None), ``algorithm_types`` (list of str: SEG segment algorithm types,
RTSTRUCT ROI generation algorithms), ``error`` (why the object could not be read, else None).

Example
-------
>>> labels_frame([]).columns.tolist()[:3]
['path', 'series_key', 'object_kind']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LABEL_KINDS = ("segmentation", "rt structure set")
LABEL_COLUMNS = ("path", "series_key", "object_kind", "sop_class", "SOPInstanceUID",
                 "referenced_series", "FrameOfReferenceUID", "segment_numbers", "segment_names",
                 "segmentation_type", "algorithm_types", "error")


@dataclass
class LabelInfo:
    """What a label object says about itself: ``path``, ``kind`` ("seg" / "rtstruct"),
    ``series_uids`` (referenced SeriesInstanceUIDs), ``frame_of_reference``, ``segments``
    ({number: properties dict with at least ``name``}), ``seg_type`` (SEG only)."""

    path: str
    kind: str
    series_uids: list = field(default_factory=list)
    frame_of_reference: str | None = None
    segments: dict = field(default_factory=dict)
    seg_type: str | None = None


def _code(item, keyword):
    seq = item.get(keyword)
    if not seq:
        return None
    code = seq[0]
    return {"value": str(code.get("CodeValue", "") or code.get("LongCodeValue", "") or ""),
            "scheme": str(code.get("CodingSchemeDesignator", "") or ""),
            "meaning": str(code.get("CodeMeaning", "") or "")}


def seg_info(ds, path) -> LabelInfo:
    """Header facts of a SEG data set (segments with their property codes)."""
    segments = {}
    for item in ds.get("SegmentSequence", []):
        number = int(item.SegmentNumber)
        segments[number] = {
            "name": str(item.get("SegmentLabel", "") or f"segment {number}"),
            "algorithm_type": str(item.get("SegmentAlgorithmType", "") or ""),
            "category": _code(item, "SegmentedPropertyCategoryCodeSequence"),
            "type": _code(item, "SegmentedPropertyTypeCodeSequence"),
            "color_cielab": [int(v) for v in item.get("RecommendedDisplayCIELabValue", [])],
        }
    series_uids = [str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", [])
                   if s.get("SeriesInstanceUID")]
    for study in ds.get("StudiesContainingOtherReferencedInstancesSequence", []):
        series_uids += [str(s.SeriesInstanceUID) for s in
                        study.get("ReferencedSeriesSequence", []) if s.get("SeriesInstanceUID")]
    return LabelInfo(str(path), "seg", series_uids, ds.get("FrameOfReferenceUID"), segments,
                     str(ds.get("SegmentationType", "BINARY")).upper())


def rtstruct_info(ds, path) -> LabelInfo:
    """Header facts of an RTSTRUCT: ROIs (number -> name, colour, interpreted type, frame of
    reference), referenced series and frame of reference."""
    rois = {}
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        rois[number] = {"name": str(item.get("ROIName", "") or f"ROI {number}"),
                        "frame_of_reference": item.get("ReferencedFrameOfReferenceUID"),
                        "color": None, "interpreted_type": None,
                        "algorithm_type": str(item.get("ROIGenerationAlgorithm", "") or "")}
    for item in ds.get("ROIContourSequence", []):
        roi = rois.setdefault(int(item.ReferencedROINumber),
                              {"name": f"ROI {int(item.ReferencedROINumber)}"})
        color = item.get("ROIDisplayColor")
        roi["color"] = [int(v) for v in color] if color else None
    for item in ds.get("RTROIObservationsSequence", []):
        if item.get("ReferencedROINumber") is not None:
            roi = rois.get(int(item.ReferencedROINumber))
            if roi is not None:
                roi["interpreted_type"] = str(item.get("RTROIInterpretedType", "") or "")
    series, frames = [], []
    for ref in ds.get("ReferencedFrameOfReferenceSequence", []):
        frames.append(ref.get("FrameOfReferenceUID"))
        for study in ref.get("RTReferencedStudySequence", []):
            series += [str(s.SeriesInstanceUID) for s in study.get("RTReferencedSeriesSequence", [])
                       if s.get("SeriesInstanceUID")]
    frame = next((f for f in frames if f), None) or ds.get("FrameOfReferenceUID")
    return LabelInfo(str(path), "rtstruct", series, frame, rois)


def label_info(ds, path) -> LabelInfo:
    """:class:`LabelInfo` of a SEG or RTSTRUCT data set (by Modality / SOP class)."""
    if str(ds.get("Modality", "")) == "RTSTRUCT" or \
            str(ds.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.481.3":
        return rtstruct_info(ds, path)
    return seg_info(ds, path)


def _row(path, series_key, kind) -> dict:
    import pydicom

    row = dict.fromkeys(LABEL_COLUMNS)
    row.update(path=path, series_key=series_key, object_kind=kind)
    try:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:  # a bare data set
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        info = label_info(ds, path)
    except Exception as err:  # noqa: BLE001 - one bad object never breaks the table
        row["error"] = f"{type(err).__name__}: {err}"
        return row
    numbers = sorted(info.segments)
    row.update(sop_class=str(ds.get("SOPClassUID", "")) or None,
               SOPInstanceUID=str(ds.get("SOPInstanceUID", "")) or None,
               referenced_series=list(dict.fromkeys(info.series_uids)),
               FrameOfReferenceUID=str(info.frame_of_reference) if info.frame_of_reference
               else None,
               segment_numbers=numbers,
               segment_names=[info.segments[n].get("name") for n in numbers],
               segmentation_type=info.seg_type,
               algorithm_types=[info.segments[n].get("algorithm_type") or "" for n in numbers])
    return row


def labels_frame(rows) -> pd.DataFrame:
    """The ``Catalog.labels`` table from ``(path, series_key, object_kind)`` triples."""
    records = [_row(*row) for row in rows]
    frame = pd.DataFrame(records, columns=list(LABEL_COLUMNS))
    return frame.astype({c: object for c in LABEL_COLUMNS})


def labels_of_catalog(instances: pd.DataFrame) -> pd.DataFrame:
    """The ``Catalog.labels`` table for a catalog's ``instances`` (SEG and RTSTRUCT files)."""
    if "object_kind" not in instances or instances.empty:
        return labels_frame([])
    rows = instances[instances["object_kind"].isin(LABEL_KINDS)]
    return labels_frame(rows[["path", "series_key", "object_kind"]].itertuples(index=False))


def labels_referring_to(labels: pd.DataFrame, series_uid: str) -> pd.DataFrame:
    """Rows of ``labels`` whose ``referenced_series`` hold ``series_uid``."""
    mask = np.array([series_uid in (refs or []) for refs in labels["referenced_series"]],
                    dtype=bool)
    return labels[mask].reset_index(drop=True)
