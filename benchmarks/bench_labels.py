"""Benchmark: RTSTRUCT rasterisation, dicomml.load_labels vs rt-utils, on the same input.

One synthetic CT series (``dicomml.synth``, default 300 slices of 512 x 512) and 20 ROIs
(ellipsoids of different sizes and places, two of them with a hole), written as an RTSTRUCT by
rt-utils from the known masks. Then, each the best of ``--repeat`` runs, page cache warm:

* dicomml: ``load_labels(rtstruct, reference)`` (reading the RTSTRUCT with pydicom and
  rasterising every ROI on the reference grid into one label map; the reference Volume is
  given), and the same with ``mode="channels"`` (one uint8 channel per ROI: 20 x 300 x 512 x
  512 = 1.5 GB to allocate, which dominates);
* rt-utils: ``RTStructBuilder.create_from(series, rtstruct)`` and ``get_roi_mask_by_name`` for
  each ROI (it reads the image series headers too, which dicomml does not need here).

Printed: seconds for each, the ratio, and the agreement of each with the known masks (Dice,
worst ROI) and with each other (voxels that differ). Target: dicomml under 2 s for 300 x 512 x
512 with 20 ROIs on the development machine.

Run::

    python benchmarks/bench_labels.py                          # 300 x 512 x 512, 20 ROIs
    python benchmarks/bench_labels.py --slices 60 --size 256   # quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings

import numpy as np


def _masks(shape, n_rois, seed=0):
    rng = np.random.default_rng(seed)
    s, r, c = shape
    kk, rr, cc = np.ogrid[:s, :r, :c]
    masks = {}
    for i in range(n_rois):
        centre = rng.uniform([0.2 * s, 0.25 * r, 0.25 * c], [0.8 * s, 0.75 * r, 0.75 * c])
        radii = rng.uniform([0.05 * s, 0.04 * r, 0.04 * c], [0.3 * s, 0.2 * r, 0.2 * c])
        inside = ((kk - centre[0]) / radii[0]) ** 2 + ((rr - centre[1]) / radii[1]) ** 2 + \
            ((cc - centre[2]) / radii[2]) ** 2 <= 1
        if i < 2:  # a hole
            inside &= ((kk - centre[0]) / radii[0]) ** 2 + ((rr - centre[1]) / (radii[1] / 3)) \
                ** 2 + ((cc - centre[2]) / (radii[2] / 3)) ** 2 > 1
        masks[f"roi{i:02d}"] = inside
    return masks


def _best(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2 * np.count_nonzero(a & b) / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rois", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import rt_utils

    import dicomml

    shape = (args.slices, args.size, args.size)
    tmp = tempfile.mkdtemp(prefix="bench_labels_")
    try:
        series = os.path.join(tmp, "ct")
        t0 = time.perf_counter()
        truth = dicomml.synth.write_series(series, shape=shape, spacing=(1.0, 0.7, 0.7),
                                           shuffle=False)
        masks = _masks(shape, args.rois)
        rt = rt_utils.RTStructBuilder.create_new(dicom_series_path=series)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, mask in masks.items():
                rt.add_roi(mask=np.moveaxis(mask, 0, -1), name=name)
            rs = os.path.join(tmp, "rs.dcm")
            rt.save(rs)
        n_contours = sum(len(rc.ContourSequence) for rc in rt.ds.ROIContourSequence)
        print(f"input: {shape} CT, {args.rois} ROIs, {n_contours} contours "
              f"(written in {time.perf_counter() - t0:.1f} s); load average "
              f"{os.getloadavg()[0]:.2f}")
        reference = dicomml.Volume(np.zeros(shape, np.uint8), truth.affine,
                                   {"FrameOfReferenceUID": truth.meta["frame_of_reference_uid"]})

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overlapping ROIs: reported in the label map
            t_map, _ = _best(lambda: dicomml.load_labels(rs, reference), args.repeat)
        t_ours, ours = _best(lambda: dicomml.load_labels(rs, reference, mode="channels"),
                             args.repeat)

        def rt_utils_masks():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = rt_utils.RTStructBuilder.create_from(series, rs)
                return {n: np.moveaxis(loaded.get_roi_mask_by_name(n), -1, 0) for n in masks}

        t_rt, theirs = _best(rt_utils_masks, args.repeat)
        names = list(masks)
        dice_ours = min(_dice(ours.array[i], masks[n]) for i, n in enumerate(names))
        dice_rt = min(_dice(theirs[n], masks[n]) for n in names)
        differ = sum(int(np.count_nonzero(ours.array[i].astype(bool) != theirs[n]))
                     for i, n in enumerate(names))
        print(f"dicomml load_labels: {t_map:.3f} s label map, {t_ours:.3f} s channels   "
              f"(worst ROI Dice vs masks {dice_ours:.4f})")
        print(f"rt-utils           : {t_rt:.3f} s   (worst ROI Dice vs masks {dice_rt:.4f})")
        print(f"ratio rt-utils / dicomml channels: {t_rt / t_ours:.1f}x; voxels where they "
              f"differ: {differ}; target dicomml < 2 s (label map): "
              f"{'met' if t_map < 2 else 'NOT met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
