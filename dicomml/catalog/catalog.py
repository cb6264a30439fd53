"""``Catalog``: the header index of a folder of DICOM files, as three pandas DataFrames.

- ``instances``: one row per readable DICOM file (columns: see :mod:`dicomml.catalog.table`),
  plus ``series_key`` and ``split_reason``;
- ``series``: one row per image (sub-)series (``series_key``), the first instance's header
  values and the counts ``n_instances``, ``n_frames``, ``n_slices``, ``n_volumes``, and
  ``folder``; ``Rows`` / ``Columns`` are the image matrix of one slice (for a Siemens mosaic
  the tile, e.g. 128 x 128), ``StoredRows`` / ``StoredColumns`` the stored frame (the whole
  mosaic, e.g. 640 x 640; equal to Rows / Columns otherwise);
- ``objects``: the same table for every object in the folder, images and the rest (structured
  reports, RT structure sets, segmentations, raw data, presentation states...), told apart by
  ``object_kind`` and ``has_pixels`` (:mod:`.table`); ``series`` is its ``"image"`` rows;
- ``errors``: one row per skipped file: ``path``, ``file_size``, ``mtime``, ``mtime_ns``,
  ``error_type`` (a :mod:`dicomml.errors` class name), ``reason``, ``tag``.

Hierarchy views: :meth:`Catalog.patients` (patients -> counts), :meth:`Catalog.studies`
(studies -> counts) and :meth:`Catalog.series` itself; :meth:`Catalog.tree` prints the
patient -> study -> series hierarchy.

Example
-------
>>> import dicomml
>>> cat = dicomml.scan("/data/ct", progress=False)                 # doctest: +SKIP
>>> ct = cat.filter(Modality="CT", min_slices=50)                  # doctest: +SKIP
>>> ct.files(ct.series.series_key[0])[:2]                          # doctest: +SKIP
['/data/ct/a/IM0001', '/data/ct/a/IM0002']
>>> cat.objects.object_kind.value_counts()                         # doctest: +SKIP
>>> rtstruct = cat.filter(object_kind="rt structure set").series   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dicomml.errors import CatalogError, SeriesNotFoundError

from . import store
from .split import assign_series, summarize_series
from .table import add_object_columns, errors_frame, instances_frame

#: The object kinds ``Catalog.series`` shows (``Catalog.objects`` shows every kind).
IMAGE_KINDS = ("image",)

#: ``filter`` shorthands: ``min_slices=50`` means ``n_slices >= 50``.
_ALIASES = {"slices": "n_slices", "instances": "n_instances", "frames": "n_frames",
            "volumes": "n_volumes"}


class Catalog:
    """Header index of DICOM files: ``instances``, ``series`` and ``errors`` DataFrames.

    Build one with :func:`dicomml.scan`, or :meth:`Catalog.load` a saved one. ``len(cat)`` is
    the number of image series. Catalogs are treated as immutable: methods return new
    catalogs.

    ``series`` lists image series only; ``objects`` lists every object (same columns), with
    ``object_kind`` ("image", "rt structure set", "structured report", "raw data"... see
    :data:`dicomml.catalog.table.OBJECT_KINDS`) and ``has_pixels``.
    ``cat.filter(object_kind="rt structure set")`` gives a catalog whose ``series`` are the
    RT structure sets; ``cat.filter(object_kind=OBJECT_KINDS)`` one that shows every kind.
    ``instances`` and ``series_instances(key)`` hold every file, whatever its kind.
    """

    def __init__(self, instances: pd.DataFrame | None = None,
                 series: pd.DataFrame | None = None, errors: pd.DataFrame | None = None,
                 root: str | None = None):
        if instances is None:
            instances = assign_series(instances_frame([]))
        elif "series_key" not in instances:
            instances = assign_series(instances)
        self._instances = add_object_columns(instances.reset_index(drop=True))
        self._parquet = None  # an open catalog file whose instances are not read yet
        series = summarize_series(self._instances) if series is None else \
            series.reset_index(drop=True)
        self._kinds = IMAGE_KINDS
        self.series = complete_series(series, self._instances)
        self.errors = (errors_frame([]) if errors is None else errors).reset_index(drop=True)
        self.root = root

    @property
    def instances(self) -> pd.DataFrame:
        """One row per DICOM file (read from the catalog file on first use after ``load``)."""
        if self._instances is None:
            self._instances = add_object_columns(store.read_instances(self._parquet))
            self._parquet.close()
            self._parquet = None
        return self._instances

    @property
    def objects(self) -> pd.DataFrame:
        """One row per (sub-)series of *every* object kind: image series and the rest
        (``object_kind``: "structured report", "rt structure set", "raw data"...), with the
        columns of :attr:`series`.

        >>> cat.objects.groupby("object_kind").size()               # doctest: +SKIP
        """
        return self._objects

    @property
    def series(self) -> pd.DataFrame:
        """One row per image (sub-)series with pixel data (``object_kind == "image"`` and
        ``has_pixels``), unless this catalog came from ``filter(object_kind=...)``, which
        shows the kinds asked for; :attr:`objects` lists every object."""
        view = self.__dict__.get("_series_view")
        if view is None:
            objects = self._objects
            if self._kinds is None or "object_kind" not in objects:
                view = objects
            else:
                mask = objects["object_kind"].isin(self._kinds) & objects["has_pixels"]
                view = objects[mask].reset_index(drop=True)
            self._series_view = view
        return view

    @series.setter
    def series(self, frame: pd.DataFrame) -> None:
        """Set the table of every object (``objects``); ``series`` shows its image rows."""
        self._objects = frame
        self._series_view = None

    @property
    def labels(self) -> pd.DataFrame:
        """One row per segmentation object (DICOM SEG, RTSTRUCT): what it refers to and the
        segments / ROIs it holds (columns: :mod:`.label_objects`), read from those files on
        first use. They are never image series (see :attr:`objects`).

        >>> cat.labels[["path", "referenced_series", "segment_names"]]  # doctest: +SKIP
        """
        labels = self.__dict__.get("_labels")
        if labels is None:
            from .label_objects import labels_of_catalog

            labels = self._labels = labels_of_catalog(self.instances)
        return labels

    def labels_for(self, series_key: str) -> pd.DataFrame:
        """The rows of :attr:`labels` that refer to the image series ``series_key`` (by its
        SeriesInstanceUID, so sub-series of one UID share them).

        >>> cat.labels_for(cat.series.series_key[0]).path.tolist()      # doctest: +SKIP
        ['/data/ct/seg.dcm']
        """
        from .label_objects import labels_referring_to

        return labels_referring_to(self.labels, str(self[series_key]["SeriesInstanceUID"]))

    def file_index(self) -> pd.DataFrame:
        """``path``, ``file_size``, ``mtime_ns`` of every indexed file (cheap after load)."""
        columns = ["path", "file_size", "mtime_ns"]
        if self._instances is not None:
            return self._instances[columns]
        return store.read_instances(self._parquet, columns)

    def __getstate__(self):  # picklable (DataLoader workers): read everything first
        state = dict(self.__dict__, _instances=self.instances, _parquet=None, _key_rows=None,
                     _series_view=None)
        return state

    # --- persistence ---
    def save(self, path) -> None:
        """Write the catalog (every object kind) to the Parquet file ``path``, or to a
        partitioned Parquet directory when ``path`` ends with ``/`` (see :mod:`.store`)."""
        store.save_tables(path, self.instances, self._objects, self.errors, self.root)

    @classmethod
    def load(cls, path) -> Catalog:
        """Read a catalog written by :meth:`save`, a file or a partitioned directory
        (``CatalogError`` if missing/unreadable).

        The series and errors tables are read at once; the instances table on first use of
        :attr:`instances` (from this version of the file, even if it is replaced meanwhile).
        """
        parquet, series, errors, root = store.open_catalog(path)
        cat = cls.__new__(cls)
        cat._instances, cat._parquet, cat._kinds = None, parquet, IMAGE_KINDS
        cat.series, cat.errors, cat.root = series, errors, root
        if not _complete(series):  # written before object kinds: derive them once
            cat.series = complete_series(series, cat.instances)
        return cat

    @classmethod
    def open(cls, source, *, workers: int | None = None, progress: bool = False) -> Catalog:
        """A catalog from ``source``: a Catalog (returned as is), a file or partitioned folder
        saved by :meth:`save`, or a folder of DICOM files or one DICOM file (scanned;
        ``workers`` and ``progress`` as in ``scan``). The one rule the command-line tools use
        for their CATALOG_OR_DIR argument.

        Raises ``CatalogError`` for a path that does not exist, ``TypeError`` for anything
        else.

        Example
        -------
        >>> import tempfile, dicomml
        >>> folder = tempfile.mkdtemp()
        >>> _ = dicomml.synth.write_series(folder, shape=(2, 4, 4))
        >>> len(Catalog.open(folder).series)
        1
        """
        import os
        from pathlib import Path

        from .scanner import scan

        if isinstance(source, cls):
            return source
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError("source must be a Catalog, a saved catalog path or a folder, "
                            f"got {type(source).__name__}")
        path = Path(source)
        if not path.exists():
            raise CatalogError("no such folder or catalog file", path=path)
        if store.is_catalog_dir(path):
            return cls.load(path)
        if path.is_file():
            try:
                return cls.load(path)
            except CatalogError:
                if path.suffix == ".parquet":  # a broken catalog, not a DICOM file
                    raise
        return scan(path, workers=workers, progress=progress)

    # --- per-series access (used by the loader) ---
    def series_instances(self, series_key: str) -> pd.DataFrame:
        """Instances of one series, sorted by InstanceNumber then path; a fresh index."""
        positions = self._rows_by_key().get(series_key)
        rows = self.instances.iloc[positions if positions is not None else []]
        if rows.empty:
            raise SeriesNotFoundError(f"no series {series_key!r} in the catalog",
                                      path=series_key)
        return rows.sort_values(["InstanceNumber", "path"], na_position="last") \
            .reset_index(drop=True)

    def _rows_by_key(self) -> dict:
        """``{series_key: row positions in instances}``, built once per catalog (catalogs are
        immutable), so per-series lookups do not scan every row."""
        cached = self.__dict__.get("_key_rows")
        if cached is None:
            cached = self.instances.groupby("series_key", sort=False).indices
            self._key_rows = cached
        return cached

    def files(self, series_key: str) -> list[str]:
        """Absolute paths of the files of one series, in ``series_instances`` order."""
        return self.series_instances(series_key)["path"].tolist()

    def __getitem__(self, series_key: str) -> pd.Series:
        """The ``objects`` row of one series key (an image series or any other object)."""
        rows = self._objects[self._objects["series_key"] == series_key]
        if rows.empty:
            raise SeriesNotFoundError(f"no series {series_key!r} in the catalog",
                                      path=series_key)
        return rows.iloc[0]

    def __contains__(self, series_key) -> bool:
        return bool((self.series["series_key"] == series_key).any())

    def __iter__(self):
        """Iterate over series keys."""
        return iter(self.series["series_key"].tolist())

    # --- query ---
    def filter(self, **criteria) -> Catalog:
        """Series matching every criterion, as a new Catalog (errors are kept as they are).

        A criterion ``column=value`` matches equal values; a list/tuple/set matches any of
        its values; a callable gets the column (a pandas Series) and returns a boolean mask.
        ``min_<column>`` / ``max_<column>`` bound numeric columns inclusively; ``slices``,
        ``instances``, ``frames``, ``volumes`` stand for ``n_slices``... (``min_slices=50``).
        Columns of ``series`` select whole series; columns only in ``instances`` select
        instances (series left without instances disappear and counts are recomputed).
        ``object_kind=`` selects which kinds of object the new catalog's ``series`` shows
        (by default it shows the kinds this one shows: images). Acquisition criteria
        (:mod:`.selection`): ``image_type``, ``exclude_image_type``, ``orientation`` (with
        ``orientation_tolerance`` in degrees), ``spacing``, ``slice_spacing``, ``thickness``
        (``(low, high)`` mm), ``matrix``, ``contrast``, ``description`` (a regex).

        >>> cat.filter(Modality=["CT", "MR"], min_slices=50, max_Rows=512)  # doctest: +SKIP
        >>> cat.filter(object_kind=["segmentation", "rt structure set"])    # doctest: +SKIP
        >>> cat.filter(orientation="axial", thickness=(None, 1.5), image_type="ORIGINAL")
        ... # doctest: +SKIP
        """
        from .selection import apply_criteria

        criteria, acquisition = apply_criteria(self, criteria)
        objects = self._objects
        series_mask = pd.Series(True, index=objects.index) if acquisition is None else \
            acquisition
        instance_mask = pd.Series(True, index=self.instances.index)
        for name, value in criteria.items():
            bound, column = _split_bound(name)
            if column in objects:
                series_mask &= _match(objects[column], bound, value)
            elif column in self.instances:
                instance_mask &= _match(self.instances[column], bound, value)
            else:
                raise KeyError(f"filter: no column {column!r} in series or instances")
        keys = set(objects.loc[series_mask, "series_key"])
        keep = instance_mask & self.instances["series_key"].isin(keys)
        instances = self.instances[keep]
        if bool(instance_mask.all()):
            series = objects[series_mask]
        else:
            series = summarize_series(instances)
        out = Catalog(instances, series, self.errors, self.root)
        out._kinds = None if "object_kind" in criteria else self._kinds
        return out

    # --- selection (dicomml.catalog.partition / .selection / .audit) ---
    def split(self, fractions=(0.8, 0.1, 0.1), *, by="PatientID", stratify=None, seed=0,
              names=None, keep=None, links=None):
        """Split into whole patients (groups never cross splits): a mapping of split name ->
        Catalog, savable with ``.save(catalog_path)``. See :mod:`.partition` (linked
        ``by`` columns, ``links``, stratification, ``keep=`` for stable re-splits).

        >>> parts = cat.split((0.8, 0.1, 0.1), stratify="label", seed=0)  # doctest: +SKIP
        """
        from .partition import split

        return split(self, fractions, by=by, stratify=stratify, seed=seed, names=names,
                     keep=keep, links=links)

    def kfold(self, k: int, *, by="PatientID", stratify=None, seed=0, links=None) -> list:
        """``k`` mappings ``{"train": Catalog, "val": Catalog}`` whose val parts partition
        the patients (:func:`.partition.kfold`)."""
        from .partition import kfold

        return kfold(self, k, by=by, stratify=stratify, seed=seed, links=links)

    def query(self, expression: str, *, orientation_tolerance: float | None = None) -> Catalog:
        """Series for which ``expression`` holds (``pandas.DataFrame.query`` syntax) over the
        columns of ``series`` and the acquisition values of
        :func:`.selection.acquisition_table` (``orientation``, ``obliquity_deg``,
        ``row_spacing``, ``column_spacing``, ``slice_spacing`` in mm, ``image_type``,
        ``localizer``); a new Catalog. ``orientation_tolerance`` in degrees (default
        :data:`.selection.ORIENTATION_TOLERANCE_DEG`).

        >>> cat.query("orientation == 'axial' and slice_spacing <= 1.25 and n_slices > 100")
        ... # doctest: +SKIP
        """
        from .selection import ORIENTATION_TOLERANCE_DEG, query_keys

        tolerance = ORIENTATION_TOLERANCE_DEG if orientation_tolerance is None else \
            orientation_tolerance
        return self.filter(series_key=query_keys(self, expression, tolerance))

    def exclude_localizers(self) -> Catalog:
        """This catalog without localizers (scouts, topograms, three-plane surveys), by the
        named rule :data:`.selection.LOCALIZER_RULE`; :func:`.selection.localizers` lists
        what it removes and why.

        >>> cat.exclude_localizers()                                    # doctest: +SKIP
        """
        from .selection import localizers

        found = set(localizers(self).series_key)
        return self.filter(series_key=[k for k in self._objects.series_key if k not in found])

    def duplicates(self, pixels: bool = False) -> pd.DataFrame:
        """Duplicated files and series, one row per extra copy (``kind``, ``key``, ``keep``,
        ``duplicate``); ``pixels=True`` also compares stored Pixel Data (reads files). See
        :func:`.selection.duplicates`; :meth:`drop_duplicates` applies the keep rule."""
        from .selection import duplicates

        return duplicates(self, pixels=pixels)

    def drop_duplicates(self, pixels: bool = False) -> Catalog:
        """This catalog without the ``duplicate`` side of :meth:`duplicates`."""
        from .selection import drop_duplicates

        return drop_duplicates(self, pixels=pixels)

    def audit(self, *, read_files: bool = True):
        """A report of what is in the catalog and what needs action before training or
        sharing (:class:`.audit.AuditReport`: ``tables``, ``findings``, ``to_markdown()``,
        ``save(folder)``). ``read_files``: read one header per series with pydicom for the
        identifying attributes the catalog does not collect. Nothing is modified."""
        from .audit import audit

        return audit(self, read_files=read_files)

    # --- hierarchy views ---
    def patients(self) -> pd.DataFrame:
        """One row per PatientID: name, n_studies, n_series, n_instances."""
        s = self.series
        if s.empty:
            return pd.DataFrame(columns=["PatientID", "PatientName", "n_studies", "n_series",
                                         "n_instances"])
        g = s.groupby(s["PatientID"].fillna(""), sort=True)
        return pd.DataFrame({
            "PatientName": g["PatientName"].first(),
            "n_studies": g["StudyInstanceUID"].nunique(),
            "n_series": g.size(),
            "n_instances": g["n_instances"].sum(),
        }).reset_index()

    def studies(self) -> pd.DataFrame:
        """One row per study: patient, date, description, modalities, n_series, n_instances."""
        s = self.series
        cols = ["PatientID", "StudyInstanceUID", "StudyDate", "StudyDescription",
                "Modalities", "n_series", "n_instances"]
        if s.empty:
            return pd.DataFrame(columns=cols)
        g = s.groupby("StudyInstanceUID", sort=False)
        out = pd.DataFrame({
            "PatientID": g["PatientID"].first(),
            "StudyDate": g["StudyDate"].first(),
            "StudyDescription": g["StudyDescription"].first(),
            "Modalities": g["Modality"].agg(lambda m: ",".join(sorted(set(m.dropna())))),
            "n_series": g.size(),
            "n_instances": g["n_instances"].sum(),
        }).reset_index()
        return out.sort_values(["PatientID", "StudyDate"], na_position="last")[cols] \
            .reset_index(drop=True)

    def tree(self) -> str:
        """The patient -> study -> series hierarchy as indented text."""
        lines = []
        for pid, by_patient in self.series.groupby(self.series["PatientID"].fillna("?"),
                                                   sort=True):
            lines.append(f"patient {pid}")
            for study, by_study in by_patient.groupby("StudyInstanceUID", sort=False):
                date = by_study["StudyDate"].iloc[0] or ""
                lines.append(f"  study {study} {date}".rstrip())
                for row in by_study.itertuples(index=False):
                    lines.append(f"    {_series_line(row)}")
        return "\n".join(lines)

    # --- summaries ---
    def __len__(self) -> int:
        return len(self.series)

    def __repr__(self) -> str:
        n_pat = self.series["PatientID"].nunique(dropna=False) if len(self.series) else 0
        n_std = self.series["StudyInstanceUID"].nunique() if len(self.series) else 0
        root = f", root={self.root!r}" if self.root else ""
        others = len(self._objects) - len(self.series)
        others = f", {others} other objects" if others else ""
        return (f"<Catalog: {n_pat} patients, {n_std} studies, {len(self.series)} series"
                f"{others}, {len(self.instances)} instances, {len(self.errors)} errors{root}>")

    def summary(self, max_rows: int = 50) -> str:
        """A readable multi-line summary: counts, the series table, the error summary."""
        from .summary import summary_text

        return summary_text(self, max_rows=max_rows)


#: Columns :func:`complete_series` adds to what :func:`.split.summarize_series` gives.
SERIES_EXTRA = ("object_kind", "has_pixels", "StoredRows", "StoredColumns")


def _complete(series: pd.DataFrame) -> bool:
    return all(name in series for name in SERIES_EXTRA)


def complete_series(series: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    """``series`` (one row per series key) with the columns of :data:`SERIES_EXTRA`, and
    ``Rows`` / ``Columns`` as the image matrix; returned unchanged when complete already.

    - ``object_kind``: "image" when any file of the series is an image, else the kind of its
      files (the first file's); ``has_pixels``: any file of the series holds pixel data;
    - ``StoredRows`` / ``StoredColumns``: the stored frame's size (the header's Rows /
      Columns); ``Rows`` / ``Columns``: one slice's matrix. They differ only for a Siemens
      mosaic with NumberOfImagesInMosaic ``n``: ``ceil(sqrt(n))`` tiles per side, as
      :func:`dicomml.geometry.mosaic.mosaic_layout` cuts them (a mosaic known only from
      ImageType and the CSA header keeps the stored size).

    >>> series = pd.DataFrame({"series_key": ["a"], "Rows": [640.0], "Columns": [640.0],
    ...                        "NumberOfImagesInMosaic": [25.0]})
    >>> instances = pd.DataFrame({"series_key": ["a"], "has_pixels": [True],
    ...                           "object_kind": ["image"]})
    >>> complete_series(series, instances)[["Rows", "StoredRows"]].values.tolist()
    [[128.0, 640.0]]
    """
    if _complete(series):
        return series
    out = series.copy()
    instances = add_object_columns(instances)
    keys = instances["series_key"]
    any_pixels = instances["has_pixels"].groupby(keys, sort=False).any()
    any_image = instances["object_kind"].eq("image").groupby(keys, sort=False).any()
    first_kind = instances["object_kind"].groupby(keys, sort=False).first()
    kind = first_kind.where(~any_image.reindex(first_kind.index), "image")
    out["object_kind"] = pd.Series(out["series_key"].map(kind).fillna("other non-image")
                                   .tolist(), index=out.index, dtype=object)
    out["has_pixels"] = out["series_key"].map(any_pixels).fillna(False).astype(bool)
    stored = {name: _float_column(out, name) for name in ("Rows", "Columns")}
    grid = _mosaic_grid(_float_column(out, "NumberOfImagesInMosaic"), *stored.values())
    for name, values in stored.items():
        out["Stored" + name] = values
        out[name] = values / grid
    return out


def _float_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)


def _mosaic_grid(n: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Tiles per side of each row's mosaic (``ceil(sqrt(n))``; 1 where not a mosaic, or where
    the stored size is not a whole number of tiles)."""
    with np.errstate(invalid="ignore"):
        grid = np.where(n > 0, np.ceil(np.sqrt(np.where(n > 0, n, 1))), 1.0)
        whole = (np.fmod(rows, grid) == 0) & (np.fmod(columns, grid) == 0)
    return np.where(whole, grid, 1.0)


def _split_bound(name: str) -> tuple[str | None, str]:
    for bound in ("min", "max"):
        if name.startswith(bound + "_"):
            column = name[len(bound) + 1:]
            return bound, _ALIASES.get(column, column)
    return None, _ALIASES.get(name, name)


def _match(column: pd.Series, bound: str | None, value) -> pd.Series:
    if bound == "min":
        return (column >= value).fillna(False).astype(bool)
    if bound == "max":
        return (column <= value).fillna(False).astype(bool)
    if callable(value):
        return pd.Series(value(column), index=column.index).fillna(False).astype(bool)
    if isinstance(value, (list, tuple, set, frozenset)):
        return column.isin(list(value)).fillna(False).astype(bool)
    if value is None:
        return column.isna()
    return (column == value).fillna(False).astype(bool)


def _series_line(row) -> str:
    desc = row.SeriesDescription or ""
    number = "" if pd.isna(row.SeriesNumber) else f"#{int(row.SeriesNumber)} "
    return (f"{number}{row.Modality or '?'} {desc} [{row.n_instances} files, "
            f"{row.n_slices} slices] {row.series_key}").replace("  ", " ")

