"""Tensor-level spatial operations on ``(C, slices, rows, columns)`` tensors.

All computations stay on the tensor's device. Integer tensors (labels) are only ever moved by
exact index operations or nearest-neighbour sampling and keep their dtype.

Example
-------
>>> import torch
>>> x = torch.arange(8.).reshape(1, 2, 2, 2)
>>> window(x, (0, 0, 1), (2, 2, 2), fill=0.0)[0, 0].tolist()
[[1.0, 0.0], [3.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dicomml.transforms import _bspline

MODES = ("linear", "nearest", "bspline")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def fill_value(x: torch.Tensor, fill) -> torch.Tensor:
    """Per-channel fill value (C, 1, 1, 1): ``"minimum"`` -> each channel's minimum, else the
    number given."""
    if isinstance(fill, str):
        if fill != "minimum":
            raise ValueError(f"fill must be a number or 'minimum', got {fill!r}")
        return x.reshape(x.shape[0], -1).amin(dim=1).view(-1, 1, 1, 1)
    return torch.full((x.shape[0], 1, 1, 1), float(fill), dtype=x.dtype, device=x.device)


def permute_flip(x: torch.Tensor, perm: Sequence[int], flips: Sequence[bool]) -> torch.Tensor:
    """Permute spatial axes (``perm`` over 0..2) then flip output axes where ``flips``."""
    out = x.permute(0, *(p + 1 for p in perm))
    dims = [i + 1 for i, f in enumerate(flips) if f]
    return (out.flip(dims) if dims else out).contiguous()


def window(x: torch.Tensor, start: Sequence[int], shape: Sequence[int], fill) -> torch.Tensor:
    """The box ``[start, start + shape)`` of ``x`` (C, S, R, Cc); parts outside are ``fill``.

    ``fill`` is a number or ``"minimum"`` (each channel's minimum), used only when the box
    reaches outside ``x``.
    """
    src, dst = [], []
    for s, n, size in zip(start, x.shape[1:], shape):
        lo, hi = max(s, 0), min(s + size, n)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo - s, lo - s + max(hi - lo, 0)))
    inner = x[(slice(None), *src)]
    if tuple(inner.shape[1:]) == tuple(shape):
        return inner.contiguous()
    out = torch.empty((x.shape[0], *shape), dtype=x.dtype, device=x.device)
    out[...] = fill_value(x, fill) if isinstance(fill, str) else fill
    out[(slice(None), *dst)] = inner
    return out


def rescale(x: torch.Tensor, positions: Sequence[torch.Tensor], mode: str) -> torch.Tensor:
    """Separable resampling: output index ``o`` along spatial axis ``a`` samples input index
    ``positions[a][o]`` (float64). Linear and nearest clamp at the edges; bspline mirrors.

    Axes that shrink are processed first, so the work is done on the smallest arrays.
    """
    order = sorted(range(3), key=lambda a: len(positions[a]) / x.shape[a + 1])
    if mode == "bspline":
        x = _bspline.prefilter(x, [a + 1 for a in order])
    for a in order:
        if _is_identity(positions[a], x.shape[a + 1]):
            continue
        x = _resample_axis(x, a + 1, positions[a], mode)
    return x


def torch_scaled_shape(in_shape: Sequence[int], ratio: Sequence[float]) -> list[int]:
    """The output shape ``F.interpolate(scale_factor=1/ratio)`` produces (``floor``)."""
    return [math.floor(float(n) * (1.0 / r)) for n, r in zip(in_shape, ratio)]


def rescale_linear(x: torch.Tensor, out_shape: Sequence[int], ratio: Sequence[float]):
    """Trilinear resampling with ``index_in = (index_out + 0.5) * ratio - 0.5`` (edges clamp).

    Uses ``F.interpolate`` (one fused pass) when its output grid is exactly ours: either
    ``scale_factor = 1/ratio`` gives ``out_shape``, or ``ratio == in/out`` (a resize).
    Otherwise falls back to the separable gathers of :func:`rescale`.
    """
    in_shape = list(x.shape[1:])
    out_shape = [int(n) for n in out_shape]
    kwargs = None
    if torch_scaled_shape(in_shape, ratio) == out_shape:
        kwargs = {"scale_factor": [1.0 / r for r in ratio], "recompute_scale_factor": False}
    elif all(abs(r - n / m) < 1e-12 * r for r, n, m in zip(ratio, in_shape, out_shape)):
        kwargs = {"size": out_shape}
    if kwargs is None or not x.is_floating_point():
        positions = [(torch.arange(n, dtype=torch.float64) + 0.5) * r - 0.5
                     for n, r in zip(out_shape, ratio)]
        return rescale(x, positions, "linear")
    return F.interpolate(x.unsqueeze(0), mode="trilinear", align_corners=False, **kwargs)[0]


def _is_identity(pos: torch.Tensor, n: int) -> bool:
    return len(pos) == n and bool(torch.equal(pos, torch.arange(n, dtype=pos.dtype)))


def take(x: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
    """``x.index_select(axis, index)`` through a 3D view (pre, n, post): several times faster
    than ``index_select`` on a 4D tensor on CPU."""
    shape = list(x.shape)
    pre = 1
    for n in shape[:axis]:
        pre *= n
    view = x.reshape(pre, shape[axis], -1)
    if view.shape[2] == 1:
        out = view.reshape(pre, shape[axis]).index_select(1, index)
    else:
        out = view.index_select(1, index)
    shape[axis] = len(index)
    return out.reshape(shape)


def _resample_axis(x: torch.Tensor, axis: int, pos: torch.Tensor, mode: str) -> torch.Tensor:
    n = x.shape[axis]
    if mode == "bspline":
        return _bspline.resample_axis(x, axis, pos)
    pos = pos.to(x.device).clamp(0, n - 1)
    if mode == "nearest":
        return take(x, axis, torch.floor(pos + 0.5).long().clamp(max=n - 1))
    low = torch.floor(pos)
    weight = (pos - low).to(x.dtype)
    low = low.long().clamp(max=n - 1)
    high = (low + 1).clamp(max=n - 1)
    view = [1] * x.ndim
    view[axis] = -1
    a, b = take(x, axis, low), take(x, axis, high)
    return torch.lerp(a, b, weight.view(view))


def normalised_grid(m: torch.Tensor, in_shape: Sequence[int], out_shape: Sequence[int],
                    device, dtype=torch.float32) -> torch.Tensor:
    """``grid_sample`` grid (1, d, h, w, 3) — (x=column, y=row, z=slice) in [-1, 1],
    ``align_corners=True`` — sampling the input at ``M @ index`` for every output voxel.

    The index map is conjugated with the index <-> normalised conversions (reversing the axis
    order to grid_sample's x, y, z) and the grid built as ``F.affine_grid`` would.
    """
    flip = torch.eye(3, dtype=torch.float64).flip(0)
    d_out = torch.diag(torch.tensor([(n - 1) / 2 for n in out_shape], dtype=torch.float64))
    d_in = torch.diag(torch.tensor([2 / max(n - 1, 1) for n in in_shape], dtype=torch.float64))
    lin, offset = m[:3, :3].to(torch.float64), m[:3, 3].to(torch.float64)
    theta = torch.empty(3, 4, dtype=torch.float64)
    theta[:, :3] = flip @ d_in @ lin @ d_out @ flip
    theta[:, 3] = flip @ (d_in @ (lin @ d_out @ torch.ones(3, dtype=torch.float64) + offset)
                          - 1)
    return _affine_grid(theta.to(device=device, dtype=dtype), [int(n) for n in out_shape])


def _affine_grid(theta: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
    """``F.affine_grid(theta, align_corners=True)`` for one 3D volume, built from three
    broadcast outer products (several times faster on CPU than the batched matmul)."""
    d, h, w = out_shape
    axes = [torch.linspace(-1, 1, n, device=theta.device, dtype=theta.dtype) if n > 1 else
            torch.zeros(1, device=theta.device, dtype=theta.dtype) for n in (w, h, d)]
    along_x = axes[0].view(-1, 1) * theta[:, 0] + theta[:, 3]
    along_y = axes[1].view(-1, 1) * theta[:, 1]
    along_z = axes[2].view(-1, 1) * theta[:, 2]
    grid = along_z.view(d, 1, 1, 3) + along_y.view(1, h, 1, 3)
    return (grid + along_x.view(1, 1, w, 3)).unsqueeze(0)


def voxels_to_normalised(displacement: torch.Tensor, in_shape: Sequence[int]) -> torch.Tensor:
    """Displacement (..., 3) in voxels (slice, row, column) -> grid units (x, y, z)."""
    scale = torch.tensor([2 / max(n - 1, 1) for n in in_shape], device=displacement.device,
                         dtype=displacement.dtype)
    return (displacement * scale).flip(-1)


def _grid_to_index(grid: torch.Tensor, in_shape: Sequence[int]) -> torch.Tensor:
    half = torch.tensor([(n - 1) / 2 for n in in_shape], device=grid.device, dtype=grid.dtype)
    return (grid.flip(-1) + 1) * half


def _inside(grid: torch.Tensor, in_shape: Sequence[int]) -> torch.Tensor:
    """(1, d, h, w) bool: within the input box widened by half a voxel."""
    bound = torch.tensor([1 + 1 / max(n - 1, 1) for n in in_shape[::-1]], device=grid.device,
                         dtype=grid.dtype)
    return (grid.abs() <= bound).all(dim=-1)


def warp(x: torch.Tensor, grid: torch.Tensor, mode: str, fill) -> torch.Tensor:
    """Sample ``x`` (C, S, R, Cc) on a ``grid_sample`` grid (1, d, h, w, 3) from
    :func:`normalised_grid`. Linear/nearest: beyond the edge voxels values blend into ``fill``
    (a number or ``"minimum"``) within one voxel, as zero padding would into 0. Bspline: mirror
    inside, ``fill`` beyond half a voxel. Integer tensors: nearest, dtype kept."""
    in_shape = x.shape[1:]
    integer = not x.is_floating_point()
    mode = "nearest" if integer else mode
    work = x.to(torch.float32) if integer else x
    fill_t = fill_value(work, fill)
    grid = grid.to(device=x.device, dtype=work.dtype)
    if mode == "bspline":
        coeffs = _bspline.prefilter(work, (1, 2, 3)).unsqueeze(0)
        out = _bspline.grid_sample_bspline(coeffs, _grid_to_index(grid, in_shape))[0]
        out = torch.where(_inside(grid, in_shape), out, fill_t)
    else:
        shift = bool((fill_t != 0).any())
        source = work - fill_t if shift else work
        out = F.grid_sample(source.unsqueeze(0), grid, mode="bilinear" if mode == "linear"
                            else "nearest", padding_mode="zeros", align_corners=True)[0]
        out = out + fill_t if shift else out
    return out.round().to(x.dtype) if integer else out
