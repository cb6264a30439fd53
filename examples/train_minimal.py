"""Train a tiny 3D CNN on the demo corpus for a few steps on the CPU.

What it shows, end to end:

1. ``dicomml.synth.write_corpus`` writes a small corpus of synthetic CT and MR series (mixed
   folders, compressed and multi-frame files) into a temporary folder;
2. ``dicomml.scan`` indexes it; a label table (CT = 0, MR = 1) is joined on SeriesInstanceUID;
3. ``DicomSeriesDataset`` decodes each series once into a cache folder, after the deterministic
   transforms (resize to a fixed grid, scale -1000..1000 to 0..1); the random flip runs on every access;
4. a ``DataLoader`` with worker processes and ``dicomml.collate`` batches the samples;
5. a small 3D CNN trains for a few steps and the loss is printed.

Run::

    python examples/train_minimal.py            # ~10-30 s on a laptop CPU
    python examples/train_minimal.py --steps 20 --workers 0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

import dicomml
from dicomml import transforms as T


def tiny_cnn(classes: int = 2) -> nn.Module:
    """Input (batch, 1, slices, rows, columns) -> class logits (batch, classes)."""
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
        nn.Flatten(), nn.Linear(16, classes))


def make_dataset(workdir: Path) -> dicomml.DicomSeriesDataset:
    truths = dicomml.synth.write_corpus(workdir / "dicom", n_patients=2)
    catalog = dicomml.scan(workdir / "dicom", progress=False)
    labels = pd.DataFrame({"SeriesInstanceUID": [t.series_uid for t in truths],
                           "label": [int(t.modality == "MR") for t in truths]})
    transform = T.Compose([T.ResizeTo((16, 32, 32)), T.ClipNormalize(-1000, 1000),  # cached
                           T.RandomFlip(axes=(1, 2), p=0.5)])          # every access
    return dicomml.DicomSeriesDataset(catalog, labels=labels, transform=transform,
                                      cache_dir=workdir / "cache")


def train(steps: int, workers: int, batch_size: int = 4, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="dicomml-example-") as tmp:
        dataset = make_dataset(Path(tmp))
        print(f"{dataset}; {dataset.label_report}")
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
            collate_fn=dicomml.collate, persistent_workers=workers > 0)
        model = tiny_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses: list[float] = []
        while len(losses) < steps:
            for batch in loader:
                logits = model(batch["image"])
                loss = nn.functional.cross_entropy(logits, batch["label"])
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
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    losses = train(args.steps, args.workers)
    print(f"{len(losses)} steps in {time.perf_counter() - start:.1f} s; "
          f"mean loss first 3 {sum(losses[:3]) / 3:.3f}, last 3 {sum(losses[-3:]) / 3:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
