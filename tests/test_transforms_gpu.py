"""CPU vs CUDA agreement of the transforms (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch
from test_transforms import make_sample, oblique_affine, phantom
from test_transforms_random import sphere_label

from dicomml import transforms as T

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def to_cuda(sample):
    return {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in sample.items()}


@pytest.mark.parametrize("transform", [
    T.Orient("RAS"), T.Resample(1.1), T.Resample((1.3, 0.9, 0.7), mode="bspline"),
    T.Resample(1.2, mode="nearest"), T.ResizeTo((17, 23, 29)), T.CropOrPad((16, 44, 30)),
    T.CropForeground(), T.Window.preset("lung"), T.ZNormalize(mask="label"),
    T.ClipNormalize(2, 98, percentiles=True),
    T.RandomAffine(degrees=20, scale=(0.9, 1.1), shear=0.1, translation=2, p=1.0),
    T.RandomAffine(degrees=20, mode="bspline", p=1.0), T.RandomElastic(p=1.0),
    T.RandomFlip(p=0.5), T.RandomRot90(p=1.0), T.RandomCrop((8, 9, 10)),
    T.RandomLabelCrop((8, 8, 8)), T.RandomGamma(), T.RandomContrast(), T.RandomBlur(),
    T.RandomBiasField(), T.RandomIntensityShift(),
], ids=lambda t: type(t).__name__)
def test_cpu_and_cuda_agree(transform):
    sample = make_sample(phantom(), oblique_affine(), sphere_label())
    cpu = transform(sample, torch.Generator().manual_seed(4))
    gpu = transform(to_cuda(sample), torch.Generator().manual_seed(4))
    for key in ("image", "label", "affine", "spacing"):
        assert gpu[key].device.type == "cuda", key
        assert gpu[key].dtype == cpu[key].dtype, key
    scale = sample["image"].abs().max().item()
    torch.testing.assert_close(gpu["image"].cpu(), cpu["image"], atol=1e-3 * scale, rtol=1e-4)
    torch.testing.assert_close(gpu["affine"].cpu(), cpu["affine"])
    mismatch = (gpu["label"].cpu() != cpu["label"]).float().mean().item()
    assert mismatch < 1e-3  # nearest ties may round differently on the GPU


def test_noise_is_reproducible_on_cuda():
    sample = to_cuda(make_sample(phantom(), oblique_affine()))
    t = T.RandomNoise(std=(1, 1))
    a = t(sample, torch.Generator().manual_seed(1))["image"]
    b = t(sample, torch.Generator().manual_seed(1))["image"]
    assert torch.equal(a, b)
