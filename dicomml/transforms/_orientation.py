"""Orientation codes of a sample's affine tensor, as used by :class:`dicomml.transforms.Orient`.

The rules live in :mod:`dicomml.geometry.orientation` (numpy); this module only hands them the
4x4 matrix of a tensor on any device. A code has one letter per array axis (slice, row,
column) naming the patient direction toward which that index *increases* (nibabel's
convention; ``"RAS"`` = nibabel's canonical). A standard axial CT stack read as
(slice, row, column) is ``"SPL"``.

Example
-------
>>> import torch
>>> axial = torch.tensor([[0, 0, 0.7, 0], [0, 0.7, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1.]],
...                      dtype=torch.float64)
>>> axis_codes(axial), reorientation(axial, "RAS")
('SPL', ([2, 1, 0], [True, True, False]))
"""

from __future__ import annotations

import torch

from dicomml.geometry import orientation
from dicomml.geometry.orientation import parse_code as parse_code
from dicomml.transforms._base import affine_array


def axis_codes(affine: torch.Tensor) -> str:
    """The 3-letter orientation code of ``affine`` (4x4 LPS tensor or array, any device):
    :func:`dicomml.geometry.orientation_code` of its float64 CPU copy."""
    return orientation.orientation_code(affine_array(affine))


def reorientation(affine: torch.Tensor, code: str) -> tuple[list[int], list[bool]]:
    """``(perm, flips)`` turning an array with ``affine`` into one with orientation ``code``
    (:func:`dicomml.geometry.reorientation` of the tensor's float64 CPU copy)."""
    return orientation.reorientation(affine_array(affine), code)
