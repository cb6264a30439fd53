"""Projection radiography speed (issue 22 item 4): a full-field mammogram and a tomosynthesis
object, dicomml vs the bare decoder vs pydicom vs SimpleITK, in one run.

Writes (once per run, in a temporary folder removed at the end) a mammogram-sized 12-bit image
(``--rows 4096 --columns 3328``: smooth breast-like anatomy plus noise, so that lossless
coders compress it as they do real images) as JPEG 2000 lossless, JPEG lossless (process 14
SV1) and uncompressed, and a 50-frame tomosynthesis-sized object (``--dbt 50x1996x2457``,
JPEG 2000 lossless, one fragment per frame with a Basic Offset Table). Then reports:

1. ms per image to display values, per syntax: ``dicomml`` (``read_pixels`` to modality
   values, then the VOI LINEAR window; ``values="presentation"`` once read_pixels takes it),
   the ``bare`` decoder on the extracted codestream (uncompressed: the pixel bytes read at
   their offset), ``pydicom`` (``dcmread`` + ``pixel_array`` + ``apply_modality_lut`` +
   ``apply_voi_lut``) and ``SimpleITK`` (``ReadImage`` + ``GetArrayFromImage``: modality
   values only, it has no VOI stage); ratio dicomml / bare (target <= 1.1);
2. the tomosynthesis object: a 5-frame range (``read_pixels(path, frames=range(20, 25))``) vs
   every frame, and pydicom's every frame;
3. a 2-worker DataLoader epoch over ``--epoch-images`` (default 200) mammograms
   (``--epoch-syntax j2k,jpeg-lossless,uncompressed``; default j2k) (hard links
   of one file, so the page cache holds them: a decode benchmark): ``DicomImageDataset`` with
   ``values="presentation"`` vs
   a pydicom Dataset doing the pydicom chain above (target >= 3x).

Usage::

    python benchmarks/bench_radiography.py                      # the issue's sizes
    python benchmarks/bench_radiography.py --quick              # 1024x832, 10 frames, 40 images

Prints the load average at the start and the end: compare ratios, not times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
from bench_decode import bare_loop, read_limit  # the same limits as bench_decode.py

EPOCH_SYNTAXES = {"j2k": "1.2.840.10008.1.2.4.90", "jpeg-lossless": "1.2.840.10008.1.2.4.70",
                  "uncompressed": "1.2.840.10008.1.2.1"}
WINDOW = (2048.0, 4096.0)  # centre, width of the written VOI LINEAR window (stored units)


def phantom(rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """A 12-bit breast-like image: a half ellipse of tissue on a dark background, smooth
    structure and detector noise (uint16, values < 4096)."""
    rng = np.random.default_rng(seed)
    r = np.linspace(-1, 1, rows)[:, None]
    c = np.linspace(0, 1, columns)[None, :]
    inside = (r ** 2 + (c / 0.8) ** 2) < 1
    tissue = 1800 + 900 * np.cos(7 * r) * np.sin(5 * c) + 400 * np.sin(23 * r * c)
    image = np.where(inside, tissue, 120) + rng.normal(0, 18, (rows, columns))
    return np.clip(image, 0, 4095).astype(np.uint16)


def write(path: str, frames: np.ndarray, syntax: str) -> str:
    """An MG image (or, several frames: a tomosynthesis-like object) of ``frames``."""
    from dicomml.synth import write_projection

    write_projection(path, frames, syntax, patient_id="bench",
                     PresentationIntentType="FOR PRESENTATION", RescaleSlope=1,
                     RescaleIntercept=0, RescaleType="US", WindowCenter=WINDOW[0],
                     WindowWidth=WINDOW[1], ImagerPixelSpacing=[0.07, 0.07],
                     PixelSpacing=[0.07, 0.07], PatientOrientation=["A", "R"],
                     ImageLaterality="L")
    return path


def pydicom_presentation(path):
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    return apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)


def sitk_read(path):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(path))


def best_ms(run, repeat: int) -> float:
    """Best of ``repeat`` wall times of ``run()`` in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def bench_images(folder: str, image: np.ndarray, repeat: int) -> None:
    import dicomml
    from dicomml import syntaxes as ts
    from dicomml.decode.registry import decoders_for

    label = "read_pixels(values='presentation')"

    def present(path):
        return dicomml.read_pixels(path, values="presentation")

    print(f"\n1. ms per {image.shape[0]}x{image.shape[1]} 12-bit image to display values "
          f"(dicomml: {label}); best of {repeat}")
    print(f"{'syntax':26s} {'MB':>6s} {'dicomml':>9s} {'bare':>9s} {'pydicom':>9s} "
          f"{'SimpleITK':>9s}  dicomml/bare  pydicom/dicomml")
    for name, syntax in (("JPEG 2000 lossless", ts.JPEG2000_LOSSLESS),
                         ("JPEG lossless SV1", ts.JPEG_LOSSLESS_SV1),
                         ("uncompressed", ts.EXPLICIT_VR_LE)):
        path = write(os.path.join(folder, f"mg_{syntax}.dcm"), image[None], syntax)
        chain = decoders_for(syntax)
        bare = read_limit([path], syntax) if syntax == ts.EXPLICIT_VR_LE \
            else bare_loop([path], chain[0])
        reference = pydicom_presentation(path)
        got = present(path)[0]
        scale = float(reference.max()) or 1.0  # pydicom's VOI output range: 0..2**BitsStored-1
        gap = float(np.abs(got - reference / (2 ** 12 - 1)).max()) if scale else 0.0
        ms = {"dicomml": best_ms(lambda p=path: present(p), repeat),
              "bare": best_ms(bare, repeat),
              "pydicom": best_ms(lambda p=path: pydicom_presentation(p), repeat),
              "sitk": best_ms(lambda p=path: sitk_read(p), repeat)}
        size = os.path.getsize(path) / 2 ** 20
        print(f"{name:26s} {size:6.1f} {ms['dicomml']:9.1f} {ms['bare']:9.1f} "
              f"{ms['pydicom']:9.1f} {ms['sitk']:9.1f}  {ms['dicomml'] / ms['bare']:11.2f}x "
              f"{ms['pydicom'] / ms['dicomml']:14.2f}x   (decoder {chain[0].name}; "
              f"max |dicomml - pydicom/4095| = {gap:.1e})")


def bench_dbt(folder: str, shape: tuple[int, int, int], repeat: int) -> None:
    import pydicom

    import dicomml
    from dicomml import syntaxes as ts

    frames = np.stack([phantom(*shape[1:], seed=k) for k in range(shape[0])])
    path = write(os.path.join(folder, "dbt.dcm"), frames, ts.JPEG2000_LOSSLESS)
    wanted = range(20, 25) if shape[0] >= 25 else range(min(5, shape[0]))
    part = dicomml.read_pixels(path, frames=wanted)
    assert np.array_equal(part, frames[list(wanted)]), "frame range differs from the truth"
    ms_part = best_ms(lambda: dicomml.read_pixels(path, frames=wanted), repeat)
    ms_all = best_ms(lambda: dicomml.read_pixels(path), max(1, repeat // 2))
    ms_py = best_ms(lambda: pydicom.dcmread(path).pixel_array, 1)
    size = os.path.getsize(path) / 2 ** 20
    print(f"\n2. tomosynthesis object {shape[0]}x{shape[1]}x{shape[2]} J2K lossless "
          f"({size:.0f} MB), stored values")
    print(f"  frames {wanted.start}-{wanted.stop - 1} (read_pixels frames=): {ms_part:9.1f} ms")
    print(f"  every frame (read_pixels):            {ms_all:9.1f} ms  "
          f"({ms_all / ms_part:.1f}x the range)")
    print(f"  every frame (pydicom pixel_array):    {ms_py:9.1f} ms")


def bench_epoch(folder: str, image: np.ndarray, count: int, workers: int,
                syntax_name: str) -> None:
    import torch

    import dicomml

    syntax = EPOCH_SYNTAXES[syntax_name]
    source = write(os.path.join(folder, f"epoch_{syntax_name}.dcm"), image[None], syntax)
    data = os.path.join(folder, f"epoch_{syntax_name}")
    os.makedirs(data)
    for k in range(count):
        os.link(source, os.path.join(data, f"{k:04d}.dcm"))
    catalog = dicomml.scan(data, progress=False)

    class PydicomImages(torch.utils.data.Dataset):
        def __init__(self, paths):
            self.paths = paths

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            return torch.from_numpy(pydicom_presentation(self.paths[i]).astype(np.float32))[None]

    ours = dicomml.DicomImageDataset(catalog, values="presentation")  # the file's window
    theirs = PydicomImages(sorted(os.path.join(data, f) for f in os.listdir(data)))
    seconds = {}
    for name, dataset, collate in (("dicomml", ours, dicomml.collate),
                                   ("pydicom", theirs, None)):
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers,
                                             collate_fn=collate)
        start = time.perf_counter()
        n = sum(len(batch["image"] if isinstance(batch, dict) else batch) for batch in loader)
        seconds[name] = time.perf_counter() - start
        assert n == count, (name, n)
    print(f"\n3. DataLoader epoch, {count} {syntax_name} images {image.shape[0]}x{image.shape[1]}, "
          f"{workers} workers, batch 4")
    for name, value in seconds.items():
        print(f"  {name:8s} {value:8.1f} s  {count / value:6.2f} images/s")
    print(f"  dicomml / pydicom speed: {seconds['pydicom'] / seconds['dicomml']:.2f}x "
          "(target >= 3; both end at windowed display values)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--columns", type=int, default=3328)
    parser.add_argument("--dbt", default="50x1996x2457", help="frames x rows x columns")
    parser.add_argument("--epoch-images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epoch-syntax", default="j2k",
                        help=f"comma list of {', '.join(EPOCH_SYNTAXES)} for part 3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="1024x832 images, a 10x512x640 object, 40 epoch images")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: 1,2,3")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.columns, args.dbt, args.epoch_images = 1024, 832, "10x512x640", 40
    dbt = tuple(int(v) for v in args.dbt.split("x"))
    skip = set(args.skip.split(","))
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    folder = tempfile.mkdtemp(prefix="dicomml_bench_radiography_")
    try:
        image = phantom(args.rows, args.columns)
        if "1" not in skip:
            bench_images(folder, image, args.repeat)
        if "2" not in skip:
            bench_dbt(folder, dbt, args.repeat)
        for name in ([] if "3" in skip else args.epoch_syntax.split(",")):
            bench_epoch(folder, image, args.epoch_images, args.workers, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
