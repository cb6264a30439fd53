"""Random intensity augmentations: :class:`RandomGamma`, :class:`RandomContrast`,
:class:`RandomNoise`, :class:`RandomBlur`, :class:`RandomBiasField`,
:class:`RandomIntensityShift`. Only ``image`` keys change; geometry and labels never do.

Each draws its parameters with ``get_params(generator)`` (plain numbers, independent of the
sample) and applies them with ``apply(sample, params)``.

Example
-------
>>> import torch
>>> from dicomml.transforms import RandomNoise
>>> t = RandomNoise(std=(0.1, 0.1), p=1.0)
>>> params = t.get_params(torch.Generator().manual_seed(0))
>>> s = {"image": torch.zeros(1, 4, 4, 4)}
>>> torch.equal(t.apply(s, params)["image"], t.apply(s, params)["image"])
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from dicomml.transforms._base import RandomTransform, as_range, per_axis_ranges, uniform
from dicomml.transforms._bspline import full_precision_conv


class RandomIntensity(RandomTransform):
    """Apply ``self.transform(x, params, sample)`` to every image key when the draw hits."""

    def apply_params(self, sample: Mapping, params: Mapping) -> dict:
        out = dict(sample)
        for key in self.present(sample, self.image_keys):
            out[key] = self.transform(sample[key], params, sample)
        return out

    def transform(self, x: torch.Tensor, params: Mapping, sample: Mapping) -> torch.Tensor:
        raise NotImplementedError


class RandomGamma(RandomIntensity):
    """``x -> lo + (hi - lo) * ((x - lo) / (hi - lo)) ** gamma`` per channel (lo, hi: the
    channel's min and max), ``log(gamma)`` uniform in ``log_gamma``."""

    def __init__(self, log_gamma=(-0.3, 0.3), p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.log_gamma = as_range(log_gamma, "log_gamma")

    def draw(self, generator):
        return {"gamma": math.exp(uniform(generator, *self.log_gamma))}

    def transform(self, x, params, sample):
        lo, hi = torch.aminmax(x.reshape(x.shape[0], -1), dim=1)
        lo, span = lo.view(-1, 1, 1, 1), (hi - lo).clamp_min(1e-12).view(-1, 1, 1, 1)
        out = (x - lo).div_(span).clamp_(0, 1).pow_(params["gamma"])
        return out.mul_(span).add_(lo)


class RandomContrast(RandomIntensity):
    """``x -> mean + factor * (x - mean)`` per channel, ``factor`` uniform in ``factor``."""

    def __init__(self, factor=(0.75, 1.25), p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.factor = as_range(factor, "factor")

    def draw(self, generator):
        return {"factor": uniform(generator, *self.factor)}

    def transform(self, x, params, sample):
        mean = x.reshape(x.shape[0], -1).mean(dim=1).view(-1, 1, 1, 1)
        return mean + params["factor"] * (x - mean)


class RandomIntensityShift(RandomIntensity):
    """``x -> x + offset``, ``offset`` uniform in ``offset`` (image units, e.g. HU)."""

    def __init__(self, offset=(-0.1, 0.1), p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.offset = as_range(offset, "offset")

    def draw(self, generator):
        return {"offset": uniform(generator, *self.offset)}

    def transform(self, x, params, sample):
        return x + params["offset"]


class RandomNoise(RandomIntensity):
    """Add Gaussian noise with standard deviation uniform in ``std`` (image units).

    The noise comes from a generator seeded with the drawn ``seed`` on the image's device:
    reproducible per device (CPU and CUDA generators give different numbers).
    """

    def __init__(self, std=(0.0, 0.1), mean: float = 0.0, p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.std, self.mean = as_range(std, "std"), float(mean)

    def draw(self, generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return {"std": uniform(generator, *self.std), "seed": seed}

    def transform(self, x, params, sample):
        gen = torch.Generator(device=x.device).manual_seed(params["seed"])
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return noise.mul_(params["std"]).add_(x).add_(self.mean)


def gaussian_blur(x: torch.Tensor, sigma_voxels) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` (C, S, R, Cc); ``sigma_voxels`` per spatial axis;
    edges replicate. Kernels are truncated at 3 sigma."""
    out = x.unsqueeze(1)  # (C, 1, S, R, Cc): channels as batch
    for axis, sigma in enumerate(sigma_voxels):
        if sigma <= 0:
            continue
        radius = max(1, int(math.ceil(3 * sigma)))
        taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        shape = [1, 1, 1, 1, 1]
        shape[axis + 2] = -1
        pad = [0] * 6
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        with full_precision_conv():
            out = F.conv3d(F.pad(out, pad, mode="replicate"), (kernel / kernel.sum()).view(shape))
    return out.squeeze(1)


class RandomBlur(RandomIntensity):
    """Gaussian blur with ``sigma`` (mm; a range for all axes or one per axis), converted to
    voxels with ``sample["spacing"]`` (1 mm when absent)."""

    def __init__(self, sigma=(0.0, 1.5), p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.sigma = per_axis_ranges(sigma, "sigma")

    def draw(self, generator):
        return {"sigma": [uniform(generator, *r) for r in self.sigma]}

    def transform(self, x, params, sample):
        spacing = sample.get("spacing")
        spacing = [1.0] * 3 if spacing is None else [float(s) for s in spacing]
        return gaussian_blur(x, [s / d for s, d in zip(params["sigma"], spacing)])


class RandomBiasField(RandomIntensity):
    """Multiply by ``exp(polynomial)`` of degree ``order`` in the normalised coordinates
    ``[-1, 1]`` of each axis (an MRI bias field, as TorchIO), coefficients uniform in
    ``coefficients``."""

    def __init__(self, coefficients=0.5, order: int = 3, p: float = 1.0, **keys):
        super().__init__(p, **keys)
        self.coefficients, self.order = as_range(coefficients, "coefficients"), int(order)

    def _powers(self):
        o = self.order
        return [(i, j, k) for i in range(o + 1) for j in range(o + 1 - i)
                for k in range(o + 1 - i - j)]

    def draw(self, generator):
        n = len(self._powers())
        return {"coefficients": uniform(generator, *self.coefficients, size=n).tolist()}

    def transform(self, x, params, sample):
        axes = [torch.linspace(-1, 1, n, device=x.device, dtype=x.dtype) for n in x.shape[1:]]
        field = torch.zeros(x.shape[1:], device=x.device, dtype=x.dtype)
        for (i, j, k), c in zip(self._powers(), params["coefficients"]):
            field += c * (axes[0].view(-1, 1, 1) ** i) * (axes[1].view(1, -1, 1) ** j) \
                * (axes[2].view(1, 1, -1) ** k)
        return x * torch.exp(field)
