"""Our layout <-> NIfTI layout, for tensors and affines (no optional dependency).

Ours: ``(C, slice, row, column)`` with an LPS affine on ``(slice, row, column, 1)``.
NIfTI (nibabel, MONAI, TorchIO): ``(C, column, row, slice)`` with a RAS affine on
``(column, row, slice, 1)``: ``affine_ras = diag(-1, -1, 1, 1) @ affine_lps[:, [2, 1, 0, 3]]``
(:func:`dicomml.geometry.lps_to_nifti_affine`, the one definition; here applied to tensors).

Example
-------
>>> import torch
>>> t, a = to_nifti_layout(torch.zeros(1, 2, 3, 4), torch.eye(4, dtype=torch.float64))
>>> tuple(t.shape), a[:3, :3].abs().argmax(dim=1).tolist()   # identity: x <- slice
((1, 4, 3, 2), [2, 1, 0])
"""

from __future__ import annotations

import torch

from dicomml.geometry.orientation import lps_to_nifti_affine, nifti_to_lps_affine
from dicomml.transforms._base import affine_array


def to_nifti_layout(tensor: torch.Tensor, affine) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, S, R, Cc)`` + LPS affine -> ``(C, Cc, R, S)`` view + RAS affine (float64 tensor)."""
    return tensor.permute(0, 3, 2, 1), torch.from_numpy(lps_to_nifti_affine(affine_array(affine)))


def from_nifti_layout(tensor: torch.Tensor, affine) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, i, j, k)`` + RAS affine -> ``(C, k, j, i)`` (contiguous) + LPS affine (float64)."""
    return (tensor.permute(0, 3, 2, 1).contiguous(),
            torch.from_numpy(nifti_to_lps_affine(affine_array(affine))))


def volume_tensor(volume) -> torch.Tensor:
    """A ``dicomml.volume.Volume``'s array as a channel-first float32 tensor ``(C, S, R, Cc)``
    (a copy; a 4D volume's volumes become channels, a colour volume's R, G, B samples too)."""
    return volume_to_sample(volume)["image"]


def volume_to_sample(volume) -> dict:
    """A ``dicomml.volume.Volume`` as a transforms sample: ``image`` float32 ``(C, S, R, Cc)``
    (a copy: the volume stays read-only), ``affine`` float64 4x4 (LPS), ``spacing`` float64 (3,)
    and ``series_key`` when known (:func:`dicomml.dataset._core.volume_sample`)."""
    from dicomml.dataset._core import volume_sample  # on first use: the dataset needs pandas

    key = getattr(volume, "metadata", {}).get("series_key")
    return volume_sample(volume, {"series_key": key} if key else None)


def restore_label(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A label back from a foreign library (often float): round and cast to ``dtype``."""
    if tensor.is_floating_point() and not dtype.is_floating_point:
        tensor = tensor.round()
    return tensor.to(dtype)
