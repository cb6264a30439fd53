"""4D diffusion series against dcm2niix: Siemens mosaics, and the same data as an enhanced object.

Reference: ``../shared/data/dcm_qa_decubitus/Ref/<position>/*_ep2d_diff_mddw_20_p2.{nii,bval,bvec}``,
dcm2niix's conversion of 13 mosaic files (each 25 slices of 128x128) per patient position.
Our side is built here from the plane tables (positions -> affine, no dicomml affine code) and,
separately, through ``dicomml.load_series``. Images are compared after
``nibabel.as_closest_canonical``: affines to 1e-3 mm, voxels exactly; b-values exactly;
gradient directions (LPS, patient frame) are rotated into dcm2niix's image-axis ``.bvec`` frame.
"""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dicomml
from dicomml.geometry import enhanced, mosaic

nib = pytest.importorskip("nibabel")

POSITIONS = ("HFS", "HFP", "HFDL", "HFDR")
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


class Diffusion4D:
    """The 13 mosaics of one position: headers, pixels, plane tables, dcm2niix reference."""

    def __init__(self, shared_data, position):
        root = shared_data / "dcm_qa_decubitus"
        folder = next((root / "In" / position).glob("*_ep2d_diff*"))
        files = sorted(folder.glob("*.dcm"))
        datasets = [pydicom.dcmread(f) for f in files]
        order = np.argsort([int(ds.InstanceNumber) for ds in datasets])  # acquisition order
        self.files = [files[i] for i in order]
        self.datasets = [datasets[i] for i in order]
        self.planes = [mosaic.mosaic_planes(ds, f) for ds, f in zip(self.datasets, self.files)]
        self.reference_path = next((root / "Ref" / position).glob("*_ep2d_diff*.nii"))
        self.reference = nib.load(self.reference_path)
        self.bvals = np.loadtxt(self.reference_path.with_suffix(".bval"))
        self.bvecs = np.loadtxt(self.reference_path.with_suffix(".bvec"))  # (3, volumes)

    def volume(self) -> np.ndarray:
        """(volumes, slices, rows, columns) in tile order."""
        return np.stack([mosaic.untile(ds.pixel_array, planes)
                         for ds, planes in zip(self.datasets, self.planes)])


@pytest.fixture(scope="module", params=POSITIONS)
def dwi(request, shared_data):
    return Diffusion4D(shared_data, request.param)


def lps_affine(positions: np.ndarray, orientation, pixel_spacing) -> np.ndarray:
    """Index (slice, row, column) -> LPS mm from sorted positions (docs/conventions.md)."""
    cosines = np.asarray(orientation, dtype=float)
    affine = np.eye(4)
    affine[:3, 0] = positions[1] - positions[0]
    affine[:3, 1] = cosines[3:] * pixel_spacing[0]
    affine[:3, 2] = cosines[:3] * pixel_spacing[1]
    affine[:3, 3] = positions[0]
    return affine


def to_nifti(volume4d: np.ndarray, lps: np.ndarray):
    ras = (np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)[:, [2, 1, 0, 3]]
    return nib.Nifti1Image(np.transpose(volume4d, (3, 2, 1, 0)), ras)


def assert_matches(image, reference):
    ours, ref = nib.as_closest_canonical(image), nib.as_closest_canonical(reference)
    assert ours.shape == ref.shape == (128, 128, 25, 13)
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(ref.dataobj))


def gradients_in_bvec_frame(gradients, reference) -> np.ndarray:
    """LPS unit gradients -> dcm2niix's .bvec frame (the NIfTI's voxel axes; an x flip applies
    only to images with a positive-determinant affine, which these references are not)."""
    rotation = reference.affine[:3, :3] / np.linalg.norm(reference.affine[:3, :3], axis=0)
    assert np.linalg.det(rotation) < 0
    ras = np.array([[0.0, 0.0, 0.0] if g is None else [-g[0], -g[1], g[2]] for g in gradients])
    return (rotation.T @ ras.T)  # (3, volumes)


# --- mosaic functions, no loader --------------------------------------------------------------
def test_mosaic_planes_give_dcm2niix_4d_volume(dwi):
    volume = dwi.volume()
    assert volume.shape == (13, 25, 128, 128)
    first = dwi.planes[0]
    for planes in dwi.planes[1:]:  # every file covers the same slices
        np.testing.assert_allclose(np.stack(planes["position"]), np.stack(first["position"]))
    lps = lps_affine(np.stack(first["position"]), first.loc[0, "orientation"],
                     first.loc[0, "pixel_spacing"])
    assert_matches(to_nifti(volume, lps), dwi.reference)


def test_mosaic_diffusion_values_match_bval_bvec(dwi):
    b_values = [planes.loc[0, "b_value"] for planes in dwi.planes]
    np.testing.assert_array_equal(b_values, dwi.bvals)
    gradients = [planes.loc[0, "gradient"] for planes in dwi.planes]
    assert (gradients[0] is None) == (dwi.bvals[0] == 0)
    np.testing.assert_allclose(gradients_in_bvec_frame(gradients, dwi.reference), dwi.bvecs,
                               atol=1e-5)


def test_mosaic_slice_times_match_dcm2niix(dwi):
    reference = json.loads(dwi.reference_path.with_suffix(".json").read_text())["SliceTiming"]
    for planes in dwi.planes:  # the same slice timing in every volume
        np.testing.assert_allclose(planes["slice_time"] / 1000.0, reference, atol=1e-4)


# --- through the loader -------------------------------------------------------------------------
@pytest.mark.parametrize("position", ("HFS", "HFDL"))
def test_load_series_gives_4d_with_diffusion_metadata(shared_data, position):
    dwi = Diffusion4D(shared_data, position)
    volume = dicomml.load_series(dwi.files[0].parent)
    assert volume.array.shape == (13, 25, 128, 128)
    assert_matches(volume.to_nifti(), dwi.reference)
    per_volume = volume.metadata["volumes"]
    np.testing.assert_array_equal([v["b_value"] for v in per_volume], dwi.bvals)
    np.testing.assert_allclose(
        gradients_in_bvec_frame([v["gradient"] for v in per_volume], dwi.reference),
        dwi.bvecs, atol=1e-5)


# --- the same data as one enhanced MR object ----------------------------------------------------
def write_enhanced_dwi(dwi: Diffusion4D, path, seed=0) -> None:
    """Write the 13x25 tiles as one Enhanced MR object, frames shuffled, with MR Diffusion,
    Plane Position and Frame Content functional groups and a dimension index
    (StackID, InStackPositionNumber, DiffusionBValue, DiffusionGradientOrientation)."""
    volume = dwi.volume()
    first_ds, first = dwi.datasets[0], dwi.planes[0]
    frames = [(v, s) for v in range(volume.shape[0]) for s in range(volume.shape[1])]
    order = np.random.default_rng(seed).permutation(len(frames))
    gradients = [planes.loc[0, "gradient"] for planes in dwi.planes]
    b_values = [float(planes.loc[0, "b_value"]) for planes in dwi.planes]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = ENHANCED_MR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "Modality",
                    "FrameOfReferenceUID", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        setattr(ds, keyword, first_ds.data_element(keyword).value)
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 400, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = 128, 128, len(frames)
    ds.DimensionIndexSequence = Sequence([
        _item(DimensionIndexPointer=pointer, FunctionalGroupPointer=group)
        for pointer, group in ((0x0020_9056, 0x0020_9111), (0x0020_9057, 0x0020_9111),
                               (0x0018_9087, 0x0018_9117), (0x0018_9089, 0x0018_9076))])
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PlaneOrientationSequence=Sequence([_item(
            ImageOrientationPatient=list(first.loc[0, "orientation"]))]),
        PixelMeasuresSequence=Sequence([_item(
            PixelSpacing=list(first.loc[0, "pixel_spacing"]),
            SliceThickness=first_ds.SliceThickness)]))])
    direction_index = {g: i + 1 for i, g in enumerate(dict.fromkeys(gradients))}
    per_frame = []
    for v, s in (frames[i] for i in order):
        diffusion = _item(DiffusionBValue=b_values[v],
                          DiffusionDirectionality="NONE" if gradients[v] is None else "DIRECTIONAL")
        if gradients[v] is not None:
            diffusion.DiffusionGradientDirectionSequence = Sequence([_item(
                DiffusionGradientOrientation=list(gradients[v]))])
        per_frame.append(_item(
            PlanePositionSequence=Sequence([_item(
                ImagePositionPatient=[f"{x:.10g}" for x in first.loc[s, "position"]])]),
            FrameContentSequence=Sequence([_item(
                StackID="1", InStackPositionNumber=s + 1,
                DimensionIndexValues=[1, s + 1, 1 + (b_values[v] > 0),
                                      direction_index[gradients[v]]])]),
            MRDiffusionSequence=Sequence([diffusion])))
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = np.ascontiguousarray(
        volume.reshape(-1, 128, 128)[order]).astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _same_direction(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(a, b, atol=1e-9))


def _item(**values) -> Dataset:
    item = Dataset()
    for name, value in values.items():
        setattr(item, name, value)
    return item


@pytest.fixture(scope="module")
def enhanced_dwi(shared_data, tmp_path_factory):
    dwi = Diffusion4D(shared_data, "HFDR")
    path = tmp_path_factory.mktemp("enhanced_dwi") / "dwi_enhanced.dcm"
    write_enhanced_dwi(dwi, path)
    return dwi, path


def test_enhanced_frame_planes_rebuild_the_dwi_series(enhanced_dwi):
    dwi, path = enhanced_dwi
    ds = pydicom.dcmread(path)
    planes = enhanced.frame_planes(ds, path)
    assert len(planes) == 13 * 25
    # group frames into volumes by the non-spatial dimension key, order volumes as acquired
    # (the key alone cannot do that: acquisition order is not stored), slices along the normal
    wanted = [(p.loc[0, "b_value"], p.loc[0, "gradient"]) for p in dwi.planes]
    assert len(set(planes["volume_key"])) == 13
    frames = ds.pixel_array
    normal = np.cross(*np.reshape(planes.loc[0, "orientation"], (2, 3)))
    volumes = []
    for b_value, gradient in wanted:
        rows = planes[(planes["b_value"] == b_value)
                      & planes["gradient"].map(lambda g, w=gradient: _same_direction(g, w))]
        assert len(rows) == 25
        positions = np.stack(rows["position"])
        order = np.argsort(positions @ normal)
        volumes.append(frames[rows["frame"].to_numpy()[order]])
    lps = lps_affine(positions[order], planes.loc[0, "orientation"], planes.loc[0, "pixel_spacing"])
    assert_matches(to_nifti(np.stack(volumes), lps), dwi.reference)


def test_load_series_of_enhanced_dwi(enhanced_dwi):
    dwi, path = enhanced_dwi
    volume = dicomml.load_series([path])
    assert volume.array.shape == (13, 25, 128, 128)
    # volumes come back in the loader's order of the dimension values: match them to dcm2niix's
    # acquisition order through their (b-value, gradient), then compare every voxel
    per_volume = volume.metadata["volumes"]
    wanted = [(p.loc[0, "b_value"], p.loc[0, "gradient"]) for p in dwi.planes]
    order = []
    for b_value, gradient in wanted:
        matches = [i for i, v in enumerate(per_volume)
                   if v["b_value"] == b_value and _same_direction(v["gradient"], gradient)]
        assert len(matches) == 1
        order.append(matches[0])
    reordered = nib.Nifti1Image(volume.to_nifti().get_fdata()[..., order],
                                volume.to_nifti().affine)
    assert_matches(reordered, dwi.reference)
