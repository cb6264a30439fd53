"""Volume order of enhanced multi-frame objects: the Dimension Index Sequence decides.

PS3.3 Section 7.5.2 "Dimension Organization" (CP-567): "The first Item of the Dimension Index
Sequence shall be the slowest varying index". One synthetic enhanced MR object with four
volumes = 2 echoes x 2 temporal positions is written twice, identical but for the order of
its two non-spatial Dimension Index Sequence items (and the Dimension Index Values that
follow it); the volumes must come out in that declared order each time, whatever the frames'
storage order and whatever fixed column order (temporal before echo) a reader might prefer.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword

import dicomml
from dicomml import synth

#: volume v of the synthetic plan -> (echo index, temporal index), both 1-based
LABELS = {0: (1, 1), 1: (2, 1), 2: (1, 2), 3: (2, 2)}
ECHO_MS = {1: 10.0, 2: 30.0}


def _write(folder, first: str):
    """An enhanced object whose non-spatial dimensions are ``first`` then the other one
    ("echo" / "temporal"); returns (path, truth array (volumes, slices, rows, columns))."""
    truth = synth.write_series(folder / "src", modality="MR", shape=(4, 3, 8, 8),
                               multiframe=True, fourth_dim="temporal", seed=5)
    ds = pydicom.dcmread(truth.paths[0])
    order = ["echo", "temporal"] if first == "echo" else ["temporal", "echo"]
    pointers = {"echo": ("EffectiveEchoTime", "MREchoSequence"),
                "temporal": ("TemporalPositionIndex", "FrameContentSequence")}
    spatial = list(ds.DimensionIndexSequence)[:2]
    items = []
    for name in order:
        item = pydicom.Dataset()
        item.DimensionOrganizationUID = spatial[0].DimensionOrganizationUID
        item.DimensionIndexPointer = tag_for_keyword(pointers[name][0])
        item.FunctionalGroupPointer = tag_for_keyword(pointers[name][1])
        items.append(item)
    ds.DimensionIndexSequence = spatial + items
    for frame in ds.PerFrameFunctionalGroupsSequence:
        content = frame.FrameContentSequence[0]
        stack, position, volume = (int(v) for v in content.DimensionIndexValues)
        echo, temporal = LABELS[volume - 1]
        content.TemporalPositionIndex = temporal
        frame.MREchoSequence[0].EffectiveEchoTime = ECHO_MS[echo]
        index = {"echo": echo, "temporal": temporal}
        content.DimensionIndexValues = [stack, position] + [index[n] for n in order]
    path = folder / f"{first}_first.dcm"
    ds.save_as(path)
    return path, truth.array


@pytest.mark.parametrize("first", ["echo", "temporal"])
def test_first_dimension_index_item_varies_slowest(tmp_path, first):
    path, truth = _write(tmp_path, first)
    vol = dicomml.load_series(path)
    slow = 0 if first == "echo" else 1  # position of the slow label in LABELS' tuples
    expected = sorted(range(4), key=lambda v: (LABELS[v][slow], LABELS[v][1 - slow]))
    assert vol.shape == truth.shape
    np.testing.assert_allclose(np.asarray(vol.array), truth[expected], atol=1e-3)
    volumes = vol.metadata["volumes"]
    assert {v["ordered_by"] for v in volumes} == {"DimensionIndexValues"}
    echoes = [v["echo"] for v in volumes]
    temporal = [v["temporal"] for v in volumes]
    if first == "echo":
        assert echoes == [10.0, 10.0, 30.0, 30.0] and temporal == [1, 2, 1, 2]
    else:
        assert temporal == [1, 1, 2, 2] and echoes == [10.0, 30.0, 10.0, 30.0]
    assert vol.metadata["provenance"]["volume_rule"] == "DimensionIndexValues"


def test_dimension_index_values_sort_as_numbers_not_text():
    """(2,) before (10,): the Dimension Index Values are compared as integers."""
    import pandas as pd

    from dicomml.geometry.stack import _dimension_keys

    planes = pd.DataFrame({"path": ["a.dcm"] * 3, "frame": [0, 1, 2], "tile": [-1] * 3,
                           "volume_key": [(10,), (2,), (1,)]})
    assert _dimension_keys(planes).tolist() == [2, 1, 0]
