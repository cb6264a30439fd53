"""PyTorch datasets over DICOM series, with a persistent decoded-volume cache.

- :class:`DicomSeriesDataset`: one sample per series (3D/4D volumes), with labels, transforms,
  an error policy and an optional on-disk cache of the decoded, deterministically transformed
  volumes (:mod:`dicomml.dataset.cache`).
- :class:`DicomSliceDataset`: one 2D sample per slice or slab of slices.
- :class:`DicomImageDataset`: one 2D sample per image (radiography, mammography, ultrasound,
  secondary capture; frames of multi-frame objects), spacing per PS3.3, optional flips to a
  canonical orientation.
- :class:`PatchSampler`: fixed-size 3D patches (uniform or label-weighted) from a dataset.
- :func:`collate`: a DataLoader ``collate_fn`` that stacks, pads with a full-shape mask
  (never across different channel counts unless asked), or lists; it drops the
  :class:`FailedSample` markers that ``on_error="skip"`` returns for series that failed to
  load and lists them in ``batch["failed"]``.

Shapes: ``image`` is channel-first (C, slices, rows, columns); ``affine`` maps
(slice, row, column, 1) to LPS mm (docs/conventions.md).

Example
-------
>>> import tempfile, torch, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(4, 16, 16))
>>> ds = DicomSeriesDataset(folder)
>>> batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=collate)))
>>> batch["image"].shape
torch.Size([1, 1, 4, 16, 16])
"""

from __future__ import annotations

from ._failures import FailedSample
from .cache import VolumeCache
from .collate import collate
from .images import DicomImageDataset
from .labels import LabelReport, join_labels
from .patches import PatchSampler
from .series import DicomSeriesDataset
from .slices import DicomSliceDataset

__all__ = [
    "DicomImageDataset",
    "DicomSeriesDataset",
    "DicomSliceDataset",
    "FailedSample",
    "LabelReport",
    "PatchSampler",
    "VolumeCache",
    "collate",
    "join_labels",
]
