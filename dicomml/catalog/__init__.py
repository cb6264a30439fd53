"""The catalog: a persistent header index of patients, studies, series and instances.

``scan(root)`` walks a folder (recursively; any file name, with or without ``.dcm``), reads
headers only, in parallel processes, and returns a :class:`Catalog` with three DataFrames:

- ``instances``: one row per DICOM file. Columns are named by DICOM keyword
  (``SeriesInstanceUID``, ``ImagePositionPatient``...; see :mod:`.tags` for the full list)
  plus ``path``, ``file_size``, ``mtime``/``mtime_ns``, ``NumberOfImagesInMosaic`` (Siemens),
  ``pixel_data_offset``/``pixel_data_length`` (where the Pixel Data value lies in the file;
  -1 offset: none or deflated; -1 length: encapsulated), ``float_pixel_data`` (1.0 for Float /
  Double Float Pixel Data, else NaN), ``header_source``, ``series_key``,
  ``split_reason``, and ``has_pixels`` / ``object_kind`` (``"image"``, ``"structured report"``,
  ``"rt structure set"``, ``"raw data"``...; :mod:`.table`). Types (:mod:`.table`): numeric
  tags float64 with NaN when absent, IPP/IOP/PixelSpacing as ``list[float]`` (Parquet list columns), text as ``str``/None.
- ``series``: one row per *image* series key, with ``n_instances``, ``n_frames``,
  ``n_slices``, ``n_volumes``, ``split_reason``, ``folder`` (:func:`.split.summarize_series`);
  ``Rows`` / ``Columns`` the image matrix (a mosaic's tile), ``StoredRows`` /
  ``StoredColumns`` the stored frame. ``objects``: the same for every object kind (SR, RT
  structure sets, segmentations, raw data... beside the images).
- ``errors``: one row per skipped file: ``path``, ``error_type``, ``reason``, ``tag``.

Design decisions (details in each submodule):

- **Header parser** (:mod:`.header`): own bounded element walker, ~5x faster than pydicom's
  ``dcmread(stop_before_pixels=True)``; reads at most 8 MiB, inflates deflated data sets
  incrementally up to 8 MiB; checked against pydicom on every test file.
- **Series keys** (:mod:`.split`): the SeriesInstanceUID, or ``UID#label`` when a UID is split
  by orientation, matrix, echo, temporal position or repeated acquisition. Mosaic and
  multi-frame series (DWI, fMRI) are never split by echo/time/acquisition.
- **Storage** (:mod:`.store`): ONE Parquet file whose table is ``instances``; ``series`` and
  ``errors`` ride in its metadata. ``Catalog.load`` reads ``instances`` lazily.
- **Incremental rescans** (:mod:`.scanner`): ``scan(root, catalog=path)`` re-reads only new or
  changed files (path, size, mtime_ns); removed files drop out.
- **Parallelism** (:mod:`.parallel`): a process pool (the parser is pure Python: threads do
  not scale); a crashing worker is bisected to the file that kills it, recorded in ``errors``.
- **Hierarchy views**: ``cat.patients()``, ``cat.studies()``, ``cat.series``, ``cat.tree()``.
- **DICOMDIR** files are not followed (the walk finds every file under the root and nothing
  outside it); they appear in ``errors`` with ``error_type == "DICOMDIR"``.

Names are imported lazily so that parser worker processes stay light.

Example
-------
>>> from dicomml.catalog import scan, Catalog                       # doctest: +SKIP
>>> cat = scan("/data/ct", catalog="ct.parquet")                    # doctest: +SKIP
>>> ct = cat.filter(Modality="CT", min_slices=50)                   # doctest: +SKIP
"""

from __future__ import annotations

from dicomml._lazy import lazy_exports

_EXPORTS = {"scan": "dicomml.catalog.scanner", "Catalog": "dicomml.catalog.catalog"}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
