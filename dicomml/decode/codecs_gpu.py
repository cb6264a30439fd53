"""Optional GPU decoding of JPEG 2000 / HTJ2K with NVIDIA nvImageCodec.

Registered always, but *available* only when ``nvidia.nvimgcodec`` imports and a CUDA device
is visible; it is opt-in (``read_pixels(path, decoder="nvimgcodec")`` or
``DICOMML_DECODERS=nvimgcodec``) because a per-frame GPU round trip only pays off for large
frames or batches: see ``benchmarks/gpu_decode_check.py``. Install
``pip install "nvidia-nvimgcodec-cu13[nvjpeg2k]"`` (CUDA 13; ``-cu12`` for CUDA 12): the
``nvjpeg2k`` extra pulls ``nvidia-nvjpeg2k-cu13``, the library that decodes JPEG 2000.

Example
-------
>>> NvImageCodec().package
'nvidia-nvimgcodec-cu13'
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from dicomml.decode import syntaxes as ts
from dicomml.decode.base import Decoder
from dicomml.decode.info import FrameInfo


def cuda_device_count() -> int:
    """Number of visible CUDA devices, without torch (0 when the driver is missing)."""
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def sources(lib, frames) -> list:
    """Batch input for ``Decoder.decode`` (``DecodeSource`` since nvImageCodec 0.5)."""
    streams = [lib.CodeStream(bytes(f)) for f in frames]
    if hasattr(lib, "DecodeSource"):
        return [lib.DecodeSource(stream) for stream in streams]
    return streams


class NvImageCodec(Decoder):
    """nvImageCodec (nvJPEG2000 on the GPU); returns host numpy arrays."""

    name = "nvimgcodec"
    package = "nvidia-nvimgcodec-cu13"
    module = "nvidia.nvimgcodec"
    extra = "gpu"
    transfer_syntaxes = ts.J2K_FAMILY | ts.HTJ2K_FAMILY
    releases_gil = True
    opt_in = True

    def _load(self):
        if importlib.util.find_spec("nvidia") is None or \
                importlib.util.find_spec("nvidia.nvimgcodec") is None:
            return None
        if cuda_device_count() < 1:
            return None
        module = importlib.import_module("nvidia.nvimgcodec")
        try:  # GPU only: never a silent CPU fallback inside nvImageCodec
            self._decoder = module.Decoder(backend_kinds=[module.BackendKind.GPU_ONLY])
        except (AttributeError, TypeError):
            self._decoder = module.Decoder()
        self._params = module.DecodeParams(color_spec=module.ColorSpec.UNCHANGED,
                                           allow_any_depth=True, apply_exif_orientation=False)
        return module

    def decode(self, src: bytes, info: FrameInfo) -> np.ndarray:
        return self.decode_batch([src], info)[0]

    def decode_batch(self, frames: list[bytes], info: FrameInfo) -> list[np.ndarray]:
        """Decode several frames in one GPU call; host arrays ``(rows, columns[, samples])``."""
        images = self._decoder.decode(sources(self.lib, frames), params=self._params)
        out = []
        for image in images:
            if image is None:
                raise ValueError("nvImageCodec could not decode the frame")
            arr = np.asarray(image.cpu())
            out.append(arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr)
        return out
