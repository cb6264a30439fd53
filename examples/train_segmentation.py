"""Train a tiny 3D U-Net on synthetic CT series with DICOM SEG labels (CPU, a few steps).

What it shows, end to end:

1. ``dicomml.synth.write_series`` writes a few CT series; highdicom writes a DICOM SEG for each
   (the bright structures of the phantom: a segmentation the network can learn), beside it;
2. ``dicomml.scan`` indexes them: the SEGs are not image series but rows of ``cat.labels``,
   linked to their series (``cat.labels_for(key)``);
3. ``DicomSeriesDataset(segmentation="catalog")`` loads each series with its SEG on the
   image's grid (``dicomml.load_labels``), caches both, and flips them together every access;
4. a ``DataLoader`` with worker processes and ``dicomml.collate`` batches them (labels padded
   with -1, ignored by the loss);
5. a tiny 3D U-Net trains; the loss goes down.

Run::

    python examples/train_segmentation.py                 # ~20-60 s on a laptop CPU
    python examples/train_segmentation.py --steps 40 --workers 0

Needs highdicom (the ``seg`` extra) to write the SEGs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dicomml
from dicomml import transforms as T


class TinyUNet(nn.Module):
    """(batch, 1, slices, rows, columns) -> (batch, classes, slices, rows, columns) logits;
    one down / up level with a skip connection (even spatial sizes)."""

    def __init__(self, classes: int = 2, width: int = 8):
        super().__init__()
        self.down = nn.Sequential(nn.Conv3d(1, width, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.MaxPool3d(2), nn.Conv3d(width, 2 * width, 3, padding=1),
                                    nn.ReLU(), nn.ConvTranspose3d(2 * width, width, 2, stride=2))
        self.head = nn.Sequential(nn.Conv3d(2 * width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv3d(width, classes, 1))

    def forward(self, x):
        skip = self.down(x)
        return self.head(torch.cat([skip, self.bottom(skip)], dim=1))


def write_seg(truth, folder: Path) -> Path:
    """A highdicom SEG of the phantom's bright structures (top 15 % of values) for a series."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in truth.paths]
    index = truth.meta["index_of_path"]  # (volume, slice) of each file: the SEG frame order
    mask = truth.array > np.percentile(truth.array, 85)
    frames = np.stack([mask[index[i][1]] for i in range(len(sources))])
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type="BINARY",
        segment_descriptions=[hd.seg.SegmentDescription(
            segment_number=1, segment_label="bright", algorithm_type="MANUAL",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue)],
        series_instance_uid=hd.UID(), series_number=99, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="example", manufacturer_model_name="example",
        software_versions="1", device_serial_number="1")
    path = folder / "seg.dcm"
    seg.save_as(path)
    return path


def make_dataset(workdir: Path, n_series: int = 4) -> dicomml.DicomSeriesDataset:
    for i in range(n_series):
        folder = workdir / "dicom" / f"ct{i}"
        truth = dicomml.synth.write_series(folder, shape=(16, 32, 32), seed=i)
        write_seg(truth, folder)
    catalog = dicomml.scan(workdir / "dicom", progress=False)
    print(f"{catalog}; label objects: {len(catalog.labels)}")
    transform = T.Compose([T.ClipNormalize(-1000, 1000),              # cached with the label
                           T.RandomFlip(axes=(1, 2), p=0.5)])          # image and label
    return dicomml.DicomSeriesDataset(catalog, segmentation="catalog", transform=transform,
                                      cache_dir=workdir / "cache")


def train(steps: int, workers: int, batch_size: int = 2, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="dicomml-example-") as tmp:
        dataset = make_dataset(Path(tmp))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
            collate_fn=dicomml.collate, persistent_workers=workers > 0)
        model = TinyUNet()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses: list[float] = []
        while len(losses) < steps:
            for batch in loader:
                logits = model(batch["image"])
                target = batch["label"][:, 0]  # (batch, slices, rows, columns), -1 = padding
                loss = nn.functional.cross_entropy(logits, target, ignore_index=-1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                print(f"step {len(losses):3d}  loss {losses[-1]:.4f}  "
                      f"batch {tuple(batch['image'].shape)}")
                if len(losses) == steps:
                    break
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    losses = train(args.steps, args.workers)
    print(f"{len(losses)} steps in {time.perf_counter() - start:.1f} s; "
          f"mean loss first 3 {sum(losses[:3]) / 3:.3f}, last 3 {sum(losses[-3:]) / 3:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
