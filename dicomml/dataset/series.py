"""``DicomSeriesDataset``: one training sample per DICOM series, for ``torch.utils.data``.

Example
-------
>>> import tempfile, torch, dicomml
>>> folder = tempfile.mkdtemp()
>>> _ = dicomml.synth.write_series(folder, shape=(4, 16, 16))
>>> ds = dicomml.DicomSeriesDataset(folder, cache_dir=tempfile.mkdtemp())
>>> sample = ds[0]
>>> sample["image"].shape, sample["image"].dtype, sample["affine"].shape
(torch.Size([1, 4, 16, 16]), torch.float32, torch.Size([4, 4]))
>>> loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=dicomml.collate)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from . import _pipeline, _shm, _source
from ._core import SeriesSource, with_values
from ._failures import FailedSample


class DicomSeriesDataset(torch.utils.data.Dataset):
    """A map-style dataset over the series of a catalog; ``ds[i]`` is a sample dict.

    Sample (docs/conventions.md): ``image`` float32 tensor (C, slices, rows, columns) — C = 1
    for a 3D series, the volumes (time points, echoes...) for 4D; ``affine`` float64 4x4 tensor
    mapping (slice, row, column, 1) to LPS mm; ``spacing`` float64 (3,) (slice, row, column) mm;
    ``series_key``, ``PatientID``, ``StudyInstanceUID``, ``SeriesInstanceUID``,
    ``AccessionNumber`` (str, "" when absent); ``metadata`` (dict of the ``metadata`` catalog
    columns); ``provenance`` (how the volume was built: files in slice order, the 4D ordering
    rule, the policies that fired...; ``Volume.metadata["provenance"]``); ``label`` when ``labels`` is given; then whatever ``transform`` adds.

    Parameters
    ----------
    source : a ``dicomml.Catalog``, a saved catalog path, or a folder (scanned now).
    filter : a dict for ``Catalog.filter`` (e.g. ``{"Modality": "CT"}``), a list of series
        keys, or a callable ``series_df -> boolean mask``.
    transform : a callable / list / ``dicomml.transforms.Compose`` applied to each sample. The
        deterministic prefix (transforms with ``deterministic=True`` and a ``cache_key()``) is
        applied before caching; the rest (augmentations) on every access.
    labels, label_column, on, keep_unlabeled : a CSV path, DataFrame or dict joined on an
        identifier column ``on`` (default: the most specific one present; see
        :mod:`dicomml.dataset.labels`). Series without a label are dropped unless
        ``keep_unlabeled`` (their ``label`` is then None); ``self.label_report`` has the counts.
    cache_dir : a folder for decoded volumes (see :mod:`dicomml.dataset.cache`); never the
        data folder. None: decode on every access. ``VolumeCache.temporary()``: a new folder
        under the system temp folder, removed when the dataset is garbage-collected.
    cache_mmap : read cached arrays with memory mapping (pages load when touched).
    on_error : ``"raise"``, or ``"skip"``: a series that fails to load is logged, recorded
        and returned as a :class:`~dicomml.dataset.FailedSample` marker, which
        :func:`dicomml.collate` drops from the batch and lists in ``batch["failed"]``; an
        epoch yields every loadable series exactly once. :meth:`failures` lists what failed
        in any process, DataLoader workers included.
    metadata : catalog columns copied into ``sample["metadata"]``.
    segmentation : voxel labels as ``sample["label"]``, an integer tensor (1, slices, rows,
        columns) on the image grid (or (C, ...) with ``segmentation_options={"mode":
        "channels"}``), loaded by :func:`dicomml.load_labels` before the transforms (spatial
        ones move it with nearest neighbour) and cached with the image: ``"catalog"`` (the
        first SEG / RTSTRUCT of ``catalog.labels_for(key)``), a dict {series key or
        SeriesInstanceUID: label path}, or a CSV / DataFrame with ``path`` and ``series_key``
        or ``SeriesInstanceUID`` columns. A series without one fails (``on_error`` applies).
    segmentation_options : keyword arguments for :func:`dicomml.load_labels` (``mode``,
        ``segments``, ``resample``...); part of the cache key.
    loader_options : keyword arguments for ``dicomml.load_series`` (``policy``, ``dtype``,
        ``resample``, ``threads``, ``normalize``, ``scaling``); part of the cache key.
    values, window : ``load_series``' value stage (``"stored"``, ``"modality"`` (default) or
        ``"presentation"``: VOI window / LUT, MONOCHROME1 resolved, [0, 1]) and window (see
        :mod:`dicomml.decode.stages`); part of the cache key. What was applied is in
        ``sample["provenance"]["values"]``; files with a Pixel Padding Value add
        ``sample["padding_mask"]`` (bool, the image's shape, True on padding; the intensity
        transforms leave it out of their statistics; spatial transforms move it only when
        it is among their ``label_keys``).
    volumes : ``"channels"`` (default): a 4D acquisition — every sub-series of one Series
        Instance UID that stacks (split only by echo, temporal position or acquisition) — is
        one sample, its volumes the channels; ``"samples"``: one sample per volume (C = 1,
        ``metadata["volume"]`` in the volume's provenance). Volume counts come from the
        catalog; a volume the loader leaves out (a derived trace image) fails as a series
        would (see ``on_error``).
    splits : the mapping :meth:`dicomml.Catalog.split` returned (or any mapping of split name
        -> Catalog): checked with :func:`dicomml.check_leakage` (no patient or study in two
        splits, and this dataset's series inside one split); ``self.split`` is that split's
        name (None without ``splits``). Raises :class:`~dicomml.errors.LeakageError`.
    seed : when set, random transforms get a ``torch.Generator`` seeded from
        ``(seed, epoch, index)`` (see :meth:`set_epoch`); else torch's per-worker RNG.

    Worker safety: the dataset pickles as the catalog rows of its series plus small lists (no
    open files, no pixel arrays); files are opened in ``__getitem__``, so any ``num_workers``,
    ``persistent_workers``, fork or spawn and ``DistributedSampler`` work.
    """

    def __init__(self, source, *, filter=None, transform=None, labels=None,
                 label_column: str | list[str] = "label", on: str | None = None,
                 keep_unlabeled: bool = False, cache_dir: str | os.PathLike | None = None,
                 cache_mmap: bool = False, on_error: str = "raise",
                 metadata: Iterable[str] = _source.DEFAULT_METADATA,
                 loader_options: Mapping | None = None, seed: int | None = None,
                 scan_workers: int | None = None, volumes: str = "channels",
                 splits: Mapping | None = None, segmentation=None,
                 segmentation_options: Mapping | None = None, values: str | None = None,
                 window=None):
        self.source = SeriesSource(
            source, filter=filter, transform=transform, labels=labels,
            label_column=label_column, on=on, keep_unlabeled=keep_unlabeled, cache_dir=cache_dir,
            cache_mmap=cache_mmap, on_error=on_error, metadata=metadata,
            loader_options=with_values(loader_options, values, window),
            scan_workers=scan_workers, volumes=volumes,
            segmentation=segmentation, segmentation_options=segmentation_options)
        self.split = _check_splits(self.source.catalog, splits)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict | FailedSample:
        index = _check_index(index, len(self))
        sample = self.source.load_or_skip(index)
        if isinstance(sample, FailedSample):
            return sample
        generator = _generator(self.seed, self.epoch, index)
        sample = _pipeline.apply_chain(self.source.random_transforms, sample, generator)
        if self.source.has_labels:  # after the transforms: they treat "label" as a map
            sample["label"] = self.source.label(index)
        return _shm.share_large(sample)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random-transform draws (only matters with ``seed`` set)."""
        self.epoch = int(epoch)

    @property
    def series_keys(self) -> list[str]:
        """Series keys in index order."""
        return self.source.series_keys

    @property
    def catalog(self):
        """The (filtered) ``Catalog`` the dataset reads."""
        return self.source.catalog

    @property
    def label_report(self):
        """:class:`~dicomml.dataset.labels.LabelReport` of the label join (None without labels)."""
        return self.source.label_report

    def failures(self) -> list[dict]:
        """The series skipped by ``on_error="skip"``, in this process and in its DataLoader
        workers: one dict per series (by index) with ``series_index``, ``series_key``,
        ``file``, ``error_type``, ``message``, ``tag``. Read it after (or during) an epoch."""
        return self.source.failures()

    @property
    def failed(self) -> dict[int, str]:
        """Index -> ``"ErrorType: file: message"`` of each series in :meth:`failures`."""
        return self.source.failed

    @property
    def cache(self):
        """The :class:`~dicomml.dataset.cache.VolumeCache`, or None."""
        return self.source.cache

    def __repr__(self) -> str:
        return (f"DicomSeriesDataset({len(self)} series, cache={self.source.cache!r}, "
                f"cached transforms={len(self.source.cached_transforms)}, "
                f"random transforms={len(self.source.random_transforms)}, on_error={self.source.on_error!r})")


def _check_splits(catalog, splits) -> str | None:
    """The name of the split holding ``catalog``'s series, after the leakage checks."""
    if splits is None:
        return None
    from dicomml.catalog.partition import check_dataset_splits

    return check_dataset_splits(catalog, splits)


def _check_index(index, n: int) -> int:
    index = int(index)
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index out of range for a dataset of {n} series")
    return index


def _generator(seed: int | None, epoch: int, index: int) -> torch.Generator | None:
    if seed is None:
        return None
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))
