"""GPU (nvImageCodec) vs CPU decode of lossless JPEG 2000 and HTJ2K frames: exactness and speed.

Self-contained: needs numpy, imagecodecs (encoder + CPU reference decoder) and nvImageCodec
with nvJPEG2000; no torch, no network; pydicom optional (then dicomml's own GPU plugin is
checked too). Wheels for the H100/H200 machines (Python 3.12, CUDA 13 driver, numpy there):
nvidia_nvimgcodec_cu13-0.9.0.20-py3-none-manylinux_2_28_x86_64.whl (25 MB),
nvidia_nvjpeg2k_cu13-0.11.0.51-py3-none-manylinux2014_x86_64.whl (4.3 MB),
imagecodecs-2026.3.6-cp311-abi3-manylinux_2_28_x86_64.whl (26.5 MB), and optionally
pydicom-3.0.2-py3-none-any.whl (2.4 MB). Frames
are synthetic 512x512 CT-like int16/uint16 images (smooth anatomy + noise), encoded
reversibly, decoded on the CPU (imagecodecs: OpenJPEG / OpenJPH) and on the GPU (one batched
nvImageCodec call), compared voxel for voxel, then timed.

If dicomml imports there (pydicom present), the same frames also go through dicomml's
registry with ``decoder="nvimgcodec"`` (the opt-in GPU plugin) and are compared.

Run (GPU machine, wheels in .whl/):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site python3 benchmarks/gpu_decode_check.py
Exit status 0: every GPU frame equals the CPU frame; 1: a mismatch; 2: no GPU / no package
(printed as SKIP). Runs in well under two minutes.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time

import numpy as np


def cuda_devices() -> int:
    """Visible CUDA devices via the driver API (0 without a driver)."""
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


def phantom(n: int, seed: int, signed: bool) -> np.ndarray:
    """(n, 512, 512) CT-like frames: body ellipse, organs, bone, noise; 12 useful bits."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1:1:512j, -1:1:512j]
    frames = []
    for k in range(n):
        img = np.full((512, 512), -1000.0)
        img[(xx / 0.8) ** 2 + (yy / 0.6) ** 2 < 1] = 40
        img[((xx - 0.3) / 0.2) ** 2 + ((yy + 0.1 * np.sin(k)) / 0.25) ** 2 < 1] = -800
        img[(xx / 0.08) ** 2 + ((yy - 0.4) / 0.08) ** 2 < 1] = 1200
        img += rng.normal(0, 15, img.shape)
        frames.append(img)
    arr = np.clip(np.stack(frames), -1024, 3071)
    return arr.astype(np.int16) if signed else (arr + 1024).astype(np.uint16)


def encoders(imagecodecs):
    """name -> (encode(frame) -> bytes, cpu_decode(bytes) -> array)."""
    return {
        "J2K lossless": (lambda f: imagecodecs.jpeg2k_encode(f, level=0, codecformat="J2K",
                                                             reversible=True),
                         lambda b: imagecodecs.jpeg2k_decode(b)),
        "HTJ2K lossless": (lambda f: imagecodecs.htj2k_encode(f, reversible=True),
                           lambda b: imagecodecs.htj2k_decode(b)),
    }


def sources(nvimgcodec, coded):
    """Batch input for ``Decoder.decode`` (``DecodeSource`` since nvImageCodec 0.5)."""
    streams = [nvimgcodec.CodeStream(b) for b in coded]
    if hasattr(nvimgcodec, "DecodeSource"):
        return [nvimgcodec.DecodeSource(s) for s in streams]
    return streams


def gpu_decode(nvimgcodec, decoder, params, coded):
    """Decode a batch on the GPU and copy the results to host arrays."""
    images = decoder.decode(sources(nvimgcodec, coded), params=params)
    out = []
    for image in images:
        if image is None:
            raise RuntimeError("nvImageCodec returned no image")
        arr = np.asarray(image.cpu())
        out.append(arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr)
    return out


def check_dicomml_plugin(coded: list[bytes], frames: np.ndarray, syntax: str) -> str:
    """Decode through dicomml's registry (decoder="nvimgcodec"), if dicomml imports here."""
    try:
        sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
        from dicomml.decode import FrameInfo, decode_frame, decoders_for
    except Exception as exc:  # noqa: BLE001 - pydicom missing on the GPU machine, say
        return f"dicomml plugin: skipped ({type(exc).__name__}: {exc})"
    info = FrameInfo(syntax, rows=frames.shape[1], columns=frames.shape[2],
                     bits_allocated=16, bits_stored=16,
                     pixel_representation=int(frames.dtype.kind == "i"))
    try:
        chain = decoders_for(syntax, prefer="nvimgcodec")
        same = all(np.array_equal(decode_frame(c, info, chain, index=i), f)
                   for i, (c, f) in enumerate(zip(coded, frames)))
    except Exception as exc:  # noqa: BLE001
        return f"dicomml plugin: FAILED ({type(exc).__name__}: {exc})"
    return f"dicomml plugin exact: {same}"


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import imagecodecs
        from nvidia import nvimgcodec
    except ImportError as exc:
        print(f"SKIP: {exc}")
        return 2
    if cuda_devices() < 1:
        print("SKIP: no CUDA device")
        return 2
    try:  # GPU only, so that a CPU fallback inside nvImageCodec cannot pass for the GPU
        decoder = nvimgcodec.Decoder(backend_kinds=[nvimgcodec.BackendKind.GPU_ONLY])
    except (AttributeError, TypeError):
        decoder = nvimgcodec.Decoder()
    params = nvimgcodec.DecodeParams(color_spec=nvimgcodec.ColorSpec.UNCHANGED,
                                     allow_any_depth=True, apply_exif_orientation=False)
    print(f"nvimgcodec {getattr(nvimgcodec, '__version__', '?')}, imagecodecs "
          f"{imagecodecs.__version__}, {args.frames} frames of 512x512")
    status = 0
    for signed in (False, True):
        frames = phantom(args.frames, seed=1, signed=signed)
        megabytes = frames.nbytes / 1e6
        for name, (encode, cpu) in encoders(imagecodecs).items():
            label = f"{name} {'int16' if signed else 'uint16'}"
            try:
                coded = [bytes(encode(f)) for f in frames]
            except Exception as exc:  # noqa: BLE001
                print(f"{label:24} encode failed: {exc}")
                continue
            cpu_out = [cpu(b) for b in coded]
            exact_cpu = all(np.array_equal(c, f) for c, f in zip(cpu_out, frames))
            try:
                gpu_out = gpu_decode(nvimgcodec, decoder, params, coded)
            except Exception as exc:  # noqa: BLE001
                print(f"{label:24} GPU decode FAILED: {type(exc).__name__}: {exc}")
                status = 1
                continue
            mism = [i for i, (g, c) in enumerate(zip(gpu_out, cpu_out))
                    if g.shape != c.shape or not np.array_equal(g.astype(c.dtype), c)]
            if mism:
                g, c = gpu_out[mism[0]], cpu_out[mism[0]]
                print(f"{label:24} MISMATCH on {len(mism)} frames (first {mism[0]}: gpu "
                      f"{g.shape} {g.dtype} vs cpu {c.shape} {c.dtype})")
                status = 1
            t_cpu = best(lambda coded=coded, cpu=cpu: [cpu(b) for b in coded], args.repeat)
            t_gpu = best(lambda coded=coded: gpu_decode(nvimgcodec, decoder, params, coded),
                         args.repeat)
            print(f"{label:24} exact(gpu==cpu): {not mism}  exact(cpu==truth): {exact_cpu}  "
                  f"CPU 1 thread {megabytes / t_cpu:7.0f} MB/s  GPU batch "
                  f"{megabytes / t_gpu:7.0f} MB/s  GPU/CPU {t_cpu / t_gpu:5.1f}x")
            syntax = "1.2.840.10008.1.2.4.90" if name.startswith("J2K") else \
                "1.2.840.10008.1.2.4.201"
            report = check_dicomml_plugin(coded[:8], frames[:8], syntax)
            print(f"{'':24} {report}")
            if "FAILED" in report or "exact: False" in report:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
