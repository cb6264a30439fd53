"""Our layout <-> NIfTI layout, for tensors and affines (no optional dependency).

Ours: ``(C, slice, row, column)`` with an LPS affine on ``(slice, row, column, 1)``.
NIfTI (nibabel, MONAI, TorchIO): ``(C, column, row, slice)`` with a RAS affine on
``(column, row, slice, 1)``: ``affine_ras = diag(-1, -1, 1, 1) @ affine_lps[:, [2, 1, 0, 3]]``.

Example
-------
>>> import torch
>>> t, a = to_nifti_layout(torch.zeros(1, 2, 3, 4), torch.eye(4, dtype=torch.float64))
>>> tuple(t.shape), a[:3, :3].abs().argmax(dim=1).tolist()   # identity: x <- slice
((1, 4, 3, 2), [2, 1, 0])
"""

from __future__ import annotations

import numpy as np
import torch

_FLIP_XY = (-1.0, -1.0, 1.0, 1.0)
_REORDER = [2, 1, 0, 3]


def _flip(affine):
    if isinstance(affine, torch.Tensor):
        return torch.tensor(_FLIP_XY, dtype=torch.float64).view(4, 1) * affine.to(torch.float64)
    return np.asarray(_FLIP_XY).reshape(4, 1) * np.asarray(affine, dtype=np.float64)


def lps_to_nifti_affine(affine):
    """LPS affine on (slice, row, column) -> RAS affine on (column, row, slice)."""
    return _flip(affine)[:, _REORDER]


def nifti_to_lps_affine(affine):
    """RAS affine on (column, row, slice) -> LPS affine on (slice, row, column)."""
    return _flip(affine)[:, _REORDER]


def _affine_tensor(affine) -> torch.Tensor:
    if isinstance(affine, torch.Tensor):
        return affine.detach().to(device="cpu", dtype=torch.float64)
    return torch.tensor(np.asarray(affine, dtype=np.float64))


def to_nifti_layout(tensor: torch.Tensor, affine) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, S, R, Cc)`` + LPS affine -> ``(C, Cc, R, S)`` view + RAS affine (float64 tensor)."""
    affine = _affine_tensor(affine)
    return tensor.permute(0, 3, 2, 1), lps_to_nifti_affine(affine)


def from_nifti_layout(tensor: torch.Tensor, affine) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, i, j, k)`` + RAS affine -> ``(C, k, j, i)`` (contiguous) + LPS affine (float64)."""
    affine = _affine_tensor(affine)
    return tensor.permute(0, 3, 2, 1).contiguous(), nifti_to_lps_affine(affine)


def volume_tensor(volume) -> torch.Tensor:
    """A ``dicomml.volume.Volume``'s array as a channel-first float32 tensor ``(C, S, R, Cc)``
    (a 4D volume's volumes become channels, a colour volume's R, G, B samples too:
    ``Volume.channel_array``)."""
    array = np.asarray(volume.channel_array() if getattr(volume, "is_colour", False)
                       else volume.array)
    tensor = torch.from_numpy(np.array(array, dtype=np.float32))
    return tensor.unsqueeze(0) if tensor.ndim == 3 else tensor


def volume_to_sample(volume) -> dict:
    """A ``dicomml.volume.Volume`` as a transforms sample: ``image`` float32 ``(C, S, R, Cc)``,
    ``affine`` float64 4x4 (LPS), ``spacing`` float64 (3,) and ``series_key`` when known."""
    affine = torch.tensor(np.asarray(volume.affine, dtype=np.float64))
    sample = {"image": volume_tensor(volume), "affine": affine,
              "spacing": torch.linalg.vector_norm(affine[:3, :3], dim=0)}
    key = getattr(volume, "metadata", {}).get("series_key")
    if key:
        sample["series_key"] = key
    return sample


def sample_geometry(sample) -> torch.Tensor:
    """``sample["affine"]`` as float64 CPU tensor (identity when absent)."""
    affine = sample.get("affine")
    if affine is None:
        return torch.eye(4, dtype=torch.float64)
    return torch.as_tensor(affine, dtype=torch.float64).detach().cpu()


def restore_label(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A label back from a foreign library (often float): round and cast to ``dtype``."""
    if tensor.is_floating_point() and not dtype.is_floating_point:
        tensor = tensor.round()
    return tensor.to(dtype)
