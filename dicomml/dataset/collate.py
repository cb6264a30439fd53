"""Batch sample dicts for a DataLoader: stack equal shapes, else pad with a mask, or keep lists.

Rules, per key of the sample dicts:

* tensors of one shape -> ``torch.stack`` (batch first);
* tensors of one dimensionality but different shapes -> padded at the END of each axis to the
  batch maximum with ``pad_value`` (0 for ``image``, ``label_pad_value`` for ``label``) and stacked;
  for ``image`` a boolean ``mask`` of shape (B, 1, *spatial) is added, True on real voxels.
  Padding at the end keeps each sample's ``affine`` valid (index (0, 0, 0) does not move);
  with ``pad=False`` such keys stay lists of tensors instead;
* numbers -> a tensor; strings, dicts (``metadata``), None or mixed values -> a list.

A batch of lists (``PatchSampler`` returns a list of patches per volume) is flattened first.

Example
-------
>>> import torch
>>> a = {"image": torch.ones(1, 2, 4, 4), "series_key": "a", "label": 1}
>>> b = {"image": torch.ones(1, 3, 4, 5), "series_key": "b", "label": 0}
>>> batch = collate([a, b])
>>> batch["image"].shape, batch["mask"].shape, batch["series_key"], batch["label"]
(torch.Size([2, 1, 3, 4, 5]), torch.Size([2, 1, 3, 4, 5]), ['a', 'b'], tensor([1, 0]))
>>> int(batch["mask"][0].sum())   # 2*4*4 real voxels in sample a
32
>>> loader = torch.utils.data.DataLoader([a, b], batch_size=2, collate_fn=collate)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch

from . import _shm


def collate(batch: Sequence, *, pad: bool = True, pad_value: float = 0.0,
            label_pad_value: int = -1) -> dict:
    """Collate a list of sample dicts (or of lists of them) into one batch dict (see module doc).

    Use ``functools.partial(collate, pad=False)`` as ``collate_fn`` to get lists instead of
    padding.
    """
    samples = _flatten(batch)
    if not samples:
        return {}
    keys = list(samples[0].keys())
    for extra in samples[1:]:
        keys += [k for k in extra.keys() if k not in keys]
    out: dict = {}
    for key in keys:
        values = [s.get(key) for s in samples]
        fill = label_pad_value if key == "label" else pad_value
        out[key] = _collate_values(values, pad=pad, fill=fill)
        if key == "image" and pad and _needs_padding(values):
            out["mask"] = _mask_for(values)
    return out


def _flatten(batch: Sequence) -> list[Mapping]:
    samples = []
    for item in batch:
        if isinstance(item, Mapping):
            samples.append(item)
        elif isinstance(item, (list, tuple)):
            samples.extend(_flatten(item))
        else:
            raise TypeError(f"collate expects sample dicts, got {type(item).__name__}")
    return samples


def _collate_values(values: list, *, pad: bool, fill: float):
    if all(isinstance(v, torch.Tensor) for v in values):
        if len({tuple(v.shape) for v in values}) == 1:
            return _stack(values)
        if pad and len({v.dim() for v in values}) == 1:
            return _pad_stack(values, fill)
        return list(values)
    if all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values):
        return torch.tensor(values)
    if all(isinstance(v, bool) for v in values):
        return torch.tensor(values)
    return list(values)


def _needs_padding(values: list) -> bool:
    return (all(isinstance(v, torch.Tensor) for v in values)
            and len({tuple(v.shape) for v in values}) > 1
            and len({v.dim() for v in values}) == 1)


def _max_shape(values: list) -> list[int]:
    return [max(v.shape[d] for v in values) for d in range(values[0].dim())]


def _stack(values: list) -> torch.Tensor:
    """``torch.stack``; one tensor becomes a view (no copy), and inside a DataLoader worker
    the result is allocated in shared memory (as torch's default_collate does)."""
    if len(values) == 1:
        return values[0].unsqueeze(0)
    if not _shm.in_worker() or len({v.dtype for v in values}) > 1:
        return torch.stack(values)
    out = _shm.empty((len(values), *values[0].shape), values[0].dtype)
    return torch.stack(values, out=out)


def _pad_stack(values: list, fill: float) -> torch.Tensor:
    shape = _max_shape(values)
    out = _shm.empty((len(values), *shape), values[0].dtype)
    out.fill_(fill)
    for i, v in enumerate(values):
        out[(i, *(slice(0, n) for n in v.shape))] = v
    return out


def _mask_for(images: list) -> torch.Tensor:
    """(B, 1, *spatial) bool: True where sample i has real voxels (channels share one mask)."""
    shape = _max_shape(images)
    mask = torch.zeros((len(images), 1, *shape[1:]), dtype=torch.bool)
    for i, v in enumerate(images):
        mask[(i, 0, *(slice(0, n) for n in v.shape[1:]))] = True
    return mask
