"""Cubic B-spline interpolation in torch (our own implementation, any device).

Interpolating with a cubic B-spline takes two steps (Unser, "Splines: a perfect fit", 1999):

1. *prefilter*: turn samples ``f`` into spline coefficients ``c`` with ``sum_k c[k] b3(i - k)
   = f[i]``. The exact inverse filter is symmetric and exponential,
   ``h[k] = sqrt(3) * z ** |k|`` with ``z = sqrt(3) - 2``; we convolve with it truncated at
   ``|k| <= 16`` (|z|**16 < 1e-9) on a mirror-extended signal (boundary ``... c b | a b c ...``,
   scipy.ndimage's ``mode="mirror"``).
2. *evaluate*: ``sum_k c[k] b3(x - k)``, four taps per axis.

Resampling along an array axis (axis-aligned grids) uses four gathers per axis; arbitrary warps
use the 8-lookup trilinear formulation of Sigg & Hadwiger (GPU Gems 2, ch. 20) on top of
``grid_sample``, so no 64-tap gather is needed.

Example
-------
>>> import torch
>>> x = torch.arange(6, dtype=torch.float32).reshape(1, 6)
>>> c = prefilter(x, axes=(1,))
>>> pos = torch.tensor([2.0, 2.5], dtype=torch.float64)
>>> [round(v, 4) for v in resample_axis(c, 1, pos).flatten().tolist()]
[2.0, 2.5]
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLE = math.sqrt(3.0) - 2.0
HALF_WIDTH = 16


def mirror_index(index: torch.Tensor, n: int) -> torch.Tensor:
    """Fold integer indices into ``[0, n)`` by whole-sample mirroring (period ``2n - 2``)."""
    if n == 1:
        return torch.zeros_like(index)
    period = 2 * n - 2
    index = torch.remainder(index, period)
    return torch.where(index >= n, period - index, index)


@contextlib.contextmanager
def full_precision_conv():
    """Disable cuDNN's TF32 convolutions (10-bit mantissa on Ampere+ GPUs) for the block, so
    CUDA results match CPU float32 ones; restores the previous setting."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def _inverse_filter(device, dtype) -> torch.Tensor:
    k = torch.arange(-HALF_WIDTH, HALF_WIDTH + 1, device=device, dtype=torch.float64)
    taps = math.sqrt(3.0) * POLE ** k.abs()
    return (taps / taps.sum()).to(dtype)  # renormalise the truncated filter to sum 1


def prefilter(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """B-spline coefficients of ``x`` along ``axes`` (float tensor, any device)."""
    for axis in axes:
        x = _prefilter_axis(x, axis)
    return x


def _prefilter_axis(x: torch.Tensor, axis: int) -> torch.Tensor:
    n = x.shape[axis]
    if n == 1:
        return x
    moved = x.movedim(axis, -1)
    shape = moved.shape
    rows = moved.reshape(-1, 1, n)
    idx = mirror_index(torch.arange(-HALF_WIDTH, n + HALF_WIDTH, device=x.device), n)
    padded = rows.index_select(2, idx)
    kernel = _inverse_filter(x.device, x.dtype).view(1, 1, -1)
    with full_precision_conv():
        out = F.conv1d(padded, kernel)
    return out.reshape(shape).movedim(-1, axis)


def cubic_weights(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four cubic B-spline weights for taps ``i-1, i, i+1, i+2`` at fraction ``t``."""
    t2, t3 = t * t, t * t * t
    w0 = (1 - t) ** 3 / 6
    w1 = (3 * t3 - 6 * t2 + 4) / 6
    w2 = (-3 * t3 + 3 * t2 + 3 * t + 1) / 6
    w3 = t3 / 6
    return w0, w1, w2, w3


def resample_axis(coeffs: torch.Tensor, axis: int, pos: torch.Tensor) -> torch.Tensor:
    """Evaluate the spline with coefficients ``coeffs`` at float positions ``pos`` (input
    indices, float64) along ``axis``; mirror boundary."""
    n = coeffs.shape[axis]
    pos = pos.to(coeffs.device)
    base = torch.floor(pos)
    weights = cubic_weights((pos - base).to(coeffs.dtype))
    base = base.long()
    view = [1] * coeffs.ndim
    view[axis] = -1
    out = None
    for offset, w in zip(range(-1, 3), weights):
        taps = _take(coeffs, axis, mirror_index(base + offset, n))
        term = taps * w.view(view)
        out = term if out is None else out + term
    return out


def _take(x, axis, index):
    from dicomml.transforms._ops import take  # late: _ops imports this module

    return take(x, axis, index)


def _linear_lookup_coords(index: torch.Tensor):
    """Per-axis Sigg-Hadwiger split: weights ``g0, g1`` and positions ``h0, h1``."""
    base = torch.floor(index)
    w0, w1, w2, w3 = cubic_weights(index - base)
    g0, g1 = w0 + w1, w2 + w3
    h0 = base - 1 + w1 / g0
    h1 = base + 1 + w3 / g1
    return (g0, g1), (h0, h1)


def grid_sample_bspline(coeffs: torch.Tensor, index_grid: torch.Tensor) -> torch.Tensor:
    """Sample spline coefficients ``coeffs`` (N, C, D, H, W) at float voxel indices
    ``index_grid`` (N, d, h, w, 3) in (slice, row, column) order; mirror boundary.

    Eight trilinear ``grid_sample`` lookups replace the 64-tap cubic sum.
    """
    sizes = coeffs.shape[2:]
    split = [_linear_lookup_coords(index_grid[..., a]) for a in range(3)]
    out = None
    for corner in range(8):
        bits = [(corner >> a) & 1 for a in range(3)]
        weight = split[0][0][bits[0]] * split[1][0][bits[1]] * split[2][0][bits[2]]
        coords = [split[a][1][bits[a]] for a in range(3)]
        grid = torch.stack([_normalise(coords[a], sizes[a]) for a in (2, 1, 0)], dim=-1)
        value = F.grid_sample(coeffs, grid, mode="bilinear", padding_mode="reflection",
                              align_corners=True)
        term = value * weight.unsqueeze(1)
        out = term if out is None else out + term
    return out


def _normalise(index: torch.Tensor, n: int) -> torch.Tensor:
    return index * (2.0 / max(n - 1, 1)) - 1.0
