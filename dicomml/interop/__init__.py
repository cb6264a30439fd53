"""Adapters to nibabel, MONAI and TorchIO (optional extras: ``dicomml[nifti]``,
``dicomml[monai]``, ``dicomml[torchio]``).

Layout: those libraries follow NIfTI — arrays ``(C, i, j, k)`` with ``i`` fastest in the file and
an affine mapping ``(i, j, k, 1)`` to **RAS** mm. Our samples are ``(C, slice, row, column)``
with an **LPS** affine. The converters here reorder the axes to (column, row, slice) and flip x
and y of the affine (``diag(-1, -1, 1, 1)``), exactly as ``Volume.to_nifti()`` does, so a
volume converted here and one loaded from a ``.nii`` written by ``to_nifti`` are identical.

Submodules are imported on first use, so ``import dicomml.interop`` needs none of the extras.

Example
-------
>>> import torch
>>> from dicomml import interop
>>> sample = {"image": torch.zeros(1, 2, 3, 4), "affine": torch.eye(4, dtype=torch.float64)}
>>> interop.to_torchio(sample)["image"].shape        # (C, column, row, slice)
(1, 4, 3, 2)
"""

from __future__ import annotations

from dicomml._lazy import lazy_exports

_EXPORTS = {
    "to_torchio": "dicomml.interop.torchio",
    "from_torchio": "dicomml.interop.torchio",
    "volume_to_scalar_image": "dicomml.interop.torchio",
    "TorchIOAdapter": "dicomml.interop.torchio",
    "to_metatensor": "dicomml.interop.monai",
    "from_metatensor": "dicomml.interop.monai",
    "volume_to_metatensor": "dicomml.interop.monai",
    "MonaiAdapter": "dicomml.interop.monai",
    "sample_to_nifti": "dicomml.interop.nibabel",
    "nifti_to_sample": "dicomml.interop.nibabel",
    "to_nifti_layout": "dicomml.interop.layout",
    "from_nifti_layout": "dicomml.interop.layout",
    "volume_to_sample": "dicomml.interop.layout",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
