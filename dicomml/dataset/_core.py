"""What both datasets share: the series list, labels, the cached load path and the error policy.

``SeriesSource`` holds only small, picklable state — the (filtered) catalog, one dict of
identifiers per series, the labels, the transform objects and the cache *folder* — and opens
files only inside ``load(i)``, i.e. in the DataLoader worker that needs them.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(3, 8, 8))
>>> src = SeriesSource(folder)
>>> src.load(0)["image"].shape
torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from dicomml.catalog.catalog import Catalog
from dicomml.errors import DicommlError, LabelGeometryError

from . import _pipeline, _shm, _source
from ._failures import FailedSample, Failures, describe
from .cache import VolumeCache, entry_key, load_or_build
from .labels import LabelReport, join_labels

log = logging.getLogger("dicomml.dataset")
ON_ERROR = ("raise", "skip")
#: exceptions that the ``on_error="skip"`` policy turns into a skipped series
SERIES_ERRORS = (DicommlError, OSError, ValueError)


class SeriesSource:
    """The series of a catalog as sample dicts (no random transforms); see the module doc.

    Parameters are those of :class:`dicomml.DicomSeriesDataset` (``transform`` here is only the
    chain whose deterministic prefix is cached).
    """

    def __init__(self, source, *, filter=None, transform=None, labels=None,
                 label_column="label", on: str | None = None, keep_unlabeled: bool = False,
                 cache_dir: str | os.PathLike | None = None, cache_mmap: bool = False,
                 on_error: str = "raise", metadata: Iterable[str] = _source.DEFAULT_METADATA,
                 loader_options: Mapping | None = None, scan_workers: int | None = None,
                 volumes: str | None = None, segmentation=None,
                 segmentation_options: Mapping | None = None):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if volumes is not None and volumes not in _source.VOLUME_MODES:
            raise ValueError(f"volumes must be one of {_source.VOLUME_MODES}, got {volumes!r}")
        self.on_error = on_error
        self.metadata_keys = tuple(metadata)
        self.loader_options = dict(loader_options or {})
        if segmentation is not None and labels is not None:
            raise ValueError("labels= (a scalar per series) and segmentation= both set "
                             "sample['label']: pass one")
        self.segmentation = _segmentation_source(segmentation)
        self.segmentation_options = dict(segmentation_options or {})
        full = Catalog.open(source, workers=scan_workers)
        catalog = _source.select(full, filter)
        table = _source.series_table(catalog, self.metadata_keys)
        if volumes is not None:  # 4D acquisitions whole (issue 16 item 1)
            table = _source.merge_acquisitions(table, catalog)
        self.label_report: LabelReport | None = None
        self._labels: list | None = None
        if labels is not None:
            table, catalog = self._join(table, catalog, labels, label_column, on, keep_unlabeled)
        self.catalog = catalog
        self.web_sources = _source.web_sources(catalog)  # travel to spawned workers
        if volumes == "samples":
            table = _source.expand_volumes(table)
            if self._labels is not None:
                self._labels = [self._labels[i] for i in _repeat_index(table)]
        self._volume = table["volume"].tolist() if "volume" in table else [None] * len(table)
        self._keys = [str(k) for k in table["series_key"]]
        self._ids = _source.row_records(table, _source.ID_COLUMNS)
        self._meta = _source.row_records(table, self.metadata_keys)
        self._n_slices = [int(n) for n in table["n_slices"]]
        if self.segmentation == "catalog":  # from the unfiltered catalog: filters drop them
            self.segmentation = _labels_from_catalog(full, self._keys, self._ids)
        self._prefix, self._rest = _pipeline.split_transforms(transform)
        self._prefix_keys = [_pipeline.cache_key_of(t) for t in self._prefix]
        self.cache = None
        if cache_dir is not None:
            _refuse_inside_data(cache_dir, getattr(catalog, "root", None))
            if isinstance(cache_dir, VolumeCache):  # e.g. VolumeCache.temporary(): kept alive
                cache_dir.mmap = cache_dir.mmap or bool(cache_mmap)  # by this dataset
                self.cache = cache_dir
            else:
                self.cache = VolumeCache(cache_dir, mmap=cache_mmap)
        self._failures = Failures(on_error)
        self._files: dict[str, list[str]] | None = None

    # --- labels ---------------------------------------------------------------------------------
    def _join(self, table, catalog, labels, label_column, on, keep_unlabeled):
        values, report = join_labels(table, labels, label_column=label_column, on=on,
                                     keep_unlabeled=keep_unlabeled)
        self.label_report = report
        dropped = report.n_unlabeled and not keep_unlabeled
        log.log(logging.WARNING if dropped else logging.INFO, "%s", report)
        if report.n_unlabeled and not keep_unlabeled:
            keep = [v is not None for v in values]
            table = table[np.asarray(keep)].reset_index(drop=True)
            values = [v for v in values if v is not None]
            catalog = catalog.filter(series_key=list(table["series_key"]))
        self._labels = values
        return table, catalog

    # --- the series ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keys)

    @property
    def series_keys(self) -> list[str]:
        """The series keys, in dataset index order."""
        return list(self._keys)

    def series_key(self, index: int) -> str:
        """The series key of series ``index``."""
        return self._keys[index]

    @property
    def slice_counts(self) -> list[int]:
        """Slices per volume of each series, from the catalog (no decoding), in index order."""
        return list(self._n_slices)

    @property
    def has_labels(self) -> bool:
        """Whether labels were joined (then :meth:`label` gives each series' label)."""
        return self._labels is not None

    @property
    def cached_transforms(self) -> tuple:
        """The deterministic prefix of the transform chain, applied before caching."""
        return tuple(self._prefix)

    @property
    def random_transforms(self) -> tuple:
        """The rest of the transform chain, to apply on every access."""
        return tuple(self._rest)

    def failures(self) -> list[dict]:
        """The series skipped by ``on_error="skip"`` so far, in any process of this dataset
        (DataLoader workers included): one record per series, by index, with ``series_index``,
        ``series_key``, ``file``, ``error_type``, ``message`` and ``tag``
        (:mod:`dicomml.dataset._failures`)."""
        return self._failures.records()

    @property
    def failed(self) -> dict[int, str]:
        """Index -> ``"ErrorType: file: message"`` of :meth:`failures`."""
        return {r["series_index"]: describe(r) for r in self.failures()}

    def files(self, index: int) -> list[str]:
        """The files of series ``index`` (grouped once per process from the catalog)."""
        if self._files is None:
            self._files = _source.files_by_series(self.catalog)
        return self._files[self._keys[index]]

    def label(self, index: int):
        """The label of series ``index`` as a tensor (numbers) or as given (None, str)."""
        return None if self._labels is None else _label_value(self._labels[index])

    def identifiers(self, index: int) -> dict:
        """``series_key``, PatientID, StudyInstanceUID, SeriesInstanceUID, AccessionNumber."""
        ids = {k: ("" if v is None else str(v)) for k, v in self._ids[index].items()}
        return {"series_key": self._keys[index], **ids}

    def cache_key(self, index: int) -> str:
        """The cache entry key of series ``index`` (stats its files now)."""
        extra = {"series_key": self._keys[index], "loader": self.loader_options,
                 "metadata": list(self.metadata_keys), "volume": self._volume[index]}
        if self.segmentation is not None:
            path = self.label_path(index)
            extra["segmentation"] = [path, os.stat(path).st_mtime_ns,
                                     sorted(self.segmentation_options.items())]
        return entry_key(self.files(index), self._prefix_keys, extra)

    # --- loading --------------------------------------------------------------------------------
    def load(self, index: int) -> dict:
        """Series ``index`` after the deterministic prefix: from the cache, else decoded (and
        then stored when a cache is set). Errors propagate (see :meth:`load_or_skip`)."""
        if self.cache is None:
            return self._decode(index)
        return load_or_build(self.cache, self.cache_key(index), lambda: self._decode(index),
                             self._keys[index])

    def _decode(self, index: int) -> dict:
        from dicomml.loader import load_series

        options = dict(self.loader_options)
        lender = None
        if "allocate" not in options:
            lender = options["allocate"] = _Lender()
        try:
            volume = load_series(self.catalog, self._keys[index], **options)
            volume = _one_volume(volume, self._volume[index], self._keys[index])
            sample = volume_sample(volume, self.identifiers(index), self._meta[index])
            sample["provenance"] = _sample_provenance(volume)
            mask = padding_tensor(volume)
            if mask is not None:
                sample["padding_mask"] = mask
            if self.segmentation is not None:  # before the prefix: transforms move it too
                sample["label"] = self.segmentation_tensor(index, volume)
        finally:
            if lender is not None:
                lender.close()
        del volume  # the sample's image may be the buffer this volume viewed: drop the view
        return _pipeline.apply_chain(self._prefix, sample)

    # --- segmentation labels (dicomml.load_labels on the image's grid) -------------------------
    def label_path(self, index: int) -> str:
        """The SEG / RTSTRUCT / label file of series ``index`` (``segmentation=``)."""
        key = self._keys[index]
        uid = str(self._ids[index].get("SeriesInstanceUID", ""))
        path = self.segmentation.get(key) or self.segmentation.get(uid)
        if path is None:
            raise LabelGeometryError("no SEG, RTSTRUCT or label file refers to this series "
                                     "(segmentation=)", path=key)
        return os.fspath(path)

    def segmentation_tensor(self, index: int, volume) -> torch.Tensor:
        """Integer label tensor (1, S, R, C) (or (C, S, R, C) channels) on ``volume``'s grid."""
        from dicomml.labels import load_labels

        labels = load_labels(self.label_path(index), volume, catalog=self.catalog,
                             **self.segmentation_options)
        array = np.asarray(labels.array)
        array = array[None] if array.ndim == 3 else array
        return torch.from_numpy(array.astype(np.float32 if array.dtype.kind == "f" else
                                             np.int64))

    def load_or_skip(self, index: int) -> dict | FailedSample:
        """Series ``index`` (see :meth:`load`); with ``on_error="skip"`` a series that fails
        is logged, recorded (:meth:`failures`) and returned as a :class:`FailedSample` — this
        time and, without a new attempt, every later time in any process."""
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} series")
        if self.on_error == "skip":
            known = self._failures.known(index)
            if known is not None:
                return FailedSample(known)
        try:
            return self.load(index)
        except SERIES_ERRORS as exc:
            if self.on_error == "raise":
                raise
            return self.skip(index, exc)

    def skip(self, index: int, exc: BaseException) -> FailedSample:
        """Log and record that series ``index`` failed with ``exc``; its marker sample."""
        return self._failures.add(index, self._keys[index], exc, "series")

    def warm(self, index: int) -> tuple[str, str]:
        """Fill the cache entry of series ``index``: ``(series_key, "cached" | "present")``."""
        if self.cache is None:
            raise ValueError("warm() needs cache_dir")
        key = self.cache_key(index)
        if key in self.cache:
            return self._keys[index], "present"
        self.cache.store(key, self._decode(index))
        return self._keys[index], "cached"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = None  # rebuilt on demand: keeps the pickle small
        state["catalog"] = _source.pack_catalog(self.catalog)
        return state

    def __setstate__(self, state: dict) -> None:
        state["catalog"] = _source.unpack_catalog(state["catalog"])
        self.__dict__.update(state)


def _sample_provenance(volume) -> dict:
    """``sample["provenance"]``: the volume's provenance (JSON-safe), with the volume's index
    and values when the sample is one volume of a 4D series (``volumes="samples"``)."""
    provenance = dict(volume.metadata.get("provenance", {}))
    if "volume_index" in volume.metadata:
        provenance["volume_index"] = volume.metadata["volume_index"]
        provenance["volume"] = volume.metadata["volume"]
    return _source.plain_tree(provenance)


def _repeat_index(table) -> list[int]:
    """For an expanded table (:func:`_source.expand_volumes`): the row of the unexpanded
    table each row came from."""
    out, row = [], -1
    for volume in table["volume"].tolist():
        if volume is None or volume != volume or volume == 0:
            row += 1
        out.append(row)
    return out


def _one_volume(volume, index, key):
    """Volume ``index`` of a 4D ``volume`` as a 3D Volume (its ``metadata["volume"]`` holds
    that volume's values and ``volume_index``); ``volume`` itself when ``index`` is None."""
    if index is None or index != index:
        return volume
    from dicomml.volume import Volume

    index = int(index)
    if volume.array.ndim - volume.is_colour != 4 or index >= volume.array.shape[0]:
        raise DicommlError(f"volume {index} does not exist (the series loads as "
                           f"{volume.array.shape}; derived images are left out)", path=key)
    metadata = dict(volume.metadata)
    metadata["volume_index"] = index
    metadata["volume"] = (metadata.get("volumes") or [{}] * (index + 1))[index]
    if metadata.get("padding_mask") is not None:
        metadata["padding_mask"] = metadata["padding_mask"][index]
    return Volume(volume.array[index], volume.affine, metadata)


def padding_tensor(volume) -> torch.Tensor | None:
    """``sample["padding_mask"]``: the volume's Pixel Padding mask
    (``metadata["padding_mask"]``) as a bool tensor of the image's shape (C, S, R, C'),
    True on padding; None when the volume has none (colour volumes: none)."""
    mask = volume.metadata.get("padding_mask")
    if mask is None or volume.is_colour:
        return None
    mask = np.asarray(mask, bool)
    return torch.from_numpy(np.ascontiguousarray(mask if mask.ndim == 4 else mask[None]))


def with_values(loader_options: Mapping | None, values, window) -> dict:
    """The Datasets' ``values=`` / ``window=`` merged into their ``loader_options`` (for
    :func:`dicomml.load_series`; part of the cache key); ValueError when both name one."""
    options = dict(loader_options or {})
    for name, given in (("values", values), ("window", window)):
        if given is None:
            continue
        if name in options and options[name] != given:
            raise ValueError(f"{name}= is given twice: {given!r} and loader_options"
                             f"[{name!r}] = {options[name]!r}")
        options[name] = tuple(given) if isinstance(given, list) else given
    return options


def _refuse_inside_data(cache_dir, data_root) -> None:
    """ValueError when the cache folder is the scanned data folder or inside it."""
    if not data_root:
        return
    cache = os.path.realpath(cache_dir)
    root = os.path.realpath(data_root)
    if os.path.isdir(root) and (cache == root or cache.startswith(root + os.sep)):
        raise ValueError(f"cache_dir {os.fspath(cache_dir)!r} is inside the data folder "
                         f"{root!r}; dicomml never writes next to your DICOM files: choose "
                         "a folder outside it")


def _labels_from_catalog(catalog, keys, ids) -> dict:
    """{series key: path of the first readable SEG / RTSTRUCT referring to its UID}."""
    labels = catalog.labels
    labels = labels[labels["error"].isna()]
    out = {}
    for key, record in zip(keys, ids):
        uid = str(record.get("SeriesInstanceUID", ""))
        for path, refs in zip(labels["path"], labels["referenced_series"]):
            if uid in (refs or []):
                out[key] = str(path)
                break
    return out


def _segmentation_source(segmentation):
    """``segmentation=`` as ``"catalog"``, a dict {series key or SeriesInstanceUID: path}, or
    None; a CSV path / DataFrame needs ``series_key`` or ``SeriesInstanceUID`` and ``path``."""
    if segmentation is None or segmentation == "catalog":
        return segmentation
    if isinstance(segmentation, Mapping):
        return {str(k): os.fspath(v) for k, v in segmentation.items()}
    import pandas as pd

    table = segmentation if isinstance(segmentation, pd.DataFrame) else \
        pd.read_csv(segmentation, dtype=str)
    on = "series_key" if "series_key" in table else "SeriesInstanceUID"
    if on not in table or "path" not in table:
        raise ValueError("a segmentation table needs a 'path' column and 'series_key' or "
                         "'SeriesInstanceUID'")
    return dict(zip(table[on].astype(str), table["path"].astype(str)))


def volume_sample(volume, identifiers: Mapping | None = None,
                  metadata: Mapping | None = None) -> dict:
    """The sample dict of a :class:`~dicomml.volume.Volume` (the one Volume -> sample rule,
    also behind :func:`dicomml.interop.volume_to_sample`).

    ``image`` float32 (C, S, R, C') (C = 1 for 3D, the volumes for 4D; colour: the R, G, B
    samples, volume-major for 4D; :func:`image_tensor`: a copy unless the dataset lent the
    buffer), ``affine`` float64 4x4 LPS, ``spacing`` float64 (3,) (slice, row, column) mm
    (``Volume.spacing``), then the ``identifiers`` and, when given, ``metadata`` (as a dict).

    >>> import numpy as np
    >>> from dicomml.volume import Volume
    >>> s = volume_sample(Volume(np.zeros((2, 3, 4)), np.diag([2.0, 0.5, 0.5, 1])))
    >>> tuple(s["image"].shape), s["spacing"].tolist()
    ((1, 2, 3, 4), [2.0, 0.5, 0.5])
    """
    sample = {
        "image": image_tensor(_channels_first(volume)),
        "affine": torch.tensor(np.asarray(volume.affine), dtype=torch.float64),
        "spacing": torch.tensor(np.asarray(volume.spacing), dtype=torch.float64),
        **(identifiers or {}),
    }
    if metadata is not None:
        sample["metadata"] = dict(metadata)
    return sample


def _channels_first(volume) -> np.ndarray:
    """The array of a volume; a colour one channel-first (``Volume.channel_array``)."""
    if not volume.is_colour:
        return volume.array
    return np.ascontiguousarray(volume.channel_array(), dtype=np.float32)


def image_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a (C, slices, rows, columns) float32 tensor (a 3D array gets C = 1).

    Never a writable alias of a read-only array (a :class:`~dicomml.volume.Volume`'s array
    stays immutable): a writable float32 array is shared, a read-only one is copied — unless
    its memory is a tensor that :class:`SeriesSource` lent to ``load_series(allocate=...)``
    for this very sample (then that tensor is returned: the dataset owns the buffer and the
    Volume, a read-only view of it, is dropped), which spares a copy of every decoded volume.

    >>> ro = np.zeros((2, 3, 4), np.float32); ro.setflags(write=False)
    >>> t = image_tensor(ro); t += 1
    >>> t.shape, float(ro.sum()), ro.flags.writeable
    (torch.Size([1, 2, 3, 4]), 0.0, False)
    """
    tensor = _Lender.claim(array)
    if tensor is None:
        if array.dtype != np.float32:
            array = array.astype(np.float32)
        elif not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(array)
    return tensor[None] if tensor.dim() == 3 else tensor


class _Lender:
    """``allocate=`` for ``load_series``: float32 outputs go into tensors the dataset owns
    (in shared memory inside a DataLoader worker, so that handing the sample to the main
    process copies nothing); :func:`image_tensor` claims them back. Entries live from the
    allocation to :meth:`close` (the end of one ``_decode``), keyed by data pointer."""

    _lent: dict[int, torch.Tensor] = {}

    def __init__(self):
        self._mine: list[int] = []

    def __call__(self, shape, dtype) -> np.ndarray:
        if np.dtype(dtype) != np.float32:
            return np.empty(shape, dtype)
        tensor = _shm.empty(shape, torch.float32)
        self._lent[tensor.data_ptr()] = tensor
        self._mine.append(tensor.data_ptr())
        return tensor.numpy()

    @classmethod
    def claim(cls, array: np.ndarray) -> torch.Tensor | None:
        """The lent tensor whose whole buffer ``array`` views (C order, float32), or None."""
        if not cls._lent or array.dtype != np.float32 or not array.flags.c_contiguous:
            return None
        pointer = array.__array_interface__["data"][0]
        tensor = cls._lent.get(pointer)
        if tensor is None or tensor.numel() != array.size:
            return None
        cls._lent.pop(pointer, None)
        return tensor.view(array.shape)

    def close(self) -> None:
        for pointer in self._mine:
            self._lent.pop(pointer, None)
        self._mine.clear()


def _label_value(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return torch.tensor(value)
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.int64)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return torch.tensor(value, dtype=torch.int64)
        if all(isinstance(v, (int, float)) for v in value):
            return torch.tensor(value, dtype=torch.float32)
    return value
