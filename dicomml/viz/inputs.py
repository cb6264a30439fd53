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
    """(array, affine, metadata) from a Volume-like object or an (array, affine) pair: array
    (slices, rows, columns), or (slices, rows, columns, 3) for colour — a Volume whose
    ``metadata["channels"]`` is ``"RGB"`` (:attr:`dicomml.Volume.is_colour`), or a 5D
    (volumes, slices, rows, columns, 3) array. ``frame`` picks the volume of a 4D series."""
    if isinstance(vol, tuple) and len(vol) == 2:
        array, affine = vol
        metadata = {}
    else:
        array, affine = vol.array, vol.affine
        metadata = getattr(vol, "metadata", None) or {}
    array = _to_numpy(array)
    affine = np.asarray(_to_numpy(affine), dtype=np.float64)
    colour = metadata.get("channels") == "RGB" or array.ndim == 5
    if array.ndim == 4 + colour:
        array = array[frame]
    if array.ndim != 3 + colour or (colour and array.shape[-1] != 3):
        raise ValueError(f"expected a 3D (slices, rows, columns) or 4D array (a trailing "
                         f"axis of 3 samples for colour), got {array.shape}")
    return array, affine, metadata


def is_colour(array) -> bool:
    """True for a (slices, rows, columns, 3) array from :func:`_volume_parts`."""
    return np.ndim(array) == 4


def _to_numpy(value):
    """numpy array from a numpy array or a (CPU or CUDA) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
