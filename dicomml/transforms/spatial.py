"""Deterministic spatial transforms: :class:`Orient`, :class:`Resample`, :class:`ResizeTo`,
:class:`CropOrPad`, :class:`CropForeground`.

Each computes an index map ``M`` (output voxel index -> input voxel index, see
``dicomml.transforms._index``) and sets ``affine = affine @ M``, so every voxel keeps the world
(LPS mm) position of the content it holds. ``image`` keys use the transform's interpolation
``mode``; ``label`` keys use nearest neighbour and stay integer.

Example
-------
>>> import torch
>>> from dicomml.transforms import Orient, Resample
>>> affine = torch.tensor([[0, 0, 0.7, -180], [0, 0.7, 0, -180], [2.5, 0, 0, -300], [0, 0, 0, 1]],
...                       dtype=torch.float64)
>>> s = {"image": torch.rand(1, 8, 20, 20), "affine": affine}
>>> out = Resample(spacing=1.0)(s)
>>> tuple(out["image"].shape), out["spacing"].tolist()
((1, 20, 14, 14), [1.0, 1.0, 1.0])
>>> Orient("RAS")(s)["image"].shape
torch.Size([1, 20, 20, 8])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from dicomml.transforms import _index, _ops
from dicomml.transforms._base import Transform, sample_affine, spacing_of, with_geometry
from dicomml.transforms._orientation import parse_code, reorientation


class SpatialTransform(Transform):
    """Shared plumbing: apply one tensor function to image keys and one to label keys."""

    def map_tensors(self, sample: Mapping, image_fn, label_fn=None) -> dict:
        label_fn = image_fn if label_fn is None else label_fn
        out = {k: image_fn(sample[k]) for k in self.present(sample, self.image_keys)}
        out.update({k: label_fn(sample[k]) for k in self.present(sample, self.label_keys)})
        return out


def _triple(value, name: str) -> tuple[float, float, float]:
    values = (value,) * 3 if isinstance(value, (int, float)) else tuple(value)
    if len(values) != 3:
        raise ValueError(f"{name} must be a number or 3 numbers, got {value!r}")
    return tuple(float(v) for v in values)


def apply_permute_flip(transform: SpatialTransform, sample: Mapping, perm: Sequence[int],
                       flips: Sequence[bool]) -> dict:
    """Exact axis permutation/flip of every image and label key, affine updated."""
    m = _index.permute_flip_map(perm, flips, transform.shape_of(sample))
    tensors = transform.map_tensors(sample, lambda x: _ops.permute_flip(x, perm, flips))
    return with_geometry(sample, sample_affine(sample) @ m, **tensors)


class Orient(SpatialTransform):
    """Reorder/flip axes so that they point to ``code`` (e.g. ``"RAS"``, ``"LPS"``, ``"SPL"``).

    Letter ``i`` names the patient direction toward which array axis ``i`` increases
    (nibabel's convention). No interpolation: voxels are only permuted, so
    ``Orient(back)(Orient(code)(s))`` restores ``s`` exactly. ``Orient("RAS")`` gives the same
    array as ``nibabel.as_closest_canonical`` of the NIfTI conversion.

    Example
    -------
    >>> import torch
    >>> s = {"image": torch.rand(1, 3, 4, 5), "affine": torch.diag(torch.tensor(
    ...     [2.0, 1, 1, 1], dtype=torch.float64))}   # axes point L, P, S
    >>> Orient("SPL")(s)["image"].shape
    torch.Size([1, 5, 4, 3])
    """

    def __init__(self, code: str = "RAS", **keys):
        super().__init__(**keys)
        parse_code(code)
        self.code = code.upper()

    def apply(self, sample: Mapping, params=None) -> dict:
        perm, flips = reorientation(sample_affine(sample), self.code)
        return apply_permute_flip(self, sample, perm, flips)


class _Rescale(SpatialTransform):
    """Axis-aligned resampling keeping the field of view's outer corner (voxels are boxes)."""

    def __init__(self, mode: str = "linear", **keys):
        super().__init__(**keys)
        self.mode = _ops.check_mode(mode)

    def rescale(self, sample: Mapping, out_shape: Sequence[int], ratio: Sequence[float]):
        m = _index.scale_map(ratio)
        positions = [(torch.arange(n, dtype=torch.float64) + 0.5) * r - 0.5
                     for n, r in zip(out_shape, ratio)]

        def image_fn(x):
            if self.mode == "linear":
                return _ops.rescale_linear(x, out_shape, ratio)
            return _ops.rescale(x, positions, self.mode)

        tensors = self.map_tensors(sample, image_fn,
                                   lambda x: _ops.rescale(x, positions, "nearest"))
        return with_geometry(sample, sample_affine(sample) @ m, **tensors)


class Resample(_Rescale):
    """Resample to ``spacing`` mm (a number, or (slice, row, column)); ``None`` entries keep an
    axis. ``mode``: ``"linear"`` (trilinear), ``"nearest"``, or ``"bspline"`` (cubic B-spline
    *interpolation* with prefilter — our own torch code, matches
    ``scipy.ndimage.map_coordinates(order=3, mode="mirror")``).

    The new shape is ``floor(shape * old / new)`` per axis (the new grid never reaches beyond
    the old field of view) and the outer corner of the field of view stays put
    (``index_old = (index_new + 0.5) * new / old - 0.5``, as ``F.interpolate`` with
    ``align_corners=False``); half-voxel edges repeat the edge voxel (linear, nearest) or
    mirror (bspline).
    """

    def __init__(self, spacing=1.0, mode: str = "linear", **keys):
        super().__init__(mode, **keys)
        values = (spacing,) * 3 if spacing is None or isinstance(spacing, (int, float)) \
            else tuple(spacing)
        if len(values) != 3 or any(v is not None and v <= 0 for v in values):
            raise ValueError(f"spacing must be positive (one or three values), got {spacing!r}")
        self.spacing = values

    def apply(self, sample: Mapping, params=None) -> dict:
        old = sample_affine(sample)
        old_spacing = spacing_of(old).tolist()
        target = [o if t is None else t for o, t in zip(old_spacing, self.spacing)]
        ratio = [t / o for t, o in zip(target, old_spacing)]
        # floor, tolerant to float noise in spacings read from the affine (0.7 vs 0.69999...)
        shape = [max(1, math.floor(n / r + 1e-6)) for n, r in zip(self.shape_of(sample), ratio)]
        return self.rescale(sample, shape, ratio)


class ResizeTo(_Rescale):
    """Resample to ``shape`` (slices, rows, columns) covering the same field of view; spacing
    becomes ``old_spacing * old_shape / shape`` (like ``interpolate(align_corners=False)``)."""

    def __init__(self, shape: Sequence[int], mode: str = "linear", **keys):
        super().__init__(mode, **keys)
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be 3 positive ints, got {shape!r}")

    def apply(self, sample: Mapping, params=None) -> dict:
        ratio = [n / m for n, m in zip(self.shape_of(sample), self.shape)]
        return self.rescale(sample, self.shape, ratio)


def crop_sample(transform: SpatialTransform, sample: Mapping, start: Sequence[int],
                shape: Sequence[int], fill) -> dict:
    """Box ``[start, start + shape)`` of every image/label key (outside: ``fill`` / 0)."""
    start = [int(s) for s in start]
    shape = [int(n) for n in shape]
    tensors = transform.map_tensors(
        sample, lambda x: _ops.window(x, start, shape, fill),
        lambda x: _ops.window(x, start, shape, 0))
    return with_geometry(sample, sample_affine(sample) @ _index.crop_map(start), **tensors)


class CropOrPad(SpatialTransform):
    """Centre-crop or pad to ``shape`` (slices, rows, columns); padding uses ``fill`` (a number
    or ``"minimum"``, each channel's minimum) for images and 0 for labels."""

    def __init__(self, shape: Sequence[int], fill="minimum", **keys):
        super().__init__(**keys)
        self.shape = tuple(int(n) for n in shape)
        self.fill = fill

    def apply(self, sample: Mapping, params=None) -> dict:
        start = [(n - s) // 2 for n, s in zip(self.shape_of(sample), self.shape)]
        return crop_sample(self, sample, start, self.shape, self.fill)


class CropForeground(SpatialTransform):
    """Crop to the bounding box of the foreground plus ``margin`` voxels.

    Foreground: ``sample[source] > threshold`` in any channel; ``threshold=None`` means above
    the source's minimum (for ``source="image"``) or non-zero (labels). Nothing to crop when
    there is no foreground.
    """

    def __init__(self, source: str = "image", threshold: float | None = None,
                 margin: int | Sequence[int] = 0, **keys):
        super().__init__(**keys)
        self.source = source
        self.threshold = threshold
        self.margin = tuple(int(m) for m in _triple(margin, "margin"))

    def apply(self, sample: Mapping, params=None) -> dict:
        src = sample[self.source]
        if self.threshold is not None:
            mask = src > self.threshold
        else:
            mask = src > src.min() if src.is_floating_point() else src != 0
        mask = mask.any(dim=0)
        if not bool(mask.any()):
            return dict(sample)
        start, shape = [], []
        for a, n in enumerate(mask.shape):
            other = [d for d in range(3) if d != a]
            hits = torch.nonzero(mask.any(dim=other[1]).any(dim=other[0])).flatten()
            lo = max(int(hits[0]) - self.margin[a], 0)
            hi = min(int(hits[-1]) + 1 + self.margin[a], n)
            start.append(lo)
            shape.append(hi - lo)
        return crop_sample(self, sample, start, shape, fill=0)
