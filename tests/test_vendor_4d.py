"""4D series from every vendor (issue 16 items 1-3 and provenance), on dicomml.synth series with
known truth, on hand-made headers and on the real shared data.

- volumes that no standard tag tells apart (GE, Canon, fMRI without Temporal Position
  Identifier) are built in Instance Number order, and say so in their metadata;
- true duplicates (unequal repetition, the same SOP instance twice, the same Instance Number
  with identical pixels) still raise DuplicateSliceError;
- the diffusion encoding of every vendor lands in ``metadata["volumes"]`` in the LPS frame, and
  ``dicomml convert`` writes .bval/.bvec equal to dcm2niix's;
- a folder of one Series Instance UID loads whole; sub-series that cannot stack stay apart.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import dicomml
from dicomml import synth
from dicomml.cli import main
from dicomml.errors import DuplicateSliceError, MultipleSeriesError
from dicomml.geometry.diffusion import bvecs_to_ras, fsl_bvecs, vendor_diffusion

nib = pytest.importorskip("nibabel")


def _same_axis(a, b, tol_deg=1e-3) -> bool:
    if a is None or b is None:
        return a is None and b is None
    cos = abs(float(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b))
    return np.degrees(np.arccos(min(1.0, cos))) <= tol_deg


# ------------------------------------------------------------------------------ synthetic
@pytest.mark.parametrize("style", ["ge_dwi", "canon_dti", "philips_dwi"])
@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_vendor_style_dwi_loads_like_the_truth(tmp_path, style, orientation):
    truth = synth.write_series(tmp_path, modality="MR", shape=(6, 4, 8, 8), fourth_dim=style,
                               orientation=orientation, seed=7)
    kept = 6 - len(truth.meta["derived_volumes"])
    vol = dicomml.load_series(tmp_path)
    assert vol.shape == (kept, 4, 8, 8)
    np.testing.assert_allclose(vol.array, truth.array[:kept], rtol=1e-6)
    np.testing.assert_allclose(vol.affine, truth.affine, atol=1e-4)
    volumes = vol.metadata["volumes"]
    assert [v["b_value"] for v in volumes] == truth.meta["b_values"]
    for ours, theirs in zip([v["gradient"] for v in volumes], truth.meta["gradients"]):
        assert _same_axis(ours, theirs)
    assert {v["ordered_by"] for v in volumes} == {"InstanceNumber"}
    provenance = vol.metadata["provenance"]
    assert provenance["volume_rule"] == "InstanceNumber"
    assert style.split("_")[0] in provenance["diffusion"].lower()
    # files in slice order, per volume: the truth's (volume, slice) of each path
    where = {str(p): vs for p, vs in zip(truth.paths, truth.meta["index_of_path"])}
    assert [[where[f] for f in files] for files in provenance["files"]] == \
        [[(v, s) for s in range(4)] for v in range(kept)]
    if truth.meta["derived_volumes"]:  # the trace image: left out, listed, loadable alone
        left_out = provenance["left_out"]["files"]
        assert sorted(where[f] for f in left_out) == [(5, s) for s in range(4)]
        trace = dicomml.load_series(left_out)
        np.testing.assert_allclose(trace.array, truth.array[5], rtol=1e-6)


def test_fmri_without_temporal_position_is_ordered_by_instance_number(tmp_path):
    truth = synth.write_series(tmp_path, modality="MR", shape=(3, 5, 8, 8), seed=8,
                               instance_numbers="sorted", TemporalPositionIdentifier=None,
                               NumberOfTemporalPositions=None)
    vol = dicomml.load_series(tmp_path)
    np.testing.assert_allclose(vol.array, truth.array, rtol=1e-6)
    assert [v["ordered_by"] for v in vol.metadata["volumes"]] == ["InstanceNumber"] * 3


def _fmri(tmp_path, seed=9):
    return synth.write_series(tmp_path / "s", modality="MR", shape=(3, 4, 8, 8), seed=seed,
                              instance_numbers="sorted", TemporalPositionIdentifier=None,
                              NumberOfTemporalPositions=None)


def test_unequal_repetition_is_a_duplicate(tmp_path):
    truth = _fmri(tmp_path)
    where = dict(zip(map(str, truth.paths), truth.meta["index_of_path"]))
    (victim,) = [p for p in truth.paths if where[str(p)] == (2, 1)]
    victim.unlink()  # position 1 now holds 2 planes, the others 3
    with pytest.raises(DuplicateSliceError):
        dicomml.load_series(tmp_path / "s")


def test_the_same_instance_twice_is_a_duplicate(tmp_path):
    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(4, 8, 8), seed=10)
    for path in truth.paths:  # a re-send: every file again under another name
        shutil.copy(path, path.with_name("copy_" + path.name))
    with pytest.raises(DuplicateSliceError):
        dicomml.load_series(tmp_path / "s")


def test_same_instance_number_and_pixels_under_new_uids_is_a_duplicate(tmp_path):
    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(4, 8, 8), seed=11)
    for index, path in enumerate(truth.paths):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
            pydicom.uid.generate_uid(entropy_srcs=["copy", str(index)])
        ds.save_as(path.with_name("copy_" + path.name))
    with pytest.raises(DuplicateSliceError):
        dicomml.load_series(tmp_path / "s")


def test_equal_pixels_in_distinct_instances_still_form_volumes(tmp_path):
    """GE publishes fMRI runs whose volumes hold identical pixels (dcm_qa_ge SliceTiming):
    distinct SOP instances with distinct Instance Numbers are volumes, not duplicates."""
    truth = _fmri(tmp_path)
    first = {s: p for p, (v, s) in zip(truth.paths, truth.meta["index_of_path"]) if v == 0}
    for path, (v, s) in zip(truth.paths, truth.meta["index_of_path"]):
        if v:
            ds = pydicom.dcmread(path)
            ds.PixelData = pydicom.dcmread(first[s]).PixelData
            ds.save_as(path)
    vol = dicomml.load_series(tmp_path / "s")
    assert vol.shape == (3, 4, 8, 8)
    np.testing.assert_array_equal(vol.array[1], vol.array[0])


# ------------------------------------------------------------------------------ headers
def _header(**values) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_ge_b_value_and_image_frame_direction():
    ds = _header(ImageOrientationPatient=[0, 1, 0, 0, 0, -1])  # sagittal
    ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS",
                                                                   [1_000_001_000, 8, 0, 0])
    acq = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    for offset, value in zip((0xBB, 0xBC, 0xBD), ("0", "0", "1")):
        acq.add_new(offset, "DS", value)
    found = vendor_diffusion(ds)
    assert found.b_value == 1000.0  # GE adds 10^9 on some versions
    # no phase-encoding direction: z is along n = F_r x F_c = (-1, 0, 0), left-right
    assert _same_axis(found.gradient, (1.0, 0.0, 0.0))
    ds.InPlanePhaseEncodingDirection = "ROW"  # sagittal: x, y negated, then swizzled
    ds.private_block(0x0019, "GEMS_ACQU_01")[0xBB].value = "1"
    ds.private_block(0x0019, "GEMS_ACQU_01")[0xBD].value = "0"
    # (1,0,0) -> flips (-1,0,0) -> ROW (0,1,0) -> y negated (0,-1,0): along F_c = (0,0,-1)
    assert _same_axis(vendor_diffusion(ds).gradient, (0.0, 0.0, 1.0))


def test_ge_private_tags_need_their_creator():
    ds = _header(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    ds.private_block(0x0043, "SOMEONE_ELSE", create=True).add_new(0x39, "IS", [1000, 8, 0, 0])
    assert vendor_diffusion(ds).b_value != vendor_diffusion(ds).b_value  # NaN: not GE's


def test_philips_private_direction_and_isotropic_flag():
    ds = _header()
    block = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
    block.add_new(0x03, "FL", 2000.0)
    block.add_new(0x04, "CS", "M")
    mr = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    for offset, value in zip((0xB0, 0xB1, 0xB2), (0.0, 0.6, 0.8)):
        mr.add_new(offset, "FL", value)
    found = vendor_diffusion(ds)
    assert found.b_value == 2000.0 and _same_axis(found.gradient, (0.0, 0.6, 0.8))
    assert not found.isotropic
    block[0x04].value = "I"
    for offset in (0xB0, 0xB1, 0xB2):
        mr[offset].value = 0.0
    found = vendor_diffusion(ds)
    assert found.gradient is None and found.isotropic


def test_canon_comment_is_parsed_and_b0_has_no_direction():
    iop = [1, 0, 0, 0, 1, 0]
    found = vendor_diffusion(_header(ImageOrientationPatient=iop, DiffusionBValue=1500.0,
                                     ImageComments="b=1500(0.600,0.800,0.000)"))
    # no phase-encoding direction: dcm2niix keeps Canon's swapped values along F_r, -F_c, n
    assert found.b_value == 1500.0 and _same_axis(found.gradient, (0.8, -0.6, 0.0))
    found = vendor_diffusion(_header(ImageOrientationPatient=iop, DiffusionBValue=0.0))
    assert found.b_value == 0.0 and found.gradient is None


def test_standard_direction_wins():
    found = vendor_diffusion(_header(DiffusionBValue=700.0,
                                     DiffusionGradientOrientation=[0.0, 0.0, -1.0],
                                     ImageComments="b=700(1.000,0.000,0.000)"))
    assert found.source.startswith("(0018,9087)") and _same_axis(found.gradient, (0, 0, 1))


def test_fsl_bvecs_round_trip_and_x_flip():
    rng = np.random.default_rng(0)
    for det_sign in (1.0, -1.0):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        if np.sign(np.linalg.det(q)) != det_sign:
            q[:, 0] = -q[:, 0]
        affine = np.eye(4)
        affine[:3, :3] = q * [1.5, 2.0, 3.0]
        gradients = [None] + [tuple(v / np.linalg.norm(v)) for v in rng.normal(size=(4, 3))]
        bvecs = fsl_bvecs(gradients, affine)
        assert np.allclose(bvecs[:, 0], 0)
        ras = bvecs_to_ras(bvecs, affine)
        for g, r in zip(gradients[1:], ras.T[1:]):
            assert np.allclose([-g[0], -g[1], g[2]], r, atol=1e-9)
        # FSL: voxel-frame x negated when the determinant is positive
        g = np.array(gradients[1])
        v = np.linalg.solve(q, [-g[0], -g[1], g[2]])
        assert np.isclose(bvecs[0, 1], -v[0] if det_sign > 0 else v[0])


def test_vendor_styles_match_dcm2niix_itself(tmp_path):
    """The GE and Canon logical-frame rule, checked against the dcm2niix binary (not against
    our own reading of it): both phase-encoding directions, four orientations, three patient
    positions; b-values exactly, directions within 1 degree. Philips private-only DWI with a
    trace image: the DWI equals dcm2niix's, the trace the last volume of its _ADC file."""
    from dicomml import conformance

    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    number = 0
    for orientation in ("axial", "sagittal"):  # Philips: private tags, patient frame, trace
        number += 1
        synth.write_series(tmp_path / "in" / f"philips_{orientation}", modality="MR",
                           shape=(5, 3, 8, 8), fourth_dim="philips_dwi",
                           orientation=orientation, seed=40 + number, series_number=number)
    for style in ("ge_dwi", "canon_dti"):
        for phase in ("ROW", "COL"):
            for orientation, position in (("axial", "HFS"), ("coronal", "FFS"),
                                          ("sagittal", "HFS"), ("oblique", "HFP")):
                number += 1
                synth.write_series(tmp_path / "in" / f"{style}_{phase}_{orientation}",
                                   modality="MR", shape=(6, 3, 8, 8), fourth_dim=style,
                                   orientation=orientation, patient_position=position,
                                   seed=40 + number, series_number=number,
                                   InPlanePhaseEncodingDirection=phase)
    verdicts = conformance.run_conformance(tmp_path / "in", work_dir=tmp_path / "d2n")
    assert len(verdicts) == 20  # 16 + 2 Philips DWI + their 2 trace images (dcm2niix _ADC)
    assert all(v.status == "match" for v in verdicts), \
        "\n".join(v.line() for v in verdicts if v.status != "match")
    assert sum(v.key.endswith("(derived)") for v in verdicts) == 2
    assert all(v.bvec_deg <= 1.0 for v in verdicts if not v.key.endswith("(derived)"))


# ------------------------------------------------------------------------------ real data
DWI = {
    "dcm_qa_ge/In/01_Ax_DWI_TENSOR_R2": "dcm_qa_ge/Ref/01_Ax_DWI_TENSOR_R2/"
                                        "1_Brain_Advanced_Sequences",
    "dcm_qa_canon/In/39000_SAG_DTI_PA-ALL_20d": "dcm_qa_canon/Ref/39000_SAG_DTI_PA-ALL_20d/"
                                                "39000_SAG_DTI_PA-ALL_20d",
    "dcm_qa_philips/In/Vanderbilt_2018/601_WIP_dti_ax": "dcm_qa_philips/Ref/Vanderbilt_2018/"
                                                        "601_WIP_dti_ax/601_WIP_dti_ax",
    "dcm_qa_decubitus/In/HFDL/3_ep2d_diff_mddw_20_p2": "dcm_qa_decubitus/Ref/HFDL/"
                                                       "3_ep2d_diff_mddw_20_p2",
}


@pytest.mark.parametrize("folder", sorted(DWI))
def test_convert_writes_bval_bvec_like_dcm2niix(shared_data, tmp_path, folder):
    out = tmp_path / "out"
    assert main(["convert", str(shared_data / folder), "-o", str(out), "--no-gzip"]) == 0
    (nifti,) = out.glob("*.nii")
    ours_b = np.loadtxt(nifti.with_suffix(".bval"))
    ref = shared_data / DWI[folder]
    ref_b = np.loadtxt(ref.with_suffix(".bval"))
    np.testing.assert_array_equal(ours_b, ref_b)
    ours = bvecs_to_ras(np.loadtxt(nifti.with_suffix(".bvec")), nib.load(nifti).affine)
    theirs = bvecs_to_ras(np.loadtxt(ref.with_suffix(".bvec")),
                          nib.load(ref.with_suffix(".nii")).affine)
    for index, b in enumerate(ref_b):
        if b > 0:
            assert _same_axis(ours[:, index], theirs[:, index], tol_deg=1.0), index
        else:
            assert np.allclose(ours[:, index], 0)


def test_ge_dwi_b0_files_without_standard_b_value(shared_data):
    """(0018,9087) is only on the b=1000 files: the b=0 volume's b-value comes from GE's
    (0043,1039), and no volume is refused as a duplicate."""
    vol = dicomml.load_series(shared_data / "dcm_qa_ge/In/01_Ax_DWI_TENSOR_R2")
    assert vol.shape == (7, 2, 256, 256)
    assert [v["b_value"] for v in vol.metadata["volumes"]] == [0.0] + [1000.0] * 6
    assert vol.metadata["volumes"][0]["gradient"] is None


# ------------------------------------------------------------------------------ item 1
def test_a_folder_of_one_uid_loads_whole_and_unstackable_parts_stay_apart(tmp_path):
    truth = synth.write_series(tmp_path / "t", modality="MR", shape=(3, 4, 8, 8), seed=12)
    assert dicomml.load_series(tmp_path / "t").shape == (3, 4, 8, 8)
    # the same UID with another matrix size: cannot stack, named with the reason
    synth.write_series(tmp_path / "t" / "other", modality="MR", shape=(4, 6, 6), seed=13,
                       series_uid=truth.series_uid, study_uid=truth.study_uid,
                       patient_id=truth.patient_id)
    with pytest.raises(MultipleSeriesError, match="matrix") as info:
        dicomml.load_series(tmp_path / "t")
    assert len(info.value.keys) == 4  # 3 temporal sub-series + the other matrix


def test_series_number_and_sop_class_split_a_reused_uid(tmp_path):
    a = synth.write_series(tmp_path, modality="MR", shape=(3, 8, 8), seed=14, series_number=5)
    synth.write_series(tmp_path / "b", modality="MR", shape=(3, 8, 8), seed=15, series_number=6,
                       series_uid=a.series_uid, study_uid=a.study_uid, patient_id=a.patient_id)
    cat = dicomml.scan(tmp_path, progress=False)
    assert sorted(cat.series["series_key"]) == [a.series_uid + "#s5", a.series_uid + "#s6"]
    assert set(cat.series["split_reason"]) == {"number"}
    with pytest.raises(MultipleSeriesError, match="number"):
        dicomml.load_series(tmp_path)
    assert dicomml.load_series(cat, a.series_uid + "#s5").shape == (3, 8, 8)


def test_dataset_one_sample_per_acquisition_or_per_volume(tmp_path):
    truth = synth.write_series(tmp_path / "d", modality="MR", shape=(3, 4, 8, 8), seed=16)
    whole = dicomml.DicomSeriesDataset(tmp_path / "d")
    assert len(whole) == 1
    sample = whole[0]
    assert sample["image"].shape == (3, 4, 8, 8)
    assert sample["provenance"]["volume_rule"] == "TemporalPositionIdentifier"
    assert sample["provenance"]["scaling"] == "modality_lut"
    assert sample["provenance"]["dicomml_version"] == dicomml.__version__
    assert len(sample["provenance"]["files"]) == 3
    each = dicomml.DicomSeriesDataset(tmp_path / "d", volumes="samples")
    assert len(each) == 3
    for index in range(3):
        got = each[index]
        assert got["image"].shape == (1, 4, 8, 8)
        assert got["provenance"]["volume_index"] == index
        np.testing.assert_allclose(got["image"][0].numpy(), truth.array[index], rtol=1e-6)


def test_an_incomplete_volume_is_a_missing_slice_or_dropped(tmp_path):
    from dicomml.errors import GeometryWarning, MissingSliceError

    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(3, 4, 8, 8), seed=17)
    (victim,) = [p for p, vs in zip(truth.paths, truth.meta["index_of_path"]) if vs == (1, 2)]
    victim.unlink()
    with pytest.raises(MissingSliceError, match="temporal") as info:
        dicomml.load_series(tmp_path / "s")
    assert "'2.0'" in str(info.value)  # the volume: Temporal Position Identifier 2
    with pytest.warns(GeometryWarning, match="dropped"):
        vol = dicomml.load_series(tmp_path / "s", policy={"missing": "warn"})
    assert vol.shape == (2, 4, 8, 8)
    np.testing.assert_allclose(vol.array, truth.array[[0, 2]], rtol=1e-6)
    assert any(p["action"] == "dropped volumes" for p in vol.metadata["provenance"]["policies"])


def test_diffusion_headers_read_at_two_positions_unless_they_disagree(tmp_path):
    """A DWI of thousands of files reads the headers of the first and last position only;
    when those disagree (here one file of the last position carries another direction) every
    file is read."""
    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(4, 5, 8, 8), seed=18,
                               fourth_dim="ge_dwi")
    vol = dicomml.load_series(tmp_path / "s")
    assert "first and last position" in vol.metadata["provenance"]["diffusion_rule"]
    (odd,) = [p for p, vs in zip(truth.paths, truth.meta["index_of_path"]) if vs == (2, 4)]
    ds = pydicom.dcmread(odd)
    ds.private_block(0x0019, "GEMS_ACQU_01")[0xBB].value = "0.6"
    ds.private_block(0x0019, "GEMS_ACQU_01")[0xBC].value = "0.8"
    ds.private_block(0x0019, "GEMS_ACQU_01")[0xBD].value = "0"
    ds.save_as(odd)
    vol = dicomml.load_series(tmp_path / "s")
    assert "diffusion_rule" not in vol.metadata["provenance"]
    for ours, theirs in zip([v["gradient"] for v in vol.metadata["volumes"]],
                            truth.meta["gradients"]):
        assert _same_axis(ours, theirs)  # volume values come from the first position


def test_ge_private_tags_stored_as_un_bytes():
    """Implicit VR files without a private dictionary give GE's elements as UN bytes."""
    ds = _header(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    ds.add_new((0x0043, 0x1039), "UN", b"1000\\8\\0\\0 ")
    ds.add_new((0x0019, 0x0010), "LO", "GEMS_ACQU_01")
    for element, text in ((0x10BB, b"0.6 "), (0x10BC, b"0.8 "), (0x10BD, b"0\0")):
        ds.add_new((0x0019, element), "UN", text)
    found = vendor_diffusion(ds)
    assert found.b_value == 1000.0
    assert _same_axis(found.gradient, (0.6, -0.8, 0.0))  # no phase encoding: along F_r, -F_c


def test_colour_and_grey_files_under_one_uid_are_split_with_a_reason(tmp_path):
    truth = synth.write_series(tmp_path / "s", modality="MR", shape=(3, 8, 8), seed=19,
                               bits_allocated=8, bits_stored=8)
    ds = pydicom.dcmread(truth.paths[0])
    grey = ds.pixel_array
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8).tobytes()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "s" / "colour.dcm")
    cat = dicomml.scan(tmp_path / "s", progress=False)
    assert sorted(cat.series["series_key"]) == [truth.series_uid + "#grey",
                                                truth.series_uid + "#rgb"]
    assert set(cat.series["split_reason"]) == {"colour"}
    with pytest.raises(MultipleSeriesError, match="colour"):
        dicomml.load_series(tmp_path / "s")
    vol = dicomml.load_series(cat, truth.series_uid + "#grey")
    np.testing.assert_allclose(vol.array, truth.array, rtol=1e-6)


def test_synth_4d_sop_instance_uids_are_unique(tmp_path):
    """(volume 1, slice 11) and (volume 11, slice 1) once shared a UID (and a file name)."""
    truth = synth.write_series(tmp_path, modality="MR", shape=(12, 12, 4, 4), seed=0)
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in truth.paths}
    assert len(uids) == len(truth.paths) == 144
