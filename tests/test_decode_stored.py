"""decode.stored.fill: the one way from a file's bytes to stored values, for every kind of source
(catalog Location, path, loaded EncodedPixels), any syntax, any subset of frames; compared with
the writer's ground truth (dicomml.synth) and with read_pixels."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import dicomml
from dicomml import synth
from dicomml.decode import syntaxes as ts
from dicomml.decode.frames import EncodedPixels, load_encoded
from dicomml.decode.located import locations_from_frame
from dicomml.decode.stored import Request, fill

SYNTAXES = [ts.EXPLICIT_VR_LE, ts.EXPLICIT_VR_BE, ts.RLE_LOSSLESS, ts.JPEG_LS_LOSSLESS,
            ts.DEFLATED_EXPLICIT_VR_LE]


def _multiframe(folder, syntax):
    truth = synth.write_series(folder, shape=(6, 10, 8), transfer_syntax=syntax, seed=4,
                               multiframe=True, signed=True, bits_stored=12)
    rows = dicomml.scan(folder, workers=1, progress=False).instances
    stored = np.stack([truth.stored[s] for _, s in truth.meta["frame_index"]])
    return stored, rows


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_any_subset_of_frames_from_any_source(tmp_path, syntax):
    stored, rows = _multiframe(tmp_path, syntax)
    where = locations_from_frame(rows, unlocated=True)[0]
    frames = [0, 1, 3, 4]  # two runs of consecutive frames
    for source in (where, where.path, load_encoded(where.path)):
        out = np.full((len(frames), 10, 8), -1, np.int16)
        info = fill([Request(source, out, frames)])[0]
        assert info.number_of_frames == 6 and info.dtype == np.int16
        np.testing.assert_array_equal(out, stored[frames])
    whole = np.empty((6, 10, 8), np.int16)  # every frame: frames=None
    fill([Request(where.path, whole)], expect=where.info)
    np.testing.assert_array_equal(whole, dicomml.read_pixels(where.path))


def test_a_file_that_no_longer_fits_comes_back_loaded(tmp_path):
    _, rows = _multiframe(tmp_path / "a", ts.EXPLICIT_VR_LE)
    other = synth.write_series(tmp_path / "b", shape=(1, 4, 4), seed=1)
    where = locations_from_frame(rows)[0]
    shutil.copyfile(other.paths[0], where.path)  # the catalog still says 6 x 10 x 8
    out = np.zeros((2, 10, 8), np.int16)
    found = fill([Request(where, out, [0, 1])])[0]
    assert isinstance(found, EncodedPixels) and found.info.rows == 4
    assert not out.any()  # nothing written where it would not fit
