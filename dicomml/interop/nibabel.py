"""nibabel interop (extra ``dicomml[nifti]``): save a sample's tensor (a prediction, after
transforms) as NIfTI in the scanner's space, and read NIfTI into a sample.

Example
-------
>>> import torch
>>> from dicomml.interop.nibabel import nifti_to_sample, sample_to_nifti
>>> s = {"image": torch.rand(1, 2, 3, 4), "affine": torch.eye(4, dtype=torch.float64)}
>>> img = sample_to_nifti(s)
>>> img.shape, bool(torch.equal(nifti_to_sample(img)["image"], s["image"]))
((4, 3, 2), True)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from dicomml._optional import require
from dicomml.interop.layout import from_nifti_layout, to_nifti_layout
from dicomml.transforms._base import sample_affine, spacing_of


def _nib():
    return require("nibabel", extra="nifti", needed_by="NIfTI interop")


def sample_to_nifti(sample: Mapping, key: str = "image"):
    """``sample[key]`` ``(C, S, R, Cc)`` as a ``nibabel.Nifti1Image`` (column, row, slice[, C]),
    RAS affine, q/sform code 1. A single channel is dropped; several become the 4th axis."""
    tensor, ras = to_nifti_layout(sample[key].detach().cpu(), sample_affine(sample))
    array = tensor.numpy()
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    image = _nib().Nifti1Image(np.ascontiguousarray(array), ras.numpy())
    image.set_qform(ras.numpy(), code=1)
    image.set_sform(ras.numpy(), code=1)
    return image


def nifti_to_sample(image, key: str = "image") -> dict:
    """A ``nibabel`` image (3D, or 4D with the 4th axis as channels) as a sample dict."""
    array = np.asanyarray(image.dataobj)
    array = array[None] if array.ndim == 3 else np.moveaxis(array, -1, 0)
    tensor, affine = from_nifti_layout(torch.from_numpy(np.ascontiguousarray(array)),
                                       image.affine)
    return {key: tensor, "affine": affine, "spacing": spacing_of(affine)}
