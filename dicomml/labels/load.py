""":func:`load_labels`: a DICOM SEG or RTSTRUCT as a label :class:`~dicomml.volume.Volume` on
exactly the grid of the image it annotates.

Example
-------
>>> import dicomml                                                     # doctest: +SKIP
>>> image = dicomml.load_series(cat, key)                              # doctest: +SKIP
>>> labels = dicomml.load_labels("seg.dcm", image)                     # doctest: +SKIP
>>> labels.array.shape == image.array.shape, labels.metadata["labels"][1]["name"]  # doctest: +SKIP
(True, 'liver')
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from dicomml.catalog.label_objects import rtstruct_info, seg_info
from dicomml.errors import InvalidDicomError, LabelGeometryError, LabelWarning

from .files import is_label_file, load_label_file
from .reference import check_frame_of_reference, resolve_reference
from .rtstruct import read_rtstruct_masks
from .seg import read_seg_masks

SEG_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"})
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
MODES = ("labelmap", "channels")


def load_labels(label_object, reference=None, *, mode: str = "labelmap", segments=None,
                resample: bool = False, tolerance: float = 0.1, threshold: float | None = 0.5,
                supersample: int = 1, catalog=None):
    """A SEG or RTSTRUCT as a :class:`~dicomml.volume.Volume` on the reference's grid.

    Parameters
    ----------
    label_object : path of a DICOM SEG (binary, fractional or label-map) or RTSTRUCT file,
        or a ``pydicom.Dataset`` read from one (with ``filename``), or a NIfTI / NRRD / MHA
        label image (:mod:`.files`: needs ``reference``; reoriented exactly when its grid is
        the reference's up to axis permutations / flips, else an error unless ``resample``)
    reference : a :class:`~dicomml.volume.Volume`, a ``(catalog, series_key)`` pair, or None:
        the series the object refers to, looked up in ``catalog`` if given, else in a scan of
        the folder the object lies in
    mode : ``"labelmap"``: integer array (slices, rows, columns), 0 background, each voxel the
        segment number (SEG) or ROI number (RTSTRUCT); where segments overlap the **highest
        number wins** (the count of overlapping voxels is in ``metadata["overlap_voxels"]``,
        with a :class:`~dicomml.errors.LabelWarning`). ``"channels"``: (segments, slices,
        rows, columns) uint8 0/1 (float32 for ``threshold=None`` / ``supersample > 1``), in
        the order of ``segments``
    segments : segment / ROI numbers or names to keep, in this order (default: all, in
        ascending number)
    resample : place SEG frames that are off the grid (another in-plane grid, off-plane
        frames within half a slice) by nearest neighbour instead of raising
    tolerance : how far a SEG frame may lie off the grid, as a fraction of the voxel size
    threshold : fractional SEG: a voxel is in a segment when its fraction is >= this; None
        keeps the fractions (``mode="channels"`` only)
    supersample : RTSTRUCT: k x k sub-pixels per voxel (partial-volume coverage fractions)

    Returns a Volume with the reference's affine (index (slice, row, column, 1) -> LPS mm)
    and ``metadata["labels"]`` = {value: {"name", and SEG property codes ``category`` /
    ``type`` / ``algorithm_type``, or RTSTRUCT ``color`` / ``interpreted_type``}};
    ``metadata["channels"]`` lists the segment numbers of the channels (channels mode).
    Raises :class:`~dicomml.errors.LabelGeometryError` naming the file and segment / ROI.

    Example::

        image = dicomml.load_series(cat, key)
        lab = dicomml.load_labels("RS.dcm", image, segments=["GTV", "Lung"])   # values 1, 2..
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if threshold is None and mode != "channels":
        raise ValueError("threshold=None keeps fractions: use mode='channels'")
    if isinstance(label_object, (str, os.PathLike)) and is_label_file(label_object):
        return _from_file(label_object, reference, mode, segments, resample)
    ds, path = _read(label_object)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == RTSTRUCT_CLASS or ds.get("Modality") == "RTSTRUCT":
        info = rtstruct_info(ds, path)
    elif sop_class in SEG_CLASSES or ds.get("Modality") == "SEG":
        info = seg_info(ds, path)
    else:
        raise LabelGeometryError(f"not a SEG or RTSTRUCT (SOP class {sop_class or 'absent'})",
                                 path=path, tag="SOPClassUID")
    grid, volume = resolve_reference(reference, info, catalog=catalog)
    check_frame_of_reference(grid, info)
    numbers = select_segments(info, segments)
    if info.kind == "seg":
        masks = read_seg_masks(ds, path, grid, info, resample=resample, tolerance=tolerance,
                               threshold=threshold)
        skipped = []
        for number in numbers:
            if number not in masks:
                masks[number] = np.zeros(grid.shape, dtype=bool)
    else:
        masks, skipped = read_rtstruct_masks(ds, grid, info, supersample=supersample,
                                             numbers=numbers)
    return _volume(masks, numbers, info, grid, mode, skipped)


def _from_file(path, reference, mode, segments, resample):
    """A NIfTI / NRRD / MHA label image through :func:`.files.load_label_file`."""
    from dicomml.catalog.label_objects import LabelInfo

    from .grid import ReferenceGrid

    vol = load_label_file(path, reference, resample=resample)
    if mode == "labelmap" and segments is None:
        return vol
    info = LabelInfo(os.fspath(path), "file", segments=dict(vol.metadata["labels"]))
    numbers = select_segments(info, segments)
    grid = ReferenceGrid.from_affine(vol.spatial_shape, vol.affine,
                                     series_uid=vol.metadata.get("SeriesInstanceUID"),
                                     name=str(vol.metadata.get("reference")))
    masks = {n: vol.array == n for n in numbers}
    return _volume(masks, numbers, info, grid, mode, [])


def _read(label_object):
    import pydicom

    if isinstance(label_object, pydicom.Dataset):
        return label_object, str(getattr(label_object, "filename", None) or "<dataset>")
    path = os.fspath(label_object)
    try:
        try:
            return pydicom.dcmread(path), path
        except pydicom.errors.InvalidDicomError:  # a bare data set (no preamble / meta)
            return pydicom.dcmread(path, force=True), path
    except (pydicom.errors.InvalidDicomError, OSError, ValueError) as err:
        raise InvalidDicomError(f"cannot read label object: {err}", path=path) from err


def select_segments(info, segments) -> list[int]:
    """Segment / ROI numbers for ``segments`` (numbers or names; None: all ascending)."""
    if segments is None:
        return sorted(info.segments)
    by_name = {str(p.get("name")): n for n, p in info.segments.items()}
    numbers = []
    for item in segments:
        if isinstance(item, (int, np.integer)) and int(item) in info.segments:
            numbers.append(int(item))
        elif str(item) in by_name:
            numbers.append(by_name[str(item)])
        else:
            names = ", ".join(f"{n} {p.get('name')!r}" for n, p in sorted(info.segments.items()))
            raise LabelGeometryError(f"no segment or ROI {item!r}; the object has: {names}",
                                     path=info.path, segment=str(item))
    return numbers


def _planes(mask, shape):
    """``(plane indices, values)`` of a full array or a :class:`.rtstruct.PlaneMask`."""
    if isinstance(mask, np.ndarray):
        return slice(None), mask
    return mask.index, mask.values


def _volume(masks, numbers, info, grid, mode, skipped):
    from dicomml.volume import Volume

    labels = {n: dict(info.segments.get(n, {"name": str(n)})) for n in numbers}
    for props in labels.values():
        props.pop("frame_of_reference", None)
    meta = {"labels": labels, "label_kind": info.kind, "label_path": info.path,
            "SeriesInstanceUID": grid.series_uid, "FrameOfReferenceUID": grid.frame_of_reference,
            "reference": grid.name, "skipped": list(skipped)}
    if mode == "channels":
        floating = any(masks[n].dtype.kind == "f" for n in numbers)
        array = np.zeros((len(numbers), *grid.shape), np.float32 if floating else np.uint8)
        for i, number in enumerate(numbers):
            index, values = _planes(masks[number], grid.shape)
            array[i][index] = values
        return Volume(array, grid.affine, dict(meta, channels=list(numbers)))
    top = max(numbers, default=0)
    label = np.zeros(grid.shape, dtype=np.uint8 if top < 256 else np.int32)
    count = np.zeros(grid.shape, dtype=np.uint8)
    for number in sorted(numbers):  # ascending: the highest number is written last and wins
        index, mask = _planes(masks[number], grid.shape)
        mask = mask >= 0.5 if mask.dtype.kind == "f" else mask
        label[index] = np.where(mask, number, label[index])
        count[index] += mask
    overlap = int(np.count_nonzero(count > 1))
    if overlap:
        warnings.warn(f"{info.path}: {overlap} voxels belong to several segments; the highest "
                      "segment number wins in the label map", LabelWarning, stacklevel=3)
    return Volume(label, grid.affine, dict(meta, overlap_voxels=overlap))
