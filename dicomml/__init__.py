"""dicomml: folders of DICOM files to training-ready PyTorch data, with exact geometry.

Quick start::

    import dicomml
    cat = dicomml.scan("/data/ct")                 # header-only index, persistent with catalog=
    vol = dicomml.load_series(cat, cat.series.series_key[0])
    vol.array.shape, vol.affine                    # (slices, rows, columns), 4x4 LPS
    ds = dicomml.DicomSeriesDataset(cat)           # a torch Dataset

Conventions (stated once, used everywhere): arrays are (slices, rows, columns) — or
(volumes, slices, rows, columns) for 4D — and ``affine`` maps the index vector
(slice, row, column, 1) to patient coordinates in millimetres in DICOM's LPS frame.

The public names are imported lazily so that ``import dicomml`` stays fast and light.
"""

from __future__ import annotations

from dicomml._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "scan": "dicomml.catalog",
    "Catalog": "dicomml.catalog",
    "check_leakage": "dicomml.catalog.partition",
    "Volume": "dicomml.volume",
    "load_series": "dicomml.loader",
    "load_labels": "dicomml.labels",
    "write_seg": "dicomml.labels",
    "read_pixels": "dicomml.decode",
    "read_many": "dicomml.decode",
    "decoders": "dicomml.decode",
    "DicomSeriesDataset": "dicomml.dataset",
    "DicomSliceDataset": "dicomml.dataset",
    "DicomImageDataset": "dicomml.dataset",
    "PatchSampler": "dicomml.dataset",
    "collate": "dicomml.dataset",
    "FailedSample": "dicomml.dataset",
    "build_cache": "dicomml.dataset.cli",
    "to_ray_dataset": "dicomml.cluster.data",
    "synth": "dicomml.synth",
    "transforms": "dicomml.transforms",
    "interop": "dicomml.interop",
    "errors": "dicomml.errors",
    "viz": "dicomml.viz",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, extra=("__version__",))
