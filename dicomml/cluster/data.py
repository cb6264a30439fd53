"""``to_ray_dataset``: the samples of a catalog as a ``ray.data.Dataset``, for Ray Train and
batch inference.

Rows are :class:`dicomml.DicomSeriesDataset` samples converted to numpy: ``index`` (the
series' index in that dataset, int64), ``image`` float32 (C, slices, rows, columns),
``affine`` float64 (4, 4) LPS, ``spacing`` float64 (3,) (slice, row, column) mm and ``label``
when labels are joined and numeric: every column a tensor, so ``iter_torch_batches`` works as
is. ``identifiers=True`` adds the text: ``series_key``, ``PatientID``, ... as ``str`` and the
nested ``metadata`` / ``provenance`` dicts as JSON text (one fixed Arrow type whatever the
series hold); iterate those with ``iter_batches``, or ``iter_torch_batches`` after
``select_columns`` of the numeric ones. Each row is made by one
``DicomSeriesDataset.__getitem__`` inside a Ray task: the cache (``cache_dir``) is read when
the entry is present and written when not, and the random rest of ``transform`` is drawn
again every time the dataset is iterated (Ray Data re-executes the map each epoch; with
``seed``, epoch ``e`` of ``iter_epochs`` draws as ``DicomSeriesDataset.set_epoch(e)``).
Series that fail to load are dropped with ``on_error="skip"`` (the default here).

Example
-------
>>> import dicomml  # doctest: +SKIP
>>> ds = dicomml.to_ray_dataset("cat/", cache_dir="/cache", transform=chain)  # doctest: +SKIP
>>> for batch in ds.iter_torch_batches(batch_size=4):  # doctest: +SKIP
...     batch["image"].shape                  # (4, 1, slices, rows, columns)
"""

from __future__ import annotations

import json

import numpy as np

from ._ray import ensure_ray

#: Sample keys kept as JSON text (nested dicts whose value types vary between series).
JSON_KEYS = ("metadata", "provenance")


def row_of_sample(sample: dict, index: int, identifiers: bool = False) -> dict:
    """A Dataset sample dict as a Ray Data row (module docstring)."""
    row = {"index": np.int64(index)}
    for name, value in sample.items():
        if hasattr(value, "detach"):  # a tensor
            row[name] = value.detach().cpu().numpy()
        elif not identifiers:
            continue
        elif name in JSON_KEYS:
            row[name] = json.dumps(value, sort_keys=True, default=str)
        elif isinstance(value, np.ndarray) or value is None or \
                isinstance(value, (bool, int, float, str)):
            row[name] = value
        else:
            row[name] = json.dumps(value, sort_keys=True, default=str)
    return row


class _Samples:
    """``map_batches`` function: indices -> sample rows (failed series dropped)."""

    def __init__(self, dataset, epoch: int | None = None, identifiers: bool = False):
        self.dataset = dataset
        self.epoch = epoch
        self.identifiers = identifiers

    def __call__(self, batch: dict) -> list[dict]:
        from dicomml.dataset._failures import FailedSample

        if self.epoch is not None:
            self.dataset.set_epoch(self.epoch)
        rows = []
        for index in batch["index"]:
            sample = self.dataset[int(index)]
            if not isinstance(sample, FailedSample):
                rows.append(row_of_sample(sample, int(index), self.identifiers))
        return _columns(rows)


def _columns(rows: list[dict]) -> dict:
    """Rows -> a column batch; a column of same-shaped arrays becomes one stacked array."""
    if not rows:
        return {}
    out = {}
    for name in rows[0]:
        values = [r.get(name) for r in rows]
        if all(isinstance(v, np.ndarray) for v in values) and \
                len({v.shape for v in values}) == 1:
            out[name] = np.stack(values)
        else:
            out[name] = values
    return out


def to_ray_dataset(catalog, *, transform=None, cache_dir=None, on_error: str = "skip",
                   seed: int | None = None, epoch: int | None = None,
                   identifiers: bool = False, series_per_block: int = 1,
                   address: str | None = None, **options):
    """A lazy ``ray.data.Dataset`` of the samples of ``catalog`` (module docstring).

    ``catalog``: a Catalog, a saved catalog (file or partitioned directory) or a folder.
    ``transform``, ``cache_dir``, ``on_error``, ``seed`` and ``options`` (``labels``,
    ``filter``, ``loader_options``...) are :class:`dicomml.DicomSeriesDataset`'s; ``epoch``
    fixes the epoch of seeded draws (None: as the dataset is). ``identifiers``: add the text
    columns (module docstring). ``series_per_block``: series
    per Ray Data block (one is right for volumes of megabytes). Nothing is decoded until the
    dataset is consumed (``iter_torch_batches``, ``take``, ``materialize``...).
    """
    from dicomml.dataset.series import DicomSeriesDataset

    ray = ensure_ray(address)
    dataset = DicomSeriesDataset(catalog, transform=transform, cache_dir=cache_dir,
                                 on_error=on_error, seed=seed, **options)
    n = len(dataset)
    blocks = max(1, -(-n // max(1, int(series_per_block))))
    indices = ray.data.from_items([{"index": i} for i in range(n)], override_num_blocks=blocks)
    return indices.map_batches(_Samples(dataset, epoch, identifiers), batch_size=series_per_block,
                               batch_format="numpy")
