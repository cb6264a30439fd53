"""TorchIO interop (extra ``dicomml[torchio]``): ``Volume``/sample -> ``tio.ScalarImage`` /
``tio.Subject`` and back, and :class:`TorchIOAdapter` to run TorchIO transforms on samples.

TorchIO images are NIfTI-like: tensor ``(C, column, row, slice)``, RAS affine (see
``dicomml.interop.layout``).

Example
-------
>>> import torch, torchio as tio
>>> from dicomml.interop.torchio import TorchIOAdapter
>>> s = {"image": torch.rand(1, 6, 8, 8), "affine": torch.eye(4, dtype=torch.float64),
...      "series_key": "a"}
>>> out = TorchIOAdapter(tio.RandomFlip(axes=(0,), flip_probability=1.0))(s)
>>> bool(torch.equal(out["image"], s["image"].flip(3))), out["series_key"]
(True, 'a')
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


def _tio():
    return require("torchio", extra="torchio", needed_by="TorchIO interop")


def volume_to_scalar_image(volume):
    """A ``dicomml.volume.Volume`` as ``tio.ScalarImage`` (float32, (C, column, row, slice),
    RAS affine): the same array and affine as ``Volume.to_nifti()``."""
    tensor, affine = to_nifti_layout(volume_tensor(volume), volume.affine)
    return _tio().ScalarImage(tensor=tensor.contiguous(), affine=affine.numpy())


def sample_to_subject(sample: Mapping, image_keys: Sequence[str] = IMAGE_KEYS,
                      label_keys: Sequence[str] = LABEL_KEYS):
    """A sample dict as ``tio.Subject``: image keys -> ScalarImage, label keys -> LabelMap;
    other non-geometry keys are kept as subject attributes."""
    tio = _tio()
    affine = sample_affine(sample)
    fields = {}
    for key in image_keys:
        if key in sample:
            tensor, ras = to_nifti_layout(sample[key].detach().cpu(), affine)
            fields[key] = tio.ScalarImage(tensor=tensor.contiguous(), affine=ras.numpy())
    for key in label_keys:
        if key in sample:
            tensor, ras = to_nifti_layout(sample[key].detach().cpu(), affine)
            fields[key] = tio.LabelMap(tensor=tensor.contiguous(), affine=ras.numpy())
    if not fields:
        raise KeyError(f"sample has none of {tuple(image_keys) + tuple(label_keys)}")
    for key, value in sample.items():
        if key not in fields and key not in ("affine", "spacing") and key not in image_keys \
                and key not in label_keys:
            fields[key] = value
    return tio.Subject(fields)


def to_torchio(volume_or_sample, **keys):
    """``Volume`` -> ``tio.ScalarImage``; sample dict -> ``tio.Subject``."""
    if isinstance(volume_or_sample, Mapping):
        return sample_to_subject(volume_or_sample, **keys)
    return volume_to_scalar_image(volume_or_sample)


def from_torchio(subject_or_image, reference: Mapping | None = None,
                 image_keys: Sequence[str] = IMAGE_KEYS, label_keys: Sequence[str] = LABEL_KEYS):
    """``tio.Subject`` or ``tio.Image`` -> sample dict (``(C, S, R, Cc)``, LPS affine).

    ``reference`` (the sample before TorchIO) supplies the dtypes/devices to restore and the
    keys TorchIO did not see; geometry comes from the first image found.
    """
    tio = _tio()
    if isinstance(subject_or_image, tio.Image):
        tensor, affine = from_nifti_layout(subject_or_image.data, subject_or_image.affine)
        return {"image": tensor, "affine": affine, "spacing": spacing_of(affine)}
    out = dict(reference or {})
    affine = None
    for key, image in subject_or_image.get_images_dict(intensity_only=False).items():
        tensor, affine_k = from_nifti_layout(image.data, image.affine)
        affine = affine_k if affine is None else affine
        old = (reference or {}).get(key)
        if old is not None:
            tensor = restore_label(tensor, old.dtype) if key in label_keys \
                else tensor.to(old.dtype)
            tensor = tensor.to(old.device)
        out[key] = tensor
    if affine is not None:
        device = out["affine"].device if isinstance(out.get("affine"), torch.Tensor) else "cpu"
        out["affine"], out["spacing"] = affine.to(device), spacing_of(affine).to(device)
    return out


class TorchIOAdapter(Transform):
    """Run a TorchIO transform on a sample; ``affine``/``spacing`` follow TorchIO's result.

    With a ``generator``, TorchIO's randomness (the global torch RNG) is seeded from it inside
    ``torch.random.fork_rng``, so results are reproducible and the global state is untouched.
    Tensors go through the CPU (TorchIO works on CPU/SimpleITK).
    """

    deterministic = False  # TorchIO transforms may be random: never cached

    def __init__(self, transform, image_keys: Sequence[str] = IMAGE_KEYS,
                 label_keys: Sequence[str] = LABEL_KEYS):
        super().__init__(image_keys, label_keys)
        self.transform = transform

    def __call__(self, sample: Mapping, generator: torch.Generator | None = None) -> dict:
        subject = sample_to_subject(sample, self.image_keys, self.label_keys)
        if generator is None:
            result = self.transform(subject)
        else:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                result = self.transform(subject)
        return from_torchio(result, sample, self.image_keys, self.label_keys)

    def apply(self, sample: Mapping, params=None) -> dict:
        return self(sample)
