"""Benchmark: dicomml transforms vs MONAI and TorchIO on CPU, same data, same run.

Workloads
---------
1. ``resample``: a 512x512x300 CT-like volume, spacing (slice, row, column) = (2.5, 0.7, 0.7) mm,
   resampled to 1 mm isotropic, trilinear (output 750x358x358).
2. ``augment``: a typical random chain on a (1, 160, 192, 192) image + integer label: flip,
   affine (rotation +-15 deg, scale 0.9-1.1; one resampling), gamma, Gaussian noise — every
   step with probability 1, so all libraries do the same work.

Each library gets the data in its own layout (MONAI/TorchIO: NIfTI (C, column, row, slice),
RAS affine) prepared outside the timed region. Reported: best of ``--repeat`` wall times (a
library stops repeating once it has spent 10 s) and the ratio peer / dicomml (> 1 means
dicomml is faster). Output grids differ slightly by convention (dicomml: floor(n * old/new),
outer field-of-view corner kept; MONAI/TorchIO: their own rounding and origin rules).

Run::

    python benchmarks/bench_transforms.py            # full size (a few minutes on 2 cores)
    python benchmarks/bench_transforms.py --quick    # 1/4-size volumes, smoke test

Needs the ``bench`` extra (monai, torchio); a missing peer is reported and skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dicomml import transforms as T  # noqa: E402
from dicomml.interop.layout import to_nifti_layout  # noqa: E402


def ct_like(shape, seed=0) -> torch.Tensor:
    """HU-like float32 volume: air, a body ellipsoid of soft tissue with noise, some bone."""
    gen = torch.Generator().manual_seed(seed)
    axes = [torch.linspace(-1, 1, n) for n in shape]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    body = (x**2 / 0.8 + y**2 / 0.6) < 1
    image = torch.full(shape, -1000.0)
    image[body] = 40.0
    image[body & ((x - 0.3) ** 2 + y**2 < 0.02)] = 700.0
    image += 20 * torch.randn(shape, generator=gen)
    return image.unsqueeze(0)


def best_time(fn, repeat: int, budget: float = 10.0) -> tuple[float, object]:
    """Best wall time of up to ``repeat`` runs (no further runs once ``budget`` s are spent),
    and the last result."""
    times, spent, result = [], 0.0, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
        if spent > budget:
            break
    return min(times), result


def report(name: str, results: dict[str, float | None]):
    ours = results["dicomml"]
    print(f"\n== {name} ==")
    for lib, seconds in results.items():
        if seconds is None:
            print(f"  {lib:8s}  not available")
            continue
        ratio = "" if lib == "dicomml" else f"   peer/dicomml = {seconds / ours:.2f}x"
        print(f"  {lib:8s}  {seconds:8.3f} s{ratio}")
    peers = [s for lib, s in results.items() if lib != "dicomml" and s is not None]
    if peers:
        print(f"  dicomml vs fastest peer: {min(peers) / ours:.2f}x "
              f"({'meets' if ours <= min(peers) else 'misses'} the target >= 1.0)")


# --- workload 1: resample -------------------------------------------------------------------
def bench_resample(shape, repeat):
    image = ct_like(shape)
    affine = torch.tensor([[0, 0, -0.7, 180.0], [0, -0.7, 0, 200.0], [2.5, 0, 0, -400.0],
                           [0, 0, 0, 1]], dtype=torch.float64)  # axial CT, LPS
    sample = {"image": image, "affine": affine}
    nifti_tensor, ras = to_nifti_layout(image, affine)
    nifti_tensor = nifti_tensor.contiguous()
    results = {}
    ours = T.Resample(1.0)
    results["dicomml"], out = best_time(lambda: ours(sample), repeat)
    print(f"resample {tuple(image.shape)} spacing (2.5, 0.7, 0.7) -> 1 mm; output shapes: "
          f"dicomml {tuple(out['image'].shape)} (C, slice, row, column)")
    try:
        from monai.data import MetaTensor
        from monai.transforms import Spacing

        monai_t = Spacing(pixdim=(1.0, 1.0, 1.0), mode="bilinear")
        meta = MetaTensor(nifti_tensor, affine=ras)
        results["monai"], out = best_time(lambda: monai_t(meta), repeat)
        print(f"  monai {tuple(out.shape)} (C, column, row, slice)")
    except ImportError:
        results["monai"] = None
    try:
        import torchio as tio

        tio_image = tio.ScalarImage(tensor=nifti_tensor, affine=ras.numpy())
        tio_t = tio.Resample(1.0, image_interpolation="linear")
        results["torchio"], out = best_time(lambda: tio_t(tio_image), repeat)
        print(f"  torchio {tuple(out.shape)} (C, column, row, slice)")
    except ImportError:
        results["torchio"] = None
    report("resample to 1 mm isotropic (trilinear)", results)


# --- workload 2: augmentation chain ---------------------------------------------------------
def bench_augment(shape, repeat, iterations):
    image = ct_like(shape, seed=1)
    label = (image > 300).to(torch.int64)
    affine = torch.diag(torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    sample = {"image": image, "label": label, "affine": affine}
    nifti_image, ras = to_nifti_layout(image, affine)
    nifti_label, _ = to_nifti_layout(label, affine)
    nifti_image, nifti_label = nifti_image.contiguous(), nifti_label.contiguous()
    results = {}

    ours = T.Compose([
        T.RandomFlip(axes=(0,), p=1.0),
        T.RandomAffine(degrees=15, scale=(0.9, 1.1), p=1.0),
        T.RandomGamma(log_gamma=(-0.3, 0.3), p=1.0),
        T.RandomNoise(std=(0.0, 50.0), p=1.0),
    ])
    gen = torch.Generator().manual_seed(0)
    results["dicomml"] = best_time(lambda: [ours(sample, gen) for _ in range(iterations)],
                                   repeat)[0] / iterations
    try:
        from monai.data import MetaTensor
        from monai.transforms import (
            Compose,
            RandAdjustContrastd,
            RandAffined,
            RandFlipd,
            RandGaussianNoised,
        )

        keys = ["image", "label"]
        monai_t = Compose([
            RandFlipd(keys, prob=1.0, spatial_axis=2),
            RandAffined(keys, prob=1.0, rotate_range=(np.pi / 12,) * 3,
                        scale_range=(0.1,) * 3, mode=("bilinear", "nearest"),
                        padding_mode="border"),
            RandAdjustContrastd("image", prob=1.0, gamma=(0.74, 1.35)),
            RandGaussianNoised("image", prob=1.0, std=50.0),
        ])
        monai_t.set_random_state(0)
        data = {"image": MetaTensor(nifti_image, affine=ras),
                "label": MetaTensor(nifti_label, affine=ras)}
        results["monai"] = best_time(lambda: [monai_t(dict(data)) for _ in range(iterations)],
                                     repeat)[0] / iterations
    except ImportError:
        results["monai"] = None
    try:
        import torchio as tio

        tio_t = tio.Compose([
            tio.RandomFlip(axes=(2,), flip_probability=1.0),
            tio.RandomAffine(scales=(0.9, 1.1), degrees=15),
            tio.RandomGamma(log_gamma=(-0.3, 0.3)),
            tio.RandomNoise(std=(0, 50.0)),
        ])
        subject = tio.Subject(image=tio.ScalarImage(tensor=nifti_image, affine=ras.numpy()),
                              label=tio.LabelMap(tensor=nifti_label, affine=ras.numpy()))
        results["torchio"] = best_time(lambda: [tio_t(subject) for _ in range(iterations)],
                                       repeat)[0] / iterations
    except ImportError:
        results["torchio"] = None
    report(f"augmentation chain on {tuple(shape)} image + label, seconds per sample", results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quarter-size volumes")
    parser.add_argument("--repeat", type=int, default=2, help="best of N (default 2)")
    parser.add_argument("--iterations", type=int, default=3, help="augmentations per timing")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    div = 2 if args.quick else 1
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    bench_resample((300 // div, 512 // div, 512 // div), args.repeat)
    bench_augment((160 // div, 192 // div, 192 // div), args.repeat, args.iterations)


if __name__ == "__main__":
    main()
