"""Every series in ../shared/data against dcm2niix, through ``dicomml.conformance``.

dcm2niix runs once per test session into a temporary folder; every series dicomml finds must
match its dcm2niix output (shape, the 8 corner voxel centres within 0.05 mm after
``nibabel.as_closest_canonical``, voxels within 1e-3 of the range, b-values exactly and
directions within 1 degree up to sign) or be listed in :data:`ALLOWLIST` with the reason and
the rule of the standard, each entry pinned by its own test below.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dicomml import conformance

nib = pytest.importorskip("nibabel")

#: (folder relative to ../shared/data, verdict) -> (reason, rule of the standard). Each entry is
#: pinned by the test named in its reason.
ALLOWLIST: dict[tuple[str, str], tuple[str, str]] = {
    ("dcm_qa_philips_enh/In/enh", "mismatch"): (
        "1903: the same 6 volumes in another order. Its Dimension Index Sequence lists Stack ID, "
        "In-Stack Position, Temporal Position Index (0020,9128), then the private label type "
        "(2005,1429); dicomml orders an enhanced object's volumes by the Dimension Index Values "
        "with the first item slowest (temporal 1-3, control/label within each), dcm2niix sorts "
        "frames with the last Dimension Index Value most significant (compareTDCMdim in its "
        "nii_dicom.cpp), giving control 1-3 then label 1-3 "
        "(test_philips_asl_volumes_are_a_permutation, tests/test_enhanced_volume_order.py)",
        "PS3.3 Section 7.5.2 Dimension Organization (CP-567): the first Item of the Dimension "
        "Index Sequence shall be the slowest varying index"),
}


#: deliberate differences the tool flags on files outside ../shared/data (pydicom's shipped
#: colour files, each converted alone: several share one Series Instance UID):
#: file -> (verdict, reason, rule of the standard), each pinned by the test named in its reason
OTHER_ALLOWLIST: dict[str, tuple[str, str, str]] = {
    "examples_palette.dcm": (
        "mismatch",
        "PALETTE COLOR: dicomml looks every index up in the Red/Green/Blue Palette Color "
        "Lookup Tables and returns RGB (rows, columns, 3); dcm2niix writes the stored indices "
        "as grey ('PALETTE COLOR not supported'), so only the shape differs and our colours "
        "are the tables applied to its values (test_palette_colour_is_the_lut_of_dcm2niix_indices)",
        "PS3.3 C.7.6.3.1.5 Palette Color Lookup Table Descriptor / Data: the pixel value is an "
        "index into the three tables, which give the displayed colour"),
    "SC_rgb_rle_32bit.dcm": (
        "mismatch",
        "RGB with 32-bit samples: dicomml keeps the three samples as stored (uint32 for "
        "dtype=None); dcm2niix makes RGB24 of 8-bit samples only and writes one int32 value "
        "per pixel here, none of the three samples "
        "(test_wide_rgb_keeps_its_three_samples)",
        "PS3.3 C.7.6.3.1.2 Photometric Interpretation RGB: red, green and blue image planes; "
        "C.7.6.3.1.1 Samples per Pixel 3; Bits Allocated as the file states"),
    "SC_rgb_rle_16bit.dcm": (
        "no-reference",
        "RGB with 16-bit samples: dcm2niix refuses it ('Unsupported DICOM bit-depth 16 with 3 "
        "samples per pixel'); dicomml returns the three samples as stored "
        "(test_wide_rgb_keeps_its_three_samples)",
        "PS3.3 C.7.6.3.1.2 Photometric Interpretation RGB; C.7.6.3.1.1 Samples per Pixel 3"),
    "SC_rgb_rle.dcm": (
        "mismatch",
        "a Secondary Capture without patient geometry: both sides place the pixels with a "
        "made-up affine (dicomml: voxel 0 at the origin, 1 mm steps, metadata['geometry'] = "
        "'none'; dcm2niix: its own centring), so the corners differ while every RGB voxel is "
        "equal (test_placeholder_geometry_differs_only_in_the_affine)",
        "PS3.3 A.8.1 SC Image IOD: no Image Plane Module, so the image has no position or "
        "orientation in the patient"),
}


@pytest.fixture(scope="session")
def other_verdicts(tmp_path_factory):
    """{file name: (its verdicts, its folder)}: each allowlisted pydicom file alone."""
    from pydicom.data import get_testdata_file

    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    found = {}
    for name in OTHER_ALLOWLIST:
        folder = tmp_path_factory.mktemp("colour") / name.removesuffix(".dcm")
        folder.mkdir()
        shutil.copy(get_testdata_file(name), folder / name)
        found[name] = (conformance.run_conformance(
            folder, work_dir=tmp_path_factory.mktemp("dcm2niix")), folder)
    return found


def test_other_folders_flag_only_the_allowlisted_differences(other_verdicts):
    for name, (status, _, _) in OTHER_ALLOWLIST.items():
        verdicts, _ = other_verdicts[name]
        assert [v.status for v in verdicts] == [status], (name, [v.line() for v in verdicts])


def _dicom_order(reference) -> np.ndarray:
    """dcm2niix's 2D NIfTI (columns, rows flipped, 1) back to DICOM (rows, columns)."""
    data = np.asarray(nib.load(reference).dataobj)
    return np.ascontiguousarray(data[:, ::-1, 0].T)


def test_palette_colour_is_the_lut_of_dcm2niix_indices(other_verdicts):
    from pydicom import dcmread
    from pydicom.pixels.processing import apply_color_lut

    import dicomml

    [verdict], folder = other_verdicts["examples_palette.dcm"]
    assert verdict.reference_shape == [800, 350, 1] and verdict.shape == [800, 350, 1, 1, 3]
    header = dcmread(folder / "examples_palette.dcm")
    indices = _dicom_order(verdict.reference)
    np.testing.assert_array_equal(indices, header.pixel_array)  # dcm2niix: the indices
    ours = dicomml.load_series(folder, dtype=None)
    assert ours.is_colour
    np.testing.assert_array_equal(ours.array[0], apply_color_lut(indices, header))


@pytest.mark.parametrize("name", ["SC_rgb_rle_32bit.dcm", "SC_rgb_rle_16bit.dcm"])
def test_wide_rgb_keeps_its_three_samples(other_verdicts, name):
    from pydicom import dcmread

    import dicomml

    [verdict], folder = other_verdicts[name]
    header = dcmread(folder / name)
    ours = dicomml.load_series(folder, dtype=None)
    assert ours.array.dtype == header.pixel_array.dtype and ours.shape == (1, 100, 100, 3)
    np.testing.assert_array_equal(ours.array[0], header.pixel_array)
    if verdict.reference is not None:  # 32-bit: one int32 value per pixel, not RGB
        reference = nib.load(verdict.reference)
        assert reference.shape == (100, 100, 1) and reference.get_data_dtype() == np.int32
        grey = _dicom_order(verdict.reference).view(np.uint32)
        assert not any(np.array_equal(grey, header.pixel_array[..., c]) for c in range(3))


def test_placeholder_geometry_differs_only_in_the_affine(other_verdicts):
    import dicomml

    [verdict], folder = other_verdicts["SC_rgb_rle.dcm"]
    assert verdict.shape == verdict.reference_shape and verdict.voxel_error == 0.0
    assert verdict.corner_mm > conformance.CORNER_MM
    ours = dicomml.load_series(folder, dtype=None)
    assert ours.metadata["geometry"] == "none"
    data = np.asarray(nib.load(verdict.reference).dataobj)
    rgb = np.stack([data["R"], data["G"], data["B"]], axis=-1)[:, ::-1, 0]
    np.testing.assert_array_equal(ours.array[0], np.transpose(rgb, (1, 0, 2)))


@pytest.fixture(scope="session")
def verdicts(shared_data, tmp_path_factory):
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    work = tmp_path_factory.mktemp("dcm2niix")
    return conformance.run_conformance(shared_data, work_dir=work)


def _by_folder(verdicts, folder):
    found = [v for v in verdicts if v.folder == folder]
    assert found, f"no verdict for {folder}"
    return found


def test_every_series_matches_or_is_allowlisted(verdicts):
    bad = [v.line() for v in verdicts if not v.ok and (v.folder, v.status) not in ALLOWLIST]
    assert not bad, "\n".join(bad)
    stale = [entry for entry in ALLOWLIST
             if not any((v.folder, v.status) == entry for v in verdicts)]
    assert not stale, f"allowlist entries no longer needed: {stale}"


def test_summary_reaches_96_percent(verdicts):
    """27 units on the shared data: every one matches but 1903's volume order (allowlisted)."""
    line = conformance.summary_line(verdicts)
    units = [v for v in verdicts if v.status != "reference-only"]
    good = sum(v.ok for v in units)
    assert good / len(units) >= 0.96, line
    assert line.startswith(f"{good} of {len(units)} series match dcm2niix")
    assert not [v for v in verdicts if v.status in ("error", "no-reference", "reference-only")]


def test_philips_series_match_with_the_private_scale(verdicts, shared_data):
    """The Philips classic series match dcm2niix's values, which apply the private scale
    slope (2005,100E) (``metadata["scaling"]``, issue 16 item 8)."""
    import dicomml

    for folder in ("dcm_qa_philips/In/Magdeburg_2014/fmri",
                   "dcm_qa_philips/In/Vanderbilt_2018/601_WIP_dti_ax"):
        assert {v.status for v in _by_folder(verdicts, folder)} == {"match"}
    vol = dicomml.load_series(shared_data / "dcm_qa_philips/In/Magdeburg_2014/fmri")
    assert vol.metadata["scaling"]["applied"] == "philips_float"


def test_philips_trace_is_its_own_series(verdicts, shared_data):
    """The Philips DWI holds 16 volumes (b=0 and 15 directions, b-values and directions equal
    to dcm2niix's); the isotropic trace image (b=2000, no direction, (2001,1004) = I) is left
    out and equals the last volume of dcm2niix's _ADC file."""
    import dicomml

    folder = "dcm_qa_philips/In/Vanderbilt_2018/601_WIP_dti_ax"
    dwi, trace = sorted(_by_folder(verdicts, folder), key=lambda v: v.key)
    assert trace.key.endswith("(derived)") and trace.reference.endswith("_ADC.nii")
    assert "equals volume 16" in " ".join(trace.details)
    assert dwi.bvec_deg is not None and dwi.bvec_deg <= conformance.BVEC_DEG
    vol = dicomml.load_series(shared_data / folder)
    assert vol.shape == (16, 40, 80, 80)
    left_out = vol.metadata["provenance"]["left_out"]
    assert len(left_out["files"]) == 40 and left_out["b_values"] == [2000.0]
    assert [v["b_value"] for v in vol.metadata["volumes"]] == [0.0] + [2000.0] * 15
    assert vol.metadata["volumes"][0]["gradient"] is None


def test_philips_asl_volumes_are_a_permutation(verdicts, shared_data):
    """Pins the 1903 entry: geometry equal, and each of our volumes equals one of dcm2niix's:
    ours (t1 control, t1 label, t2 control, ...) = dcm2niix's volumes [0, 3, 1, 4, 2, 5];
    ours follow the file's Dimension Index Sequence (temporal item before the label item),
    dcm2niix's the reverse."""
    import dicomml

    bad = [v for v in _by_folder(verdicts, "dcm_qa_philips_enh/In/enh") if not v.ok]
    assert len(bad) == 1 and "1903" in bad[0].reference
    assert bad[0].shape == bad[0].reference_shape and bad[0].corner_mm <= conformance.CORNER_MM
    vol = dicomml.load_series(shared_data / "dcm_qa_philips_enh/In/enh/1903_WIP_SOURCE_-_3DpCASL.dcm",
                              dtype=None)
    ours = np.asarray(nib.as_closest_canonical(vol.to_nifti()).dataobj)
    ref = nib.load(bad[0].reference)
    theirs = np.round(nib.as_closest_canonical(ref).get_fdata() / ref.dataobj.slope)
    order = [int(np.argmin([np.abs(ours[..., i] - theirs[..., j]).max() for j in range(6)]))
             for i in range(6)]
    assert order == [0, 3, 1, 4, 2, 5]
    for i, j in enumerate(order):
        np.testing.assert_array_equal(ours[..., i], theirs[..., j])
    assert [v["temporal"] for v in vol.metadata["volumes"]] == [1, 1, 2, 2, 3, 3]
    assert [v["volume_key"] for v in vol.metadata["volumes"]] == [
        [1, 0], [1, 1], [2, 0], [2, 1], [3, 0], [3, 1]]
    assert vol.metadata["provenance"]["volume_rule"] == "DimensionIndexValues"
    import pydicom

    header = pydicom.dcmread(shared_data / "dcm_qa_philips_enh/In/enh/1903_WIP_SOURCE_-_3DpCASL.dcm",
                             stop_before_pixels=True)
    pointers = [int(item.DimensionIndexPointer) for item in header.DimensionIndexSequence]
    assert pointers == [0x00209056, 0x00209057, 0x00209128, 0x20051429]


def test_cli_and_benchmark_script_give_verdicts_and_a_summary(tmp_path, capsys):
    """``dicomml conformance DIR`` and ``benchmarks/conformance.py DIR``: one line per series,
    a summary line, exit code 0 when everything matches, JSON on request, nothing written
    next to the input."""
    import importlib.util
    import json
    from pathlib import Path

    from dicomml import synth
    from dicomml.cli import main

    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    synth.write_series(tmp_path / "in" / "ct", modality="CT", shape=(5, 8, 8), seed=1,
                       series_number=1)
    synth.write_series(tmp_path / "in" / "dwi", modality="MR", shape=(4, 3, 8, 8), seed=2,
                       series_number=2, fourth_dim="ge_dwi")
    before = sorted(p.name for p in (tmp_path / "in").rglob("*"))
    assert main(["conformance", str(tmp_path / "in"), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 of 2 series match dcm2niix (100.0%): 2 match"
    assert sum(line.startswith("match") for line in out) == 2
    assert [v["status"] for v in json.loads((tmp_path / "v.json").read_text())] == ["match"] * 2
    assert sorted(p.name for p in (tmp_path / "in").rglob("*")) == before
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "conformance.py"
    spec = importlib.util.spec_from_file_location("conformance_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tmp_path / "in"), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == out[-1]
