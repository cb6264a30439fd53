"""``DicomSliceDataset``: one 2D sample per slice, or per slab of ``slab`` adjacent slices.

The index — (series, first slice) pairs — is built from the catalog's frame counts, without
decoding anything. A sample's volume comes from the cache (``cache_dir``, read with memory
mapping so only the slab's pages are touched) or is decoded and kept as the one most recently
used volume of the worker: with ``shuffle=True`` and no cache every sample decodes a whole
series, so set ``cache_dir`` (or run ``dicomml cache``) for shuffled 2D training.

Sample: ``image`` float32 (C * slab, rows, columns) — the slab's slices as channels (C = 1 for
3D series); ``affine`` float64 4x4 mapping (slice within the slab, row, column, 1) to LPS mm
(the volume's affine moved to the slab's first slice); ``spacing`` float64 (3,);
``slice_index`` (int: the slab's first slice in the volume); identifiers, ``metadata`` and
``label`` as in :class:`~dicomml.dataset.series.DicomSeriesDataset`. ``transform`` sees the slab
in the 3D layout (C, slab, rows, columns), so ``dicomml.transforms`` apply unchanged; the
channels are merged after it.

4D series: the catalog's ``n_slices`` counts slices per volume, and a sample holds that slab
of every volume (C = the volumes). Should a volume hold fewer slices than the catalog says (a
stale catalog), every sample of the series raises
:class:`~dicomml.errors.InconsistentSeriesError` (with ``on_error="skip"`` the series fails
as a whole: none of its slabs is served).

``on_error="skip"``: every sample of a series that fails to load is a
:class:`~dicomml.dataset.FailedSample` (its record plus ``slice_index``), which
:func:`dicomml.collate` drops and lists in ``batch["failed"]``; :meth:`failures` reads what
failed in any process.

Example
-------
>>> import tempfile, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(5, 16, 16))
>>> ds = dicomml.DicomSliceDataset(folder, slab=3)
>>> len(ds), ds[0]["image"].shape, ds[2]["slice_index"]
(3, torch.Size([3, 16, 16]), 2)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from dicomml.errors import InconsistentSeriesError

from . import _pipeline, _source
from ._core import SeriesSource, with_values
from ._failures import FailedSample
from .patches import _shifted_affine
from .series import _check_index, _check_splits, _generator


class DicomSliceDataset(torch.utils.data.Dataset):
    """Map-style dataset of slices / slabs (see the module docstring).

    ``slab``: slices per sample; ``stride``: step between the first slices of consecutive
    samples of a series (1: every slab, ``slab``: non-overlapping). Other parameters as in
    :class:`~dicomml.dataset.series.DicomSeriesDataset`; ``transform`` is applied per sample
    (nothing is cached but the decoded volume). ``splits``: checked for leakage as in
    :class:`~dicomml.dataset.series.DicomSeriesDataset` (``self.split`` names the split).
    ``segmentation`` / ``segmentation_options`` as there: ``sample["label"]`` is then the
    matching slab of the label map, (slab, rows, columns) int64 (channels: (C * slab, rows,
    columns)). ``values`` / ``window`` as there; ``sample["padding_mask"]`` is the slab's
    padding, shaped as ``image``.
    """

    def __init__(self, source, *, slab: int = 1, stride: int = 1, filter=None, transform=None,
                 labels=None, label_column: str | list[str] = "label", on: str | None = None,
                 keep_unlabeled: bool = False, cache_dir: str | os.PathLike | None = None,
                 on_error: str = "raise", metadata: Iterable[str] = _source.DEFAULT_METADATA,
                 loader_options: Mapping | None = None, seed: int | None = None,
                 scan_workers: int | None = None, splits: Mapping | None = None,
                 segmentation=None, segmentation_options: Mapping | None = None,
                 values: str | None = None, window=None):
        if slab < 1 or stride < 1:
            raise ValueError("slab and stride must be >= 1")
        self.source = SeriesSource(
            source, filter=filter, transform=None, labels=labels, label_column=label_column,
            on=on, keep_unlabeled=keep_unlabeled, cache_dir=cache_dir, cache_mmap=True,
            on_error=on_error, metadata=metadata,
            loader_options=with_values(loader_options, values, window),
            scan_workers=scan_workers, segmentation=segmentation,
            segmentation_options=segmentation_options)
        self.split = _check_splits(self.source.catalog, splits)
        self.slab, self.stride = int(slab), int(stride)
        self.transform = _pipeline.flatten(transform)
        self.seed, self.epoch = seed, 0
        self._series, self._starts = self._build_index(self.source.slice_counts)
        self._recent: tuple[int, int, dict] | None = None

    def _build_index(self, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        series, starts = [], []
        for i, n in enumerate(counts):
            first = np.arange(0, max(n - self.slab + 1, 0), self.stride, dtype=np.int64)
            series.append(np.full(first.size, i, dtype=np.int64))
            starts.append(first)
        if not series:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(series), np.concatenate(starts)

    def __len__(self) -> int:
        return int(self._series.size)

    @property
    def series_keys(self) -> list[str]:
        """Series keys in series index order (``failures()`` records' ``series_index``)."""
        return self.source.series_keys

    def position(self, index: int) -> tuple[str, int]:
        """``(series_key, first slice)`` of sample ``index`` (no decoding)."""
        index = _check_index(index, len(self))
        return self.source.series_key(int(self._series[index])), int(self._starts[index])

    def _volume(self, series_index: int) -> dict | FailedSample:
        """The volume sample (or failure marker) of a series; the last one is kept per process."""
        if self._recent is None or self._recent[0] != series_index:
            self._recent = (series_index, self._load(series_index))
        return self._recent[1]

    def _load(self, series_index: int) -> dict | FailedSample:
        """``load_or_skip``, and a volume with fewer slices than the catalog counts (a stale
        catalog) fails as a whole: no slab of it is served."""
        volume = self.source.load_or_skip(series_index)
        if isinstance(volume, FailedSample):
            return volume
        n, expected = int(volume["image"].shape[-3]), self.source.slice_counts[series_index]
        if n >= expected:
            return volume
        exc = InconsistentSeriesError(
            f"the catalog counts {expected} slices per volume, the volume holds {n}; "
            "a stale catalog (rescan)", path=self.source.series_key(series_index))
        if self.source.on_error == "raise":
            raise exc
        return self.source.skip(series_index, exc)

    def __getitem__(self, index: int) -> dict | FailedSample:
        index = _check_index(index, len(self))
        series_index, start = int(self._series[index]), int(self._starts[index])
        volume = self._volume(series_index)
        if isinstance(volume, FailedSample):
            return FailedSample({**volume.record, "slice_index": start})
        sample = _pipeline.apply_chain(self.transform, self._slab(volume, start),
                                       _generator(self.seed, self.epoch, index))
        image = sample["image"]
        sample["image"] = image.reshape(-1, *image.shape[-2:])
        for key in ("label", "padding_mask"):  # slab layout -> (C * slab, rows, columns)
            if key in sample and torch.is_tensor(sample[key]) and sample[key].ndim == 4:
                sample[key] = sample[key].reshape(-1, *sample[key].shape[-2:])
        if self.source.has_labels:
            sample["label"] = self.source.label(series_index)
        return sample

    def failures(self) -> list[dict]:
        """The series skipped by ``on_error="skip"`` (in this process and its DataLoader
        workers); see :meth:`dicomml.DicomSeriesDataset.failures`."""
        return self.source.failures()

    @property
    def failed(self) -> dict[int, str]:
        """Series index -> ``"ErrorType: file: message"`` of each series in :meth:`failures`."""
        return self.source.failed

    def _slab(self, volume: Mapping, start: int) -> dict:
        image = volume["image"]
        sample = {k: v for k, v in volume.items() if k != "image"}
        sample["image"] = image[:, start:start + self.slab].clone()
        for key in ("label", "padding_mask"):  # the matching slab (segmentation=, padding)
            if key in volume:
                sample[key] = volume[key][:, start:start + self.slab].clone()
        sample["affine"] = _shifted_affine(volume["affine"], (start, 0, 0))
        sample["slice_index"] = start
        return sample

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random-transform draws (only matters with ``seed`` set)."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_recent"] = None  # never ship a decoded volume to a worker
        return state

    def __repr__(self) -> str:
        return (f"DicomSliceDataset({len(self)} samples from {len(self.source)} series, "
                f"slab={self.slab}, stride={self.stride}, cache={self.source.cache!r})")
