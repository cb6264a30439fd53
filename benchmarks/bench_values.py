"""Cost of the value stages (dicomml.decode.stages) over the bare decode: ms per image of
``read_pixels(values="stored")`` (the bare decoder), ``"modality"`` and ``"presentation"``
on a full-field mammogram-sized image (3328 x 4096, 12 bits stored, MONOCHROME1, a window
(``--function``: SIGMOID by default, a lookup table; LINEAR: one multiply-add) and a Pixel
Padding Value) in Explicit VR Little Endian, JPEG lossless (SV1) and JPEG 2000
lossless; the ratios to the bare decode are what matter (target <= 1.10). Also pydicom's
``pixel_array`` + ``apply_modality_lut`` + ``apply_voi_lut`` in the same run.

    python benchmarks/bench_values.py [--repeat 7] [--rows 3328 --columns 4096]

Files are written to a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLosslessSV1, generate_uid

import dicomml
from dicomml.synth._encode import encode_pixel_data

SYNTAXES = {"explicit LE": ExplicitVRLittleEndian, "JPEG lossless": JPEGLosslessSV1,
            "JPEG 2000 lossless": JPEG2000Lossless}


def _image(rows: int, columns: int) -> np.ndarray:
    """A smooth breast-like blob on a padded background, with noise (12 bits)."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    blob = np.exp(-(((y - rows / 2) / (rows / 2.5)) ** 2 + (x / (columns / 1.3)) ** 2))
    noise = np.random.default_rng(0).normal(0, 30, (rows, columns))
    image = np.clip(400 + 3200 * blob + noise, 1, 4095).astype(np.uint16)
    image[blob < 0.2] = 0  # padding
    return image


def _write(path: Path, image: np.ndarray, syntax: str, function: str = "SIGMOID") -> str:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.Modality = generate_uid(), "MG"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1.0, 0.0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 2000.0, 3000.0, function
    ds.PixelPaddingValue = 0
    encoded = encode_pixel_data(image[None], syntax, bits_stored=12)
    ds.add_new("PixelData", encoded.vr, encoded.value)
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _median_ms(call, repeat: int, clock=time.process_time) -> float:
    """Median ms of ``call``: CPU time of this process by default (one decoding thread:
    steadier than wall time on a shared machine), ``--clock wall`` for wall time."""
    call()  # warm: page cache, imports, lookup tables
    times = []
    for _ in range(repeat):
        start = clock()
        call()
        times.append(clock() - start)
    return 1000 * statistics.median(times)


def _pydicom(path: str):
    from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    return apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rows", type=int, default=3328)
    parser.add_argument("--columns", type=int, default=4096)
    parser.add_argument("--function", default="SIGMOID",
                        choices=("LINEAR", "LINEAR_EXACT", "SIGMOID"),
                        help="VOI LUT Function (SIGMOID: lookup table; LINEAR: multiply-add)")
    parser.add_argument("--clock", default="cpu", choices=("cpu", "wall"))
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    image = _image(args.rows, args.columns)
    with tempfile.TemporaryDirectory(prefix="dicomml-bench-values-") as folder:
        print(f"{args.rows} x {args.columns}, 12 bits, MONOCHROME1, {args.function} window, "
              f"padding; median of {args.repeat} ({args.clock} ms)")
        print(f"{'syntax':20s} {'stored':>8s} {'modality':>9s} {'present.':>9s} "
              f"{'ratio m':>8s} {'ratio p':>8s} {'pydicom':>8s}")
        for name, syntax in SYNTAXES.items():
            path = _write(Path(folder) / f"{name.replace(' ', '_')}.dcm", image, syntax,
                          args.function)
            bare, modality, shown = (_median_ms(functools.partial(
                dicomml.read_pixels, path, values=stage, threads=1), args.repeat, clock)
                for stage in ("stored", "modality", "presentation"))
            theirs = _median_ms(functools.partial(_pydicom, path), max(3, args.repeat // 2),
                                clock)
            print(f"{name:20s} {bare:8.1f} {modality:9.1f} {shown:9.1f} "
                  f"{modality / bare:8.2f} {shown / bare:8.2f} {theirs:8.1f}")


if __name__ == "__main__":
    main()
