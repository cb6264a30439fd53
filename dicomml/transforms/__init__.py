"""Dict-in, dict-out transforms for training that keep ``affine`` and ``spacing`` true.

Samples follow docs/conventions.md: ``image`` float32 ``(C, slices, rows, columns)``, optional
integer ``label`` of the same spatial shape (moved with the image, nearest neighbour),
``affine`` float64 4x4 (index (slice, row, column, 1) -> LPS mm), ``spacing`` float64 (3,) mm.
Spatial transforms set ``affine = affine @ M`` where ``M`` maps output voxel indices to input
ones, so every voxel keeps the world position of its content (except :class:`RandomElastic`,
which is not affine and leaves ``affine`` as is). All work stays on the tensors' device (CPU in
DataLoader workers, CUDA in the training loop).

Random transforms (``Random*``) have a probability ``p`` and draw parameters apart from applying
them: ``params = t.get_params(generator)``; ``t.apply(sample, params)``; calling ``t(sample,
generator)`` does both. :class:`Compose` threads one ``torch.Generator`` through a chain.

Example
-------
>>> import torch
>>> from dicomml import transforms as T
>>> chain = T.Compose([T.Orient("RAS"), T.Resample(spacing=1.5), T.Window.preset("lung"),
...                    T.RandomFlip(axes=(0,), p=0.5), T.RandomAffine(degrees=10, p=0.8),
...                    T.RandomNoise(std=(0, 0.05), p=0.5)])
>>> s = {"image": torch.rand(1, 10, 12, 12) * 1000 - 1000,
...      "affine": torch.diag(torch.tensor([2.5, 0.8, 0.8, 1], dtype=torch.float64))}
>>> out = chain(s, torch.Generator().manual_seed(0))
>>> tuple(out["image"].shape)
(1, 16, 6, 6)
"""

from dicomml.transforms._base import Compose, RandomTransform, Transform
from dicomml.transforms._orientation import axis_codes
from dicomml.transforms.intensity import (
    WINDOW_PRESETS,
    ByModality,
    ClipNormalize,
    ToDtype,
    Window,
    Windows,
    ZNormalize,
)
from dicomml.transforms.random_intensity import (
                                          RandomBiasField,
                                          RandomBlur,
                                          RandomContrast,
                                          RandomGamma,
                                          RandomIntensityShift,
                                          RandomNoise,
)
from dicomml.transforms.random_spatial import (
                                          RandomAffine,
                                          RandomCrop,
                                          RandomElastic,
                                          RandomFlip,
                                          RandomLabelCrop,
                                          RandomRot90,
)
from dicomml.transforms.spatial import CropForeground, CropOrPad, Orient, Resample, ResizeTo

__all__ = [
    "Transform", "RandomTransform", "Compose", "axis_codes",
    "Orient", "Resample", "ResizeTo", "CropOrPad", "CropForeground",
    "Window", "Windows", "WINDOW_PRESETS", "ClipNormalize", "ZNormalize", "ToDtype", "ByModality",
    "RandomFlip", "RandomRot90", "RandomAffine", "RandomElastic", "RandomCrop",
    "RandomLabelCrop", "RandomGamma", "RandomContrast", "RandomNoise", "RandomBlur",
    "RandomBiasField", "RandomIntensityShift",
]
