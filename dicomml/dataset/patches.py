"""Fixed-size 3D patches from volume samples, drawn uniformly or weighted by a label map.

:class:`PatchSampler` wraps a map-style dataset of sample dicts (e.g. ``DicomSeriesDataset``):
``sampler[i]`` loads volume ``i`` once and returns a list of ``patches_per_volume`` patch dicts;
:func:`dicomml.dataset.collate` flattens those lists, so a batch of ``B`` volumes yields
``B * patches_per_volume`` patches (a volume that failed to load under ``on_error="skip"``
gives one :class:`~dicomml.dataset.FailedSample`, which collate drops). Being map-style, it works with any ``num_workers``, start
method and ``DistributedSampler`` (which shards volumes).

Each patch: ``image`` (C, *patch_size) float32 (padded at the far end with ``pad_value`` where
the volume is smaller than the patch), every other spatial tensor of the sample (a ``label``
map of the same spatial shape) cropped alike (padded with 0), ``affine`` moved so that patch
index (0, 0, 0) maps to the same LPS point as volume index ``patch_origin``, ``spacing``
unchanged, ``patch_origin`` (3,) int64 (slice, row, column) start in the volume, and the
sample's non-spatial values (identifiers, metadata, scalar label) copied.

Modes:

* ``"uniform"``: each start uniform over the valid range of every axis;
* ``"weighted"``: each patch is centred on a voxel drawn with probability proportional to a
  non-negative weight map — ``weight_fn(sample)`` when given, else ``sample[weight_key] > 0``
  (foreground of a label map) — with probability ``weighted_fraction``, uniform otherwise;
  an all-zero map falls back to uniform.

Speed: over ``DicomSeriesDataset(..., cache_dir=D, cache_mmap=True)`` (and no random
transforms) a patch reads only the pages it covers from the cache, not the whole volume.

Randomness: with ``seed`` set, patch positions depend only on ``(seed, epoch, index)``
(call :meth:`PatchSampler.set_epoch` each epoch, like ``DistributedSampler``); with
``seed=None`` they come from torch's RNG, which DataLoader seeds per worker and epoch.

Example
-------
>>> import torch
>>> volume = {"image": torch.rand(1, 20, 30, 40), "affine": torch.eye(4, dtype=torch.float64),
...           "series_key": "s"}
>>> sampler = PatchSampler([volume], (8, 16, 16), patches_per_volume=3, seed=0)
>>> patches = sampler[0]
>>> len(patches), patches[0]["image"].shape
(3, torch.Size([1, 8, 16, 16]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ._failures import FailedSample

MODES = ("uniform", "weighted")


class PatchSampler(torch.utils.data.Dataset):
    """Map-style dataset of fixed-size patches; ``self[i]`` is a list of patch dicts.

    ``patch_size``: (slices, rows, columns) voxels. See the module docstring for the rest.
    """

    def __init__(self, dataset, patch_size: Sequence[int], *, patches_per_volume: int = 1,
                 mode: str = "uniform", weight_key: str = "label",
                 weight_fn: Callable[[Mapping], torch.Tensor | np.ndarray] | None = None,
                 weighted_fraction: float = 1.0, pad_value: float = 0.0,
                 seed: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if len(patch_size) != 3 or min(patch_size) < 1:
            raise ValueError(f"patch_size must be 3 positive ints, got {patch_size!r}")
        if patches_per_volume < 1:
            raise ValueError("patches_per_volume must be >= 1")
        self.dataset = dataset
        self.patch_size = tuple(int(n) for n in patch_size)
        self.patches_per_volume = int(patches_per_volume)
        self.mode = mode
        self.weight_key = weight_key
        self.weight_fn = weight_fn
        self.weighted_fraction = float(weighted_fraction)
        self.pad_value = float(pad_value)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's patch positions (only matters with ``seed`` set)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> list[dict]:
        sample = self.dataset[index]
        if isinstance(sample, FailedSample):  # on_error="skip": collate drops it
            return [sample]
        rng = self._rng(index)
        starts = self.draw_starts(sample, rng)
        return [crop_patch(sample, start, self.patch_size, self.pad_value) for start in starts]

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([int(self.seed), self.epoch, int(index)])
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def draw_starts(self, sample: Mapping, rng: np.random.Generator) -> list[tuple[int, ...]]:
        """``patches_per_volume`` (slice, row, column) start indices for ``sample``."""
        shape = tuple(int(n) for n in sample["image"].shape[-3:])
        weights = self._weights(sample, shape) if self.mode == "weighted" else None
        starts = []
        for _ in range(self.patches_per_volume):
            use_weights = weights is not None and rng.random() < self.weighted_fraction
            if use_weights:
                centre = _weighted_voxel(weights, shape, rng)
                starts.append(_start_around(centre, shape, self.patch_size))
            else:
                starts.append(_uniform_start(shape, self.patch_size, rng))
        return starts

    def _weights(self, sample: Mapping, shape: tuple[int, ...]) -> np.ndarray | None:
        """Flat cumulative weights over the volume's voxels, or None when all are zero."""
        if self.weight_fn is not None:
            weights = self.weight_fn(sample)
        elif self.weight_key in sample:
            weights = torch.as_tensor(sample[self.weight_key]) > 0
        else:
            raise KeyError(f"mode='weighted' needs sample[{self.weight_key!r}] (a label map) "
                           "or a weight_fn")
        weights = torch.as_tensor(weights)
        if tuple(weights.shape[-3:]) != shape:
            raise ValueError(f"weight map shape {tuple(weights.shape)} does not match the "
                             f"image's spatial shape {shape}")
        if weights.dim() == 4:
            weights = weights.sum(0)
        flat = weights.reshape(-1).to(torch.float64).numpy()
        if (flat < 0).any():
            raise ValueError("weights must be non-negative")
        cumulative = np.cumsum(flat)
        return cumulative if cumulative[-1] > 0 else None

    def __repr__(self) -> str:
        return (f"PatchSampler({len(self)} volumes, patch_size={self.patch_size}, "
                f"patches_per_volume={self.patches_per_volume}, mode={self.mode!r})")


def _uniform_start(shape, patch, rng) -> tuple[int, ...]:
    return tuple(int(rng.integers(0, max(n - p, 0) + 1)) for n, p in zip(shape, patch))


def _weighted_voxel(cumulative: np.ndarray, shape, rng) -> tuple[int, ...]:
    """A voxel index drawn with probability proportional to its weight (``cumulative`` sums)."""
    target = rng.random() * cumulative[-1]
    flat = min(int(np.searchsorted(cumulative, target, side="right")), cumulative.size - 1)
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _start_around(centre, shape, patch) -> tuple[int, ...]:
    return tuple(int(min(max(c - p // 2, 0), max(n - p, 0)))
                 for c, n, p in zip(centre, shape, patch))


def crop_patch(sample: Mapping, start: Sequence[int], patch_size: Sequence[int],
               pad_value: float = 0.0) -> dict:
    """The patch of ``sample`` starting at voxel ``start`` (see the module docstring)."""
    spatial = tuple(int(n) for n in sample["image"].shape[-3:])
    region = tuple(slice(s, min(s + p, n)) for s, p, n in zip(start, patch_size, spatial))
    patch = {}
    for key, value in sample.items():
        if _is_spatial(value, spatial):
            fill = pad_value if key == "image" else 0
            patch[key] = _crop_pad(value, region, patch_size, fill)
        else:
            patch[key] = value
    if "affine" in sample:
        patch["affine"] = _shifted_affine(sample["affine"], start)
    patch["patch_origin"] = torch.tensor(start, dtype=torch.int64)
    return patch


def _is_spatial(value, spatial) -> bool:
    return (isinstance(value, torch.Tensor) and value.dim() >= 3
            and tuple(value.shape[-3:]) == spatial)


def _crop_pad(tensor: torch.Tensor, region, patch_size, fill) -> torch.Tensor:
    lead = tensor.shape[:-3]
    out = torch.full((*lead, *patch_size), fill, dtype=tensor.dtype)
    view = tensor[(..., *region)]
    out[(..., *(slice(0, n) for n in view.shape[-3:]))] = view
    return out


def _shifted_affine(affine, start) -> torch.Tensor:
    affine = torch.as_tensor(affine, dtype=torch.float64).clone()
    index = torch.tensor([*start, 1.0], dtype=torch.float64)
    affine[:, 3] = affine @ index
    return affine
