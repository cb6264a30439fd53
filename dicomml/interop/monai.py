"""MONAI interop (extra ``dicomml[monai]``): ``MetaTensor`` conversion and
:class:`MonaiAdapter` to run MONAI dictionary transforms on samples.

MONAI works in NIfTI layout: ``MetaTensor`` ``(C, column, row, slice)`` whose ``.affine`` maps
that index to RAS mm (see ``dicomml.interop.layout``).

Example
-------
>>> import torch
>>> from monai.transforms import Flipd
>>> from dicomml.interop.monai import MonaiAdapter
>>> s = {"image": torch.rand(1, 4, 5, 6), "affine": torch.eye(4, dtype=torch.float64)}
>>> out = MonaiAdapter(Flipd(keys="image", spatial_axis=0))(s)
>>> bool(torch.equal(out["image"], s["image"].flip(3)))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from dicomml._optional import require
from dicomml.interop.layout import (
    from_nifti_layout,
    restore_label,
    to_nifti_layout,
    volume_tensor,
)
from dicomml.transforms._base import IMAGE_KEYS, LABEL_KEYS, Transform, sample_affine, spacing_of


def _meta_tensor_class():
    return require("monai.data", extra="monai", needed_by="MONAI interop").MetaTensor


def _metatensor(tensor: torch.Tensor, affine_lps) -> object:
    nifti, ras = to_nifti_layout(tensor, affine_lps)
    return _meta_tensor_class()(nifti.contiguous(), affine=ras.to(tensor.device))


def volume_to_metatensor(volume):
    """A ``dicomml.volume.Volume`` as ``MetaTensor`` (C, column, row, slice), RAS affine."""
    return _metatensor(volume_tensor(volume), volume.affine)


def to_metatensor(volume_or_sample, affine=None, keys: Sequence[str] = IMAGE_KEYS + LABEL_KEYS):
    """``Volume`` -> ``MetaTensor``; ``(C, S, R, Cc)`` tensor + LPS ``affine`` -> ``MetaTensor``;
    sample dict -> a dict with ``keys`` as MetaTensors (other keys unchanged)."""
    if isinstance(volume_or_sample, torch.Tensor):
        return _metatensor(volume_or_sample, torch.eye(4, dtype=torch.float64)
                           if affine is None else affine)
    if isinstance(volume_or_sample, Mapping):
        affine = sample_affine(volume_or_sample)
        out = {k: v for k, v in volume_or_sample.items() if k not in ("affine", "spacing")}
        for key in keys:
            if key in volume_or_sample:
                out[key] = _metatensor(volume_or_sample[key], affine)
        return out
    return volume_to_metatensor(volume_or_sample)


def from_metatensor(tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``MetaTensor`` -> (plain ``(C, S, R, Cc)`` tensor, LPS affine float64 (CPU))."""
    data = tensor.as_tensor() if hasattr(tensor, "as_tensor") else torch.as_tensor(tensor)
    return from_nifti_layout(data, tensor.affine)


class MonaiAdapter(Transform):
    """Run a MONAI dictionary transform (``keys`` among our image/label keys) on a sample.

    Image and label keys become ``MetaTensor``s in NIfTI layout, the other keys are passed
    through untouched; afterwards ``affine``/``spacing`` come from the first returned image's
    ``MetaTensor.affine``, labels are rounded back to their integer dtype. With a
    ``generator``, a seed drawn from it is given to ``transform.set_random_state``.
    """

    deterministic = False  # MONAI transforms may be random: never cached

    def __init__(self, transform, image_keys: Sequence[str] = IMAGE_KEYS,
                 label_keys: Sequence[str] = LABEL_KEYS):
        super().__init__(image_keys, label_keys)
        self.transform = transform

    def __call__(self, sample: Mapping, generator: torch.Generator | None = None) -> dict:
        keys = [k for k in self.image_keys + self.label_keys if k in sample]
        affine = sample_affine(sample)
        data = {k: _metatensor(sample[k], affine) for k in keys}
        if generator is not None and hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(
                seed=int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        result = self.transform(data)
        out = dict(sample)
        new_affine = None
        for key in keys:
            tensor, lps = from_metatensor(result[key])
            new_affine = lps if new_affine is None else new_affine
            old = sample[key]
            tensor = restore_label(tensor, old.dtype) if key in self.label_keys \
                else tensor.to(old.dtype)
            out[key] = tensor.to(old.device)
        if new_affine is not None:
            device = sample["affine"].device if isinstance(sample.get("affine"), torch.Tensor) \
                else "cpu"
            out["affine"], out["spacing"] = new_affine.to(device), spacing_of(new_affine).to(device)
        return out

    def apply(self, sample: Mapping, params=None) -> dict:
        return self(sample)
