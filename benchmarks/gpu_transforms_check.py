"""GPU check for dicomml.transforms: CPU vs CUDA agreement and the GPU speedup.

Run from the repository root on a machine with a CUDA GPU (needs only ``torch`` with CUDA;
``dicomml`` is imported from this checkout, no other dependency)::

    python benchmarks/gpu_transforms_check.py            # about a minute
    python benchmarks/gpu_transforms_check.py --device cpu   # dry run of the script on CPU

Workloads (the same as benchmarks/bench_transforms.py):

1. resample a 512x512x300 CT-like volume, spacing (2.5, 0.7, 0.7) mm -> 1 mm, trilinear;
2. a random augmentation chain (flip, affine, gamma, noise) on a (1, 160, 192, 192) image +
   integer label;

plus every transform on a small oblique phantom. Agreement: images within 1e-3 of their value
range (float32 arithmetic differs), affines within 1e-9, labels differing in < 0.1% of voxels
(nearest-neighbour ties). Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_transforms import ct_like  # noqa: E402  (same folder: the benchmarks' CT phantom)

from dicomml import transforms as T  # noqa: E402

FAILURES: list[str] = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    if not ok:
        FAILURES.append(name)


def to_device(sample, device):
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in sample.items()}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat):
    fn()
    sync(device)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def compare(name, cpu, dev):
    for key in ("image", "label", "affine"):
        if key not in cpu:
            continue
        a, b = cpu[key], dev[key].cpu()
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            check(f"{name} {key}", False, f"shape/dtype {tuple(a.shape)} {a.dtype} vs "
                                          f"{tuple(b.shape)} {b.dtype}")
            continue
        if key == "label":
            frac = (a != b).float().mean().item()
            check(f"{name} label", frac < 1e-3, f"{frac:.2e} of voxels differ")
        elif key == "affine":
            err = (a - b).abs().max().item()
            check(f"{name} affine", err < 1e-9, f"max diff {err:.1e}")
        else:
            span = (a.max() - a.min()).item() or 1.0
            err = (a.double() - b.double()).abs().max().item() / span
            check(f"{name} image", err < 1e-3, f"max diff {err:.1e} of range")


def small_phantom():
    shape = (20, 40, 36)
    grid = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    blob = torch.exp(-sum((g - c) ** 2 for g, c in zip(grid, (9.3, 21.6, 15.2))) / 12.5)
    affine = torch.tensor([[0.1, 0.05, 0.78, -120.0], [0.2, 0.68, -0.04, 80.0],
                           [2.48, -0.16, -0.1, -300.0], [0, 0, 0, 1]], dtype=torch.float64)
    image = (1000 * blob + 50 * torch.rand(shape, generator=torch.Generator().manual_seed(0)))
    return {"image": image[None], "label": (blob > 0.3).long()[None], "affine": affine}


ALL = [T.Orient("RAS"), T.Resample(1.1), T.Resample((1.3, 0.9, 0.7), mode="bspline"),
       T.Resample(1.2, mode="nearest"), T.ResizeTo((17, 23, 29)), T.CropOrPad((16, 44, 30)),
       T.CropForeground(), T.Window.preset("lung"), T.ZNormalize(mask="label"),
       T.RandomAffine(degrees=20, scale=(0.9, 1.1), shear=0.1, translation=2),
       T.RandomAffine(degrees=20, mode="bspline"), T.RandomElastic(), T.RandomFlip(p=0.5),
       T.RandomRot90(p=1.0), T.RandomCrop((8, 9, 10)), T.RandomLabelCrop((8, 8, 8)),
       T.RandomGamma(), T.RandomContrast(), T.RandomBlur(), T.RandomBiasField(),
       T.RandomIntensityShift()]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA not available; run with --device cpu for a dry run")
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {name}, cpu threads {torch.get_num_threads()}")

    print("\n1. every transform on a small phantom (CPU vs device)")
    small = small_phantom()
    for t in ALL:
        cpu = t(small, torch.Generator().manual_seed(4))
        dev = t(to_device(small, device), torch.Generator().manual_seed(4))
        compare(type(t).__name__, cpu, dev)

    print("\n2. resample 512x512x300, spacing (2.5, 0.7, 0.7) -> 1 mm, trilinear")
    affine = torch.tensor([[0, 0, 0.7, -180.0], [0, 0.7, 0, -200.0], [2.5, 0, 0, -400.0],
                           [0, 0, 0, 1]], dtype=torch.float64)
    big = {"image": ct_like((300, 512, 512)), "affine": affine}
    resample = T.Resample(1.0)
    big_dev = to_device(big, device)
    compare("resample", resample(big), resample(big_dev))
    cpu_s = timed(lambda: resample(big), torch.device("cpu"), max(1, args.repeat - 1))
    dev_s = timed(lambda: resample(big_dev), device, args.repeat)
    with_copy = timed(lambda: resample(to_device(big, device))["image"].cpu(), device,
                      args.repeat)
    print(f"  cpu {cpu_s:.3f} s, {device.type} {dev_s:.4f} s -> speedup {cpu_s / dev_s:.1f}x "
          f"({device.type} incl. host<->device copies: {with_copy:.3f} s, "
          f"{cpu_s / with_copy:.1f}x)")

    print("\n3. augmentation chain on (1, 160, 192, 192) image + label")
    image = ct_like((160, 192, 192), seed=1)
    sample = {"image": image, "label": (image > 300).long(),
              "affine": torch.eye(4, dtype=torch.float64)}
    geometric = [T.RandomFlip(axes=(0,), p=1.0), T.RandomAffine(degrees=15, scale=(0.9, 1.1)),
                 T.RandomGamma(log_gamma=(-0.3, 0.3))]
    chain = T.Compose(geometric + [T.RandomNoise(std=(0.0, 50.0))])
    sample_dev = to_device(sample, device)
    no_noise = T.Compose(geometric)
    compare("chain (without noise: per-device RNG)",
            no_noise(sample, torch.Generator().manual_seed(0)),
            no_noise(sample_dev, torch.Generator().manual_seed(0)))
    gen = torch.Generator().manual_seed(0)
    cpu_s = timed(lambda: chain(sample, gen), torch.device("cpu"), args.repeat)
    dev_s = timed(lambda: chain(sample_dev, gen), device, args.repeat)
    print(f"  cpu {cpu_s:.3f} s/sample, {device.type} {dev_s:.4f} s/sample -> "
          f"speedup {cpu_s / dev_s:.1f}x")

    print(f"\n{'ALL CHECKS PASSED' if not FAILURES else 'FAILED: ' + ', '.join(FAILURES)}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
