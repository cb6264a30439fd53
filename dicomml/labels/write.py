""":func:`write_seg`: a label Volume back to DICOM as a SEG, through highdicom (extra ``seg``).

Example::

    pred = dicomml.Volume(labels, image.affine)                 # (slices, rows, columns) ints
    dicomml.write_seg(pred, (cat, key), "/out/pred_seg.dcm", names={1: "liver"})
    dicomml.load_labels("/out/pred_seg.dcm", image)            # the same voxels back
"""

from __future__ import annotations

import os

import numpy as np

from dicomml._optional import require
from dicomml.errors import LabelGeometryError

from .grid import ReferenceGrid


def _source_paths(reference) -> list[str]:
    from dicomml.catalog import Catalog

    if isinstance(reference, tuple) and len(reference) == 2:
        catalog, key = reference
        return Catalog.open(catalog).files(key)
    if isinstance(reference, (str, os.PathLike)) and os.path.isdir(reference):
        catalog = Catalog.open(reference)
        if len(catalog.series) != 1:
            raise LabelGeometryError("the folder holds several image series: pass "
                                     "(catalog, series_key)", path=os.fspath(reference))
        return catalog.files(catalog.series.series_key[0])
    return [os.fspath(p) for p in reference]


def _frames_in_source_order(label, sources, path) -> np.ndarray:
    """Label planes in the order of the single-frame ``sources`` (matched by position)."""
    grid = ReferenceGrid.from_affine(label.spatial_shape, label.affine)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
    planes, dist = grid.plane_of(positions)
    offsets = grid.in_plane(positions, planes)
    first = sources[0]
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    same_axes = np.allclose(iop, np.concatenate([grid.f_r, grid.f_c]), atol=1e-4) and \
        np.allclose([float(v) for v in first.PixelSpacing], [grid.row_spacing, grid.col_spacing],
                    rtol=1e-4) and (int(first.Rows), int(first.Columns)) == grid.shape[1:]
    if not same_axes or np.abs(dist).max() > 1e-2 * grid.half_gaps().min() * 2 or \
            np.abs(offsets).max() > 1e-2 or len(set(planes.tolist())) != grid.shape[0] or \
            len(sources) != grid.shape[0]:
        raise LabelGeometryError("the label volume's planes are not the reference images' "
                                 "(same shape and affine needed)", path=path)
    return np.asarray(label.array)[planes]


def write_seg(label_volume, reference, path, *, names=None, algorithm: str = "dicomml",
              series_number: int = 900, description: str = "dicomml segmentation"):
    """Write ``label_volume`` as a DICOM SEG of the reference images to ``path``.

    ``label_volume``: a Volume on the reference grid: (slices, rows, columns) integers (0
    background, each value a segment number) or (segments, slices, rows, columns) 0/1
    channels (segment numbers 1..). ``reference``: ``(catalog, series_key)``, a folder of one
    series, or a list of its files (single-frame images). ``names``: {segment number: label}
    (default ``"segment <n>"``). Segments are AUTOMATIC, from the algorithm ``algorithm``.
    Returns ``path``. Empty frames are omitted (highdicom's default).
    """
    hd = require("highdicom", extra="seg", needed_by="write_seg()")
    import pydicom
    from pydicom.sr.codedict import codes

    path = os.fspath(path)
    array = np.asarray(label_volume.array)
    if array.ndim == 4:  # channels -> label numbers 1..C (no overlaps allowed)
        if (array.astype(bool).sum(axis=0) > 1).any():
            raise LabelGeometryError("channels overlap; write a label map or one SEG per "
                                     "channel", path=path)
        array = np.max(array.astype(bool) * np.arange(1, len(array) + 1)[:, None, None, None],
                       axis=0)
        label_volume = type(label_volume)(array, label_volume.affine)
    if array.dtype.kind not in "iub":
        raise LabelGeometryError(f"labels must be integers, got {array.dtype}", path=path)
    sources = [pydicom.dcmread(p) for p in _source_paths(reference)]
    frames = _frames_in_source_order(label_volume, sources, path).astype(np.uint16)
    numbers = sorted(int(v) for v in np.unique(frames) if v)
    names = dict(names or {})
    algorithm_id = hd.AlgorithmIdentificationSequence(
        name=algorithm, version="1", family=codes.cid7162.ArtificialIntelligence)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=str(names.get(n, f"segment {n}")),
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm_id) for n in range(1, max(numbers, default=0) + 1)]
    if not descriptions:
        raise LabelGeometryError("the label volume is empty: nothing to write", path=path)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="dicomml", manufacturer_model_name="dicomml", software_versions="dicomml",
        device_serial_number="0", series_description=description)
    seg.save_as(path)
    return path
