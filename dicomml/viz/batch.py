"""Side-by-side view of collated training batches (e.g. before / after augmentation).

>>> batch = {"image": np.zeros((2, 1, 3, 4, 4)), "affine": np.stack([np.eye(4)] * 2)}
>>> [ax.get_title() for ax in show_batch(batch).axes]
['#0', '#1']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dicomml.geometry.affine import spacing_from_affine
from dicomml.viz.drawing import _draw, _require_matplotlib, _window
from dicomml.viz.inputs import _to_numpy
from dicomml.viz.orientation import DISPLAY_FRAME, edge_labels, reorient, view_aspect


def _batch_images(batch, channel: int, n: int, reorient_views: bool):
    """(2D middle slices, edge label dicts, aspects) of the first ``n`` samples of a batch."""
    images = _to_numpy(batch["image"])
    affines = _to_numpy(batch["affine"]) if "affine" in batch else None
    out, labels, aspects = [], [], []
    for i in range(min(n, images.shape[0])):
        volume = images[i, channel]
        affine = affines[i] if affines is not None else np.eye(4)
        plane = None
        if reorient_views:
            volume, affine = reorient(volume, affine, DISPLAY_FRAME)
            plane = "axial"
        out.append(volume[volume.shape[0] // 2])
        labels.append(edge_labels(affine, plane))
        aspects.append(view_aspect(spacing_from_affine(affine), plane))
    return out, labels, aspects


def show_batch(batch, *, compare=None, names: Sequence[str] = ("before", "after"),
               n: int = 8, channel: int = 0, reorient_views: bool = False, window=None,
               cmap="gray", figsize=None):
    """Middle slice of each sample of a collated batch; with ``compare``, a second row.

    ``batch`` is a dict with ``image`` (B, C, slices, rows, columns) and ``affine`` (B, 4, 4)
    (tensors or arrays), as :func:`dicomml.collate` returns. By default each panel is
    ``image[b, channel, slices // 2]`` exactly as the model sees it, its edges labelled from
    the sample's affine (so a tracked flip shows as swapped labels);
    ``reorient_views=True`` draws the radiological axial view instead. ``compare`` is a second
    batch of the same samples (e.g. after augmentation) drawn below, rows titled by ``names``.
    A ``series_key`` list, when present, titles each column.
    """
    Figure = _require_matplotlib()
    rows = [batch] if compare is None else [batch, compare]
    per_row = [_batch_images(b, channel, n, reorient_views) for b in rows]
    ncols = max(len(images) for images, _, _ in per_row)
    fig = Figure(figsize=figsize or (2.4 * ncols, 2.6 * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), ncols, squeeze=False))
    for r, (images, labels, aspects) in enumerate(per_row):
        for c, ax in enumerate(axes[r]):
            if c >= len(images):
                fig.delaxes(ax)
                continue
            vmin, vmax = _window(images[c], window)
            _draw(ax, images[c], aspect=aspects[c], labels=labels[c], vmin=vmin, vmax=vmax,
                  cmap=cmap, title=_batch_title(rows[r], c, names[r] if compare else None))
    return fig


def _batch_title(batch, index, name):
    keys = batch.get("series_key")
    text = str(keys[index])[-12:] if keys is not None and index < len(keys) else f"#{index}"
    return f"{name}: {text}" if name else text
