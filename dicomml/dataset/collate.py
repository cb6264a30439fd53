"""Batch sample dicts for a DataLoader: stack equal shapes, else pad with a mask, or keep lists.

Padding is never hidden. Rules, per key of the sample dicts:

* tensors of one shape -> ``torch.stack`` (batch first);
* tensors of one dimensionality but different shapes -> padded at the END of each axis to the
  batch maximum with ``pad_value`` (0 for ``image``, ``label_pad_value`` for ``label``) and
  stacked, and a boolean mask of the padded tensor's full shape is added, True on real
  values: ``mask`` for ``image`` (B, C, slices, rows, columns), ``<key>_mask`` for any other
  key. Padding at the end keeps each sample's ``affine`` valid (index (0, 0, 0) does not
  move); with ``pad=False`` such keys stay lists of tensors instead;
* ``image`` tensors with different channel counts (axis 0; e.g. a 3D T1, C = 1, and a 4D DTI
  of 13 volumes, C = 13) are **refused** with a ``ValueError`` naming the samples and their
  shapes: padding would invent channels that a model trains on. Batch such series apart
  (``batch_size=1``, or a filter / sampler per kind), or pass ``pad_channels=True`` (the
  padded channels are then False in ``mask``) or ``pad=False`` (lists);
* numbers -> a tensor; strings, dicts (``metadata``), None or mixed values -> a list.

A batch of lists (``PatchSampler`` returns a list of patches per volume) is flattened first.
Samples that failed to load under ``on_error="skip"``
(:class:`~dicomml.dataset.FailedSample`) are dropped and their records listed in
``batch["failed"]`` (a list of dicts: ``series_index``, ``series_key``, ``file``,
``error_type``, ``message``, ``tag``); a batch whose every sample failed is
``{"failed": [...]}`` alone, so a training loop skips it with ``if "image" not in batch``.

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
>>> dti = {"image": torch.ones(13, 3, 4, 5), "series_key": "dti", "label": 1}
>>> collate([b, dti])
Traceback (most recent call last):
...
ValueError: collate: the images have different channel counts, ...
>>> both = collate([b, dti], pad_channels=True)
>>> both["mask"].shape, int(both["mask"][0].sum()), int(both["mask"][1].sum())
(torch.Size([2, 13, 3, 4, 5]), 60, 780)
>>> loader = torch.utils.data.DataLoader([a, b], batch_size=2, collate_fn=collate)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch

from . import _shm
from ._failures import FailedSample


def collate(batch: Sequence, *, pad: bool = True, pad_channels: bool = False,
            pad_value: float = 0.0, label_pad_value: int = -1) -> dict:
    """Collate a list of sample dicts (or of lists of them) into one batch dict (see module doc).

    ``pad``: pad tensors of different shapes (with a mask) instead of returning lists;
    ``pad_channels``: also pad ``image`` channel counts (axis 0) instead of raising.
    Use ``functools.partial(collate, pad=False)`` as ``collate_fn`` to change them.
    With ``DataLoader(batch_size=None)`` each call gets one sample: it comes back as it is
    (unbatched), a failed one as ``{"failed": [record]}``.
    """
    if isinstance(batch, Mapping):  # DataLoader(batch_size=None): one sample, no batching
        return dict(batch)
    samples, failed = _flatten(batch)
    out: dict = {}
    keys = list(samples[0].keys()) if samples else []
    for extra in samples[1:]:
        keys += [k for k in extra.keys() if k not in keys]
    for key in keys:
        values = [s.get(key) for s in samples]
        if key == "image" and pad and not pad_channels:
            _refuse_channel_padding(samples, values)
        fill = label_pad_value if key == "label" else pad_value
        out[key] = _collate_values(values, pad=pad, fill=fill)
        if pad and _needs_padding(values):
            out[_mask_key(key, keys)] = _mask_for(values)
    if failed:
        out["failed"] = failed
    return out


def _flatten(batch: Sequence) -> tuple[list[Mapping], list[dict]]:
    """``(sample dicts, records of the failed samples)``, nested lists flattened."""
    samples, failed = [], []
    for item in [batch] if isinstance(batch, FailedSample) else batch:
        if isinstance(item, FailedSample):
            failed.append(dict(item.record))
        elif isinstance(item, Mapping):
            samples.append(item)
        elif isinstance(item, (list, tuple)):
            more, more_failed = _flatten(item)
            samples.extend(more)
            failed.extend(more_failed)
        else:
            raise TypeError(f"collate expects sample dicts, got {type(item).__name__}")
    return samples, failed


def _mask_key(key: str, keys: list[str]) -> str:
    name = "mask" if key == "image" else f"{key}_mask"
    if name in keys:
        raise ValueError(f"collate: the samples have a {name!r} key, and {key!r} needs padding "
                         f"whose mask would take that name; rename the key or pass pad=False")
    return name


def _refuse_channel_padding(samples: list[Mapping], images: list) -> None:
    """ValueError naming the samples when ``image`` channel counts (axis 0) differ."""
    tensors = [v for v in images if isinstance(v, torch.Tensor)]
    if len(tensors) != len(images) or len({v.dim() for v in tensors}) != 1:
        return  # not padded anyway (kept as a list)
    if tensors[0].dim() == 0 or len({int(v.shape[0]) for v in tensors}) == 1:
        return
    named = ", ".join(f"{_name(s, i)} {tuple(v.shape)}"
                      for i, (s, v) in enumerate(zip(samples, tensors)))
    raise ValueError(
        "collate: the images have different channel counts, and padding channels would "
        f"invent data: {named}. Batch these series apart (batch_size=1, or one filter / "
        "sampler per kind), or pass pad_channels=True (the padded channels are False in "
        "batch['mask']), or pad=False (lists of tensors)")


def _name(sample: Mapping, i: int) -> str:
    key = sample.get("series_key")
    if key is None:
        return f"sample {i}"
    where = f" slice {sample['slice_index']}" if "slice_index" in sample else ""
    return f"sample {i} ({key!r}{where})"


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


def _mask_for(values: list) -> torch.Tensor:
    """(B, *padded shape) bool: True where sample i has real values, on every axis."""
    mask = _shm.empty((len(values), *_max_shape(values)), torch.bool)
    mask.fill_(False)
    for i, v in enumerate(values):
        mask[(i, *(slice(0, n) for n in v.shape))] = True
    return mask
