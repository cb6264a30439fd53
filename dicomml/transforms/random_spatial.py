"""Random spatial augmentations: :class:`RandomFlip`, :class:`RandomRot90`,
:class:`RandomAffine`, :class:`RandomElastic`, :class:`RandomCrop`, :class:`RandomLabelCrop`.

Geometry: every transform except :class:`RandomElastic` sets ``affine = affine @ M`` with ``M``
the index map (output voxel -> input voxel), so each voxel keeps the world position (LPS mm)
of the content it now holds, and predictions made on the augmented array can be mapped back to
the scanner. :class:`RandomAffine` resamples once (rotation, shear, scale and translation are
composed into one map). :class:`RandomElastic` is not affine; it leaves ``affine`` unchanged
and content moves by at most ``max_displacement`` mm.

Example
-------
>>> import torch
>>> from dicomml.transforms import RandomAffine
>>> s = {"image": torch.rand(1, 8, 8, 8), "label": torch.zeros(1, 8, 8, 8, dtype=torch.long),
...      "affine": torch.eye(4, dtype=torch.float64)}
>>> t = RandomAffine(degrees=10, scale=(0.9, 1.1), p=1.0)
>>> out = t(s, torch.Generator().manual_seed(0))
>>> out["label"].dtype, out["image"].shape
(torch.int64, torch.Size([1, 8, 8, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from dicomml.transforms import _bspline, _ops
from dicomml.transforms._base import (
    RandomTransform,
    per_axis_ranges,
    sample_affine,
    spacing_of,
    uniform,
    with_geometry,
)
from dicomml.transforms.spatial import SpatialTransform, apply_permute_flip, crop_sample


class RandomSpatial(RandomTransform, SpatialTransform):
    """A random transform that moves voxels (image: ``mode``; label: nearest)."""


class RandomFlip(RandomSpatial):
    """Flip each axis in ``axes`` (0 slice, 1 row, 2 column) independently with probability
    ``p``. Exact (no interpolation); the affine follows."""

    def __init__(self, axes: Sequence[int] = (0, 1, 2), p: float = 0.5, **keys):
        super().__init__(p, **keys)
        self.axes = tuple(int(a) for a in axes)

    def get_params(self, generator=None):
        flips = [bool(uniform(generator) < self.p) if a in self.axes else False
                 for a in range(3)]
        return {"apply": any(flips), "flips": flips}

    def apply_params(self, sample, params):
        return apply_permute_flip(self, sample, (0, 1, 2), params["flips"])


class RandomRot90(RandomSpatial):
    """Rotate by ``k * 90`` degrees, ``k`` in {1, 2, 3}, in the plane of ``axes`` (default the
    rows/columns plane). Exact; the shape of the two axes swaps for odd ``k``."""

    def __init__(self, axes: Sequence[int] = (1, 2), p: float = 0.5, **keys):
        super().__init__(p, **keys)
        self.axes = tuple(int(a) for a in axes)
        if len(self.axes) != 2 or self.axes[0] == self.axes[1]:
            raise ValueError(f"axes must be two different spatial axes, got {axes!r}")

    def draw(self, generator):
        return {"k": int(torch.randint(1, 4, (1,), generator=generator))}

    def apply_params(self, sample, params):
        a, b = self.axes
        perm, flips = [0, 1, 2], [False] * 3
        if params["k"] % 2:
            perm[a], perm[b] = b, a
        flips[a] = params["k"] in (1, 2)
        flips[b] = params["k"] in (2, 3)
        return apply_permute_flip(self, sample, perm, flips)


def rotation_matrix(degrees: Sequence[float]) -> torch.Tensor:
    """Rotation about array axes 0, 1, 2 (in that order) by ``degrees`` (float64 3x3)."""
    out = torch.eye(3, dtype=torch.float64)
    for axis, angle in enumerate(degrees):
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        i, j = [a for a in range(3) if a != axis]
        rot = torch.eye(3, dtype=torch.float64)
        rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
        out = rot @ out
    return out


def affine_index_map(shape: Sequence[int], spacing: Sequence[float], degrees, scales, shears,
                     translation) -> torch.Tensor:
    """Index map for moving content by ``T = R(degrees) @ shear @ diag(scales)`` about the
    volume centre, then by ``translation`` mm, in the voxel grid's own mm frame."""
    shear = torch.eye(3, dtype=torch.float64)
    shear[0, 1], shear[0, 2], shear[1, 2] = shears
    forward = rotation_matrix(degrees) @ shear @ torch.diag(
        torch.tensor(scales, dtype=torch.float64))
    mm = torch.diag(torch.tensor(spacing, dtype=torch.float64))
    inverse = torch.linalg.solve(mm, torch.linalg.inv(forward)) @ mm
    centre = (torch.tensor(shape, dtype=torch.float64) - 1) / 2
    offset = centre - inverse @ centre - torch.linalg.solve(
        mm, torch.linalg.inv(forward) @ torch.tensor(translation, dtype=torch.float64))
    m = torch.eye(4, dtype=torch.float64)
    m[:3, :3], m[:3, 3] = inverse, offset
    return m


class RandomAffine(RandomSpatial):
    """Rotation (``degrees``), scaling (``scale``), shear (``shear``: factors of the upper
    off-diagonal entries) and translation (``translation`` mm) about the volume centre, all in
    one resampling. Each argument: a number ``x`` (range ``(-x, x)``, for ``scale``
    ``(1-x, 1+x)``), a ``(low, high)`` pair, or three of them (per axis).

    ``mode`` (image): linear, nearest or bspline; labels: nearest. Voxels whose source lies
    outside the input get ``fill`` (a number or ``"minimum"``) and 0 in labels.
    """

    def __init__(self, degrees=10.0, scale=(0.9, 1.1), shear=0.0, translation=0.0,
                 mode: str = "linear", fill="minimum", p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.degrees = per_axis_ranges(degrees, "degrees")
        self.scale = per_axis_ranges(scale, "scale", around=1.0)
        self.shear = per_axis_ranges(shear, "shear")
        self.translation = per_axis_ranges(translation, "translation")
        self.mode, self.fill = _ops.check_mode(mode), fill

    def draw(self, generator):
        def pick(ranges):
            return [uniform(generator, lo, hi) for lo, hi in ranges]
        return {"degrees": pick(self.degrees), "scales": pick(self.scale),
                "shears": pick(self.shear), "translation": pick(self.translation)}

    def index_map(self, sample, params) -> torch.Tensor:
        spacing = spacing_of(sample_affine(sample)).tolist()
        return affine_index_map(self.shape_of(sample), spacing, params["degrees"],
                                params["scales"], params["shears"], params["translation"])

    def apply_params(self, sample, params):
        m = self.index_map(sample, params)
        shape = self.shape_of(sample)
        device = self.device_of(sample)
        grid = _ops.normalised_grid(m, shape, shape, device)
        tensors = self.map_tensors(sample, lambda x: _ops.warp(x, grid, self.mode, self.fill),
                                   lambda x: _ops.warp(x, grid, "nearest", 0))
        return with_geometry(sample, sample_affine(sample) @ m, **tensors)


class RandomElastic(RandomSpatial):
    """Smooth random deformation: a ``control_points``^3 grid of displacements uniform in
    ``[-max_displacement, max_displacement]`` mm (outer ring fixed at 0), interpolated to every
    voxel by a cubic B-spline (its values are the spline's coefficients, so the field is C2
    and never exceeds ``max_displacement``). One resampling; ``affine`` is left unchanged.
    """

    def __init__(self, control_points: int = 7, max_displacement=7.5, mode: str = "linear",
                 fill="minimum", p: float = 1.0, **keys):
        super().__init__(p, **keys)
        if control_points < 4:
            raise ValueError("control_points must be at least 4")
        self.control_points = int(control_points)
        md = max_displacement
        self.max_displacement = [float(md)] * 3 if isinstance(md, (int, float)) \
            else [float(v) for v in md]
        self.mode, self.fill = _ops.check_mode(mode), fill

    def draw(self, generator):
        n = self.control_points
        field = (torch.rand((3, n, n, n), generator=generator, dtype=torch.float64) * 2 - 1)
        field *= torch.tensor(self.max_displacement, dtype=torch.float64).view(3, 1, 1, 1)
        inner = torch.zeros_like(field)
        inner[:, 1:-1, 1:-1, 1:-1] = field[:, 1:-1, 1:-1, 1:-1]
        return {"displacement": inner}

    def displacement_voxels(self, sample, params, device) -> torch.Tensor:
        """(1, S, R, Cc, 3) displacement in voxels (slice, row, column)."""
        shape = self.shape_of(sample)
        spacing = spacing_of(sample_affine(sample))
        coarse = torch.as_tensor(params["displacement"], dtype=torch.float32, device=device)
        n = coarse.shape[1]
        for axis, size in enumerate(shape):
            pos = torch.arange(size, dtype=torch.float64) * ((n - 1) / max(size - 1, 1))
            coarse = _bspline.resample_axis(coarse, axis + 1, pos)
        field = coarse / spacing.to(device=device, dtype=torch.float32).view(3, 1, 1, 1)
        return field.permute(1, 2, 3, 0).unsqueeze(0)

    def apply_params(self, sample, params):
        shape = self.shape_of(sample)
        device = self.device_of(sample)
        grid = _ops.normalised_grid(torch.eye(4, dtype=torch.float64), shape, shape, device)
        grid += _ops.voxels_to_normalised(self.displacement_voxels(sample, params, device), shape)
        tensors = self.map_tensors(sample, lambda x: _ops.warp(x, grid, self.mode, self.fill),
                                   lambda x: _ops.warp(x, grid, "nearest", 0))
        out = dict(sample)
        out.update(tensors)
        return out


def _random_start(n: int, size: int, u: float) -> int:
    if n >= size:
        return min(int(u * (n - size + 1)), n - size)
    return -min(int(u * (size - n + 1)), size - n)


class RandomCrop(RandomSpatial):
    """Crop ``shape`` (slices, rows, columns) at a uniformly random position (pads with
    ``fill`` / 0 where the volume is smaller)."""

    def __init__(self, shape: Sequence[int], fill="minimum", p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.shape, self.fill = tuple(int(n) for n in shape), fill

    def draw(self, generator):
        return {"u": uniform(generator, size=3).tolist()}

    def apply_params(self, sample, params):
        start = [_random_start(n, s, u) for n, s, u in
                 zip(self.shape_of(sample), self.shape, params["u"])]
        return crop_sample(self, sample, start, self.shape, self.fill)


class RandomLabelCrop(RandomCrop):
    """Crop ``shape`` centred on a label voxel: with probability ``pos_fraction`` a foreground
    voxel (``label > 0``, or in ``labels``), else a background one, chosen uniformly; falls back
    to a uniform random crop when that class is absent (MONAI's ``RandCropByPosNegLabel``)."""

    def __init__(self, shape: Sequence[int], pos_fraction: float = 0.5, label_key: str = "label",
                 labels: Sequence[int] | None = None, fill="minimum", p: float = 1.0, **keys):
        super().__init__(shape, fill, p, **keys)
        self.pos_fraction, self.label_key = float(pos_fraction), label_key
        self.labels = None if labels is None else tuple(int(v) for v in labels)

    def draw(self, generator):
        return {"foreground": bool(uniform(generator) < self.pos_fraction),
                "pick": uniform(generator), "u": uniform(generator, size=3).tolist()}

    def _mask(self, label: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            return (label > 0).any(dim=0)
        values = torch.tensor(self.labels, device=label.device, dtype=label.dtype)
        return torch.isin(label, values).any(dim=0)

    def apply_params(self, sample, params):
        mask = self._mask(sample[self.label_key])
        candidates = torch.nonzero(mask if params["foreground"] else ~mask)
        if len(candidates) == 0:
            return super().apply_params(sample, params)
        centre = candidates[min(int(params["pick"] * len(candidates)), len(candidates) - 1)]
        start = []
        for c, n, s in zip(centre.tolist(), self.shape_of(sample), self.shape):
            start.append(min(max(c - s // 2, 0), n - s) if n >= s else (n - s) // 2)
        return crop_sample(self, sample, start, self.shape, self.fill)
