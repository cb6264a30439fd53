"""Identical voxels across the nine lossless transfer syntaxes of ../shared/data/dcm_qa_ts,
for every installed decoder, and agreement with dcm2niix's reference volume."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dicomml.decode import decoders_for, read_pixels


def _syntax(path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


@pytest.fixture(scope="module")
def qa_files(shared_data):
    files = sorted((shared_data / "dcm_qa_ts" / "In").glob("*.dcm"))
    if len(files) != 9:
        pytest.skip("dcm_qa_ts/In does not hold the nine files")
    return files


def test_nine_syntaxes_identical_for_every_decoder(qa_files):
    reference = read_pixels(qa_files[0])
    seen = set()
    for path in qa_files:
        syntax = _syntax(path)
        seen.add(syntax)
        for decoder in decoders_for(syntax):
            arr = read_pixels(path, decoder=decoder.name)
            assert arr.dtype == reference.dtype, (path.name, decoder.name)
            np.testing.assert_array_equal(arr, reference, err_msg=f"{path.name} {decoder.name}")
    assert len(seen) >= 6  # LE explicit/implicit, BE, RLE, JPEG lossless, JPEG-LS, J2K


def test_matches_dcm2niix_voxels(qa_files, shared_data):
    nibabel = pytest.importorskip("nibabel")
    ref = np.asarray(nibabel.load(shared_data / "dcm_qa_ts" / "Ref" / "1.nii").dataobj)
    mosaic = read_pixels(qa_files[0])[0]
    # dcm2niix stores the same voxel values, in tiles: compare the value multisets
    tile = ref.shape[0]
    tiles = [mosaic[r:r + tile, c:c + tile] for r in range(0, mosaic.shape[0], tile)
             for c in range(0, mosaic.shape[1], tile)][:ref.shape[2]]
    ours = np.sort(np.concatenate([t.ravel() for t in tiles]))
    np.testing.assert_array_equal(ours, np.sort(ref.ravel().astype(ours.dtype)))
