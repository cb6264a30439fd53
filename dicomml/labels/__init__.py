"""Segmentation labels on the image's grid: DICOM SEG, RTSTRUCT (and label files).

:func:`load_labels` returns a :class:`~dicomml.volume.Volume` with exactly the reference
image's spatial shape and affine (index (slice, row, column, 1) -> LPS mm): a label map
(0 background, each voxel a segment / ROI number) or one 0/1 channel per segment
((segments, slices, rows, columns)).

Example::

    import dicomml
    image = dicomml.load_series(cat, key)
    labels = dicomml.load_labels("seg.dcm", image)              # same shape and affine
    labels.metadata["labels"]                                    # {1: {"name": "liver", ...}}
"""

from .files import load_label_file
from .grid import ReferenceGrid
from .load import load_labels, select_segments
from .rtstruct import fill_polygons
from .write import write_seg

__all__ = ["ReferenceGrid", "fill_polygons", "load_label_file", "load_labels", "select_segments",
           "write_seg"]
