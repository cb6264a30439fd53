"""Normalise what the plotting helpers accept into numpy arrays (no matplotlib).

A volume is a :class:`dicomml.Volume`-like object (``array``, ``affine``, ``metadata``) or an
``(array, affine)`` pair; arrays may be numpy arrays or torch tensors (CPU or CUDA).

>>> array, affine, metadata = _volume_parts((np.zeros((2, 3, 4)), np.eye(4)))
>>> array.shape, affine.dtype, metadata
((2, 3, 4), dtype('float64'), {})
"""

from __future__ import annotations

import numpy as np


def _volume_parts(vol, frame: int = 0):
    """(3D array, affine, metadata) from a Volume-like object or an (array, affine) pair."""
    if isinstance(vol, tuple) and len(vol) == 2:
        array, affine = vol
        metadata = {}
    else:
        array, affine = vol.array, vol.affine
        metadata = getattr(vol, "metadata", None) or {}
    array = _to_numpy(array)
    affine = np.asarray(_to_numpy(affine), dtype=np.float64)
    if array.ndim == 4:
        array = array[frame]
    if array.ndim != 3:
        raise ValueError(f"expected a 3D (slices, rows, columns) or 4D array, got {array.shape}")
    return array, affine, metadata


def _to_numpy(value):
    """numpy array from a numpy array or a (CPU or CUDA) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
