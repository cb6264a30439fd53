"""Index maps: 4x4 float64 matrices ``M`` taking an *output* voxel index ``(slice, row,
column, 1)`` to the *input* voxel index it came from.

Every geometric transform is described by one such map (or, for elastic deformation, a map plus
a displacement field); the output affine is always ``affine_in @ M``, which is what keeps the
world position of content unchanged.

Example
-------
>>> import torch
>>> m = crop_map((2, 0, 1))            # output voxel (0, 0, 0) is input voxel (2, 0, 1)
>>> (m @ torch.tensor([0., 0, 0, 1], dtype=torch.float64))[:3].tolist()
[2.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

F64 = torch.float64


def crop_map(start: Sequence[float]) -> torch.Tensor:
    """Output index ``o`` -> input index ``o + start`` (crops; negative start = padding)."""
    m = torch.eye(4, dtype=F64)
    m[:3, 3] = torch.as_tensor([float(s) for s in start], dtype=F64)
    return m


def scale_map(ratio: Sequence[float]) -> torch.Tensor:
    """Output index ``o`` -> input index ``(o + 0.5) * ratio - 0.5`` per axis.

    This keeps the outer corner of the field of view fixed (voxels are boxes of size spacing,
    as ``torch.nn.functional.interpolate(align_corners=False)``); ``ratio`` = new spacing / old
    spacing.
    """
    r = torch.as_tensor([float(v) for v in ratio], dtype=F64)
    m = torch.eye(4, dtype=F64)
    m[0, 0], m[1, 1], m[2, 2] = r
    m[:3, 3] = 0.5 * r - 0.5
    return m


def permute_flip_map(perm: Sequence[int], flips: Sequence[bool],
                     in_shape: Sequence[int]) -> torch.Tensor:
    """Index map of ``x.permute(perm)`` followed by flipping output axis ``i`` where
    ``flips[i]``: output axis ``i`` walks input axis ``perm[i]`` (backwards when flipped)."""
    m = torch.zeros(4, 4, dtype=F64)
    m[3, 3] = 1.0
    for out_axis, in_axis in enumerate(perm):
        if flips[out_axis]:
            m[in_axis, out_axis] = -1.0
            m[in_axis, 3] = float(in_shape[in_axis] - 1)
        else:
            m[in_axis, out_axis] = 1.0
    return m


def apply_map(m: torch.Tensor, index: Sequence[float]) -> torch.Tensor:
    """``M @ (index, 1)`` -> the 3 input indices (float64)."""
    vec = torch.ones(4, dtype=F64)
    vec[:3] = torch.as_tensor([float(v) for v in index], dtype=F64)
    return (m.to(F64) @ vec)[:3]
