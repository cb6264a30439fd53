"""DicomImageDataset and the catalog's 2D columns (issue 22 item 2), checked against pydicom
(values, frames, catalog values) and against the files' own headers (spacing, orientation)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from test_decode_pydicom import JPEG_LOSSY_TOLERANCE

import dicomml
from dicomml.catalog.header import parse_file, row_as_dict
from dicomml.dataset.images import orientation_flips, pixel_spacing
from dicomml.synth import write_projection

ROWS, COLUMNS = 40, 32


def _image(seed: int, frames: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, (frames, ROWS, COLUMNS)).astype(np.uint16)


def _write(folder, name: str, stored: np.ndarray, *, modality: str = "MG",
           photometric: str = "MONOCHROME2", orientation=("A", "R"), laterality="L",
           view=None, syntax=ExplicitVRLittleEndian, patient="p1", **tags) -> Dataset:
    """A projection image (or multi-frame object) with the 2D attributes set."""
    attributes = {"PhotometricInterpretation": photometric}
    if orientation is not None:
        attributes["PatientOrientation"] = list(orientation)
    if laterality is not None:
        attributes["ImageLaterality"] = laterality
    if view is not None:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = view
        attributes["ViewCodeSequence"] = [item]
    uid = generate_uid()
    return write_projection(os.path.join(folder, name), stored, syntax, modality=modality,
                            patient_id=patient, StudyInstanceUID=uid, SeriesInstanceUID=uid,
                            **{**attributes, **tags})


# --- catalog columns ------------------------------------------------------------------------
NEW_COLUMNS = ("ImageLaterality", "Laterality", "ViewPosition", "PresentationIntentType",
               "PatientOrientation", "ImagerPixelSpacing", "NominalScannedPixelSpacing",
               "PixelSpacingCalibrationType", "EstimatedRadiographicMagnificationFactor",
               "BurnedInAnnotation", "BodyPartExamined")


def _expected(ds: Dataset, keyword: str):
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if keyword in ("ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        return [float(v) for v in value]
    if keyword == "EstimatedRadiographicMagnificationFactor":
        return float(value)
    return "\\".join(value) if isinstance(value, pydicom.multival.MultiValue) else str(value)


@pytest.mark.parametrize("name", ["6154", "CT_small.dcm", "examples_ybr_color.dcm",
                                  "SC_rgb_rle_2frame.dcm"])
def test_2d_columns_equal_pydicom_on_its_test_files(name):
    path = get_testdata_file(name)
    ds, row = pydicom.dcmread(path, stop_before_pixels=True), row_as_dict(parse_file(path))
    for keyword in NEW_COLUMNS:
        assert row[keyword] == _expected(ds, keyword), keyword


def test_2d_columns_of_a_mammogram(tmp_path):
    ds = _write(tmp_path, "mg.dcm", _image(0), view=("R-10242", "SRT", "cranio-caudal"),
                ViewPosition="CC", PresentationIntentType="FOR PRESENTATION",
                ImagerPixelSpacing=[0.07, 0.065], EstimatedRadiographicMagnificationFactor=1.08,
                PixelSpacingCalibrationType="GEOMETRY", BurnedInAnnotation="NO",
                BodyPartExamined="BREAST", Laterality="L")
    row = row_as_dict(parse_file(str(tmp_path / "mg.dcm")))
    for keyword in NEW_COLUMNS:
        assert row[keyword] == _expected(ds, keyword), keyword
    assert row["ViewCodeMeaning"] == ds.ViewCodeSequence[0].CodeMeaning == "cranio-caudal"
    assert row["header_source"] == "top"  # a view code is no functional group
    cat = dicomml.scan(tmp_path, progress=False)
    assert cat.instances["ViewCodeMeaning"].tolist() == ["cranio-caudal"]
    assert list(cat.instances["ImagerPixelSpacing"].iloc[0]) == [0.07, 0.065]


def test_code_meaning_outside_the_view_code_is_not_a_view(tmp_path):
    ds = _write(tmp_path, "x.dcm", _image(1))
    other = Dataset()
    other.CodeValue, other.CodingSchemeDesignator, other.CodeMeaning = "T-04000", "SRT", "breast"
    ds.AnatomicRegionSequence = [other]
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    assert row_as_dict(parse_file(str(tmp_path / "x.dcm")))["ViewCodeMeaning"] is None


# --- the rules ------------------------------------------------------------------------------
@pytest.mark.parametrize(("tags", "plane", "expected", "rule"), [
    ({"PixelSpacing": [0.5, 0.6]}, "patient", [0.5, 0.6], "PixelSpacing"),
    ({"ImagerPixelSpacing": [0.1, 0.1]}, "patient", [0.1, 0.1], "ImagerPixelSpacing (detector)"),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.1, 0.1],
      "EstimatedRadiographicMagnificationFactor": 1.25}, "patient", [0.08, 0.08],
     "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"),
    ({"ImagerPixelSpacing": [0.1, 0.1], "EstimatedRadiographicMagnificationFactor": 1.25},
     "detector", [0.1, 0.1], "ImagerPixelSpacing (detector)"),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.09, 0.09],
      "EstimatedRadiographicMagnificationFactor": 1.25}, "patient", [0.09, 0.09],
     "PixelSpacing (calibrated)"),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.1, 0.1],
      "PixelSpacingCalibrationType": "FIDUCIAL"}, "patient", [0.1, 0.1],
     "PixelSpacing (calibrated)"),
    ({"NominalScannedPixelSpacing": [0.2, 0.2]}, "patient", [0.2, 0.2],
     "NominalScannedPixelSpacing"),
    ({}, "patient", [1.0, 1.0], "none (pixel units)"),
])
def test_pixel_spacing_rules(tags, plane, expected, rule):
    spacing, taken = pixel_spacing(tags, plane)
    assert taken == rule
    np.testing.assert_allclose(spacing, expected)


@pytest.mark.parametrize("tags, expected", [
    ({"ImagerPixelSpacing": [0.1, 0.1], "EstimatedRadiographicMagnificationFactor": 1.25},
     [0.08, 0.08]),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.1, 0.1],
      "EstimatedRadiographicMagnificationFactor": 1.25}, [0.08, 0.08]),
    ({"ImagerPixelSpacing": [0.1, 0.1], "PixelSpacing": [0.09, 0.07]}, [0.09, 0.07]),
])
def test_load_series_and_the_image_dataset_agree_on_spacing(tmp_path, tags, expected):
    """One spacing rule (dicomml.geometry.spacing) for a projection image: load_series took
    Pixel Spacing, else Imager Pixel Spacing as it is (0.1 mm for the first two cases) while
    DicomImageDataset undid the magnification (0.08 mm)."""
    import dicomml

    _write(tmp_path, "dx.dcm", _image(1), modality="DX", **tags)
    volume = dicomml.load_series(tmp_path / "dx.dcm")
    np.testing.assert_allclose(volume.spacing[1:], expected)
    sample = dicomml.DicomImageDataset(dicomml.scan(tmp_path, progress=False))[0]
    np.testing.assert_allclose(sample["spacing"], expected)


def test_orientation_flips():
    assert orientation_flips("P\\L", "A") == (["columns"], "A\\L", [])
    assert orientation_flips("A\\R", "A") == ([], "A\\R", [])
    assert orientation_flips("R\\H", "LF") == (["columns", "rows"], "L\\F", [])
    assert orientation_flips("A\\FR", "L") == ([], "A\\FR", ["columns"])
    assert orientation_flips(None, "A") == ([], "", ["columns"])
    assert orientation_flips("P\\F", "*H") == (["rows"], "P\\H", [])
    with pytest.raises(ValueError, match="orient letters"):
        orientation_flips("A\\R", "X")


# --- the dataset ----------------------------------------------------------------------------
@pytest.fixture
def mammograms(tmp_path):
    """A right and a left CC mammogram (chest wall on opposite sides), a MONOCHROME1 twin of
    the left one, and a 6-frame RLE object."""
    folder = tmp_path / "data"
    folder.mkdir()
    stored = _image(2)
    common = dict(ImagerPixelSpacing=[0.1, 0.1], PixelSpacing=[0.1, 0.1],
                  EstimatedRadiographicMagnificationFactor=1.25, RescaleSlope=1,
                  RescaleIntercept=0)
    _write(folder, "lcc.dcm", stored, orientation=("A", "R"), laterality="L", patient="p1",
           **common)
    _write(folder, "rcc.dcm", _image(3), orientation=("P", "L"), laterality="R", patient="p2",
           **common)
    _write(folder, "lcc_mono1.dcm", 4095 - stored, photometric="MONOCHROME1",
           orientation=("A", "R"), laterality="L", patient="p3", **common)
    _write(folder, "dbt.dcm", _image(4, frames=6), syntax=RLELossless, orientation=("A", "R"),
           patient="p4", RescaleSlope=2, RescaleIntercept=-10, **{
               k: v for k, v in common.items() if not k.startswith("Rescale")})
    return folder


def _by_file(ds) -> dict:
    out = {}
    for i in range(len(ds)):
        sample = ds[i]
        path = ds._table.iloc[int(ds._rows[i])]["path"]
        out.setdefault(os.path.basename(path), []).append(sample)
    return out


def test_samples_equal_pydicom_modality_values(mammograms):
    ds = dicomml.DicomImageDataset(mammograms)
    assert len(ds) == 3 + 6
    samples = _by_file(ds)
    for name in ("lcc.dcm", "rcc.dcm"):
        ref = pydicom.dcmread(mammograms / name)
        sample = samples[name][0]
        assert sample["image"].shape == (1, ROWS, COLUMNS) and sample["image"].dtype == torch.float32
        np.testing.assert_array_equal(sample["image"][0].numpy(),
                                      apply_modality_lut(ref.pixel_array, ref))
        assert sample["SOPInstanceUID"] == ref.SOPInstanceUID
        np.testing.assert_allclose(sample["spacing"].numpy(), [0.08, 0.08])
        assert sample["provenance"]["spacing"].startswith("ImagerPixelSpacing /")
    dbt = pydicom.dcmread(mammograms / "dbt.dcm")
    reference = apply_modality_lut(dbt.pixel_array, dbt)
    assert [s["frame"] for s in samples["dbt.dcm"]] == list(range(6))
    for sample in samples["dbt.dcm"]:
        np.testing.assert_allclose(sample["image"][0].numpy(), reference[sample["frame"]])
        assert sample["provenance"]["affine"] == "pixel grid (multi-frame object)"


def test_monochrome1_twin_gives_the_same_presentation_values(mammograms):
    samples = _by_file(dicomml.DicomImageDataset(mammograms, values="presentation"))
    np.testing.assert_allclose(samples["lcc.dcm"][0]["image"],
                               samples["lcc_mono1.dcm"][0]["image"], atol=1e-6)
    assert samples["lcc_mono1.dcm"][0]["provenance"]["values"]["stage"] == "presentation"
    modality = _by_file(dicomml.DicomImageDataset(mammograms))  # the modality stage: as stored
    ref = pydicom.dcmread(mammograms / "lcc_mono1.dcm")
    np.testing.assert_array_equal(modality["lcc_mono1.dcm"][0]["image"][0].numpy(),
                                  apply_modality_lut(ref.pixel_array, ref))
    stored = _by_file(dicomml.DicomImageDataset(mammograms, values="stored"))
    ref = pydicom.dcmread(mammograms / "lcc_mono1.dcm").pixel_array
    np.testing.assert_array_equal(stored["lcc_mono1.dcm"][0]["image"][0].numpy(), ref)


def test_orient_puts_the_chest_wall_on_one_side(mammograms):
    plain = _by_file(dicomml.DicomImageDataset(mammograms))
    oriented = _by_file(dicomml.DicomImageDataset(mammograms, orient="A"))
    right = oriented["rcc.dcm"][0]
    assert right["provenance"]["flip"] == ["columns"] and right["orientation"] == "A\\L"
    assert right["laterality"] == "R"
    np.testing.assert_array_equal(right["image"].numpy(),
                                  np.flip(plain["rcc.dcm"][0]["image"].numpy(), axis=-1))
    left = oriented["lcc.dcm"][0]
    assert left["provenance"]["flip"] == [] and left["orientation"] == "A\\R"
    np.testing.assert_array_equal(left["image"], plain["lcc.dcm"][0]["image"])
    # the affine follows the flip: pixel (r, c) of the flipped image is (r, C-1-c) of the file
    affine, original = right["affine"].numpy(), plain["rcc.dcm"][0]["affine"].numpy()
    np.testing.assert_allclose(affine @ [0, 5, 3, 1], original @ [0, 5, COLUMNS - 1 - 3, 1])


def test_frame_range_and_channels(mammograms):
    ds = dicomml.DicomImageDataset(mammograms, frames=(2, 5), filter={"PatientID": "p4"})
    assert [ds[i]["frame"] for i in range(len(ds))] == [2, 3, 4]
    dbt = pydicom.dcmread(mammograms / "dbt.dcm")
    reference = apply_modality_lut(dbt.pixel_array, dbt)
    stacked = dicomml.DicomImageDataset(mammograms, frames=slice(1, 4), multiframe="channels",
                                        filter={"PatientID": "p4"})
    assert len(stacked) == 1
    sample = stacked[0]
    assert sample["frame"] == [1, 2, 3] and sample["image"].shape == (3, ROWS, COLUMNS)
    np.testing.assert_allclose(sample["image"].numpy(), reference[1:4])
    assert len(dicomml.DicomImageDataset(mammograms, multiframe="skip")) == 3


def test_labels_joined_by_sop_instance_uid(mammograms, tmp_path):
    uids = {name: pydicom.dcmread(mammograms / name).SOPInstanceUID
            for name in ("lcc.dcm", "rcc.dcm")}
    csv = tmp_path / "labels.csv"
    pd.DataFrame({"SOPInstanceUID": [uids["lcc.dcm"], uids["rcc.dcm"], "1.2.3"],
                  "label": [1, 0, 1]}).to_csv(csv, index=False)
    ds = dicomml.DicomImageDataset(mammograms, labels=csv)
    assert ds.label_report.on == "SOPInstanceUID" and len(ds) == 2
    got = {s["SOPInstanceUID"]: int(s["label"]) for s in (ds[0], ds[1])}
    assert got == {uids["lcc.dcm"]: 1, uids["rcc.dcm"]: 0}
    by_patient = dicomml.DicomImageDataset(mammograms, labels={"p4": 7}, on="PatientID")
    assert len(by_patient) == 6 and all(int(by_patient[i]["label"]) == 7 for i in range(6))


def test_dataloader_workers_cache_and_transforms(mammograms, tmp_path):
    from dicomml import transforms as T

    cache = tmp_path / "cache"
    chain = T.Compose([T.ResizeTo((1, 20, 16)), T.RandomFlip(axes=(2,))])
    ds = dicomml.DicomImageDataset(mammograms, cache_dir=cache, transform=chain, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2,
                                         collate_fn=dicomml.collate)
    first = [b["image"] for b in loader]
    assert sum(len(b) for b in first) == len(ds)
    assert first[0].shape[1:] == (1, 20, 16)
    assert len(list(cache.rglob("*.json"))) == len(ds)
    again = [b["image"] for b in loader]  # from the cache, same draws (seeded)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    batch = next(iter(loader))
    assert batch["spacing"].shape == (4, 2)
    np.testing.assert_allclose(batch["spacing"][0].numpy(), [0.08 * 40 / 20, 0.08 * 32 / 16])


def test_a_broken_image_is_skipped_and_named(mammograms):
    broken = mammograms / "rcc.dcm"
    data = broken.read_bytes()
    ds = dicomml.DicomImageDataset(mammograms, on_error="skip")
    broken.write_bytes(data[:len(data) - 200])  # cut short after the scan
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2,
                                         collate_fn=dicomml.collate)
    batches = list(loader)
    failed = [f for b in batches for f in b.get("failed", [])]
    assert len(failed) == 1 and failed[0]["file"].endswith("rcc.dcm")
    assert sum(len(b["image"]) for b in batches if "image" in b) == len(ds) - 1
    assert len(ds.failures()) == 1


def test_pydicom_cr_and_colour_files(tmp_path):
    """Real files: pydicom's CR (Imager Pixel Spacing) and a colour ultrasound cine."""
    for name in ("6154", "examples_ybr_color.dcm"):
        shutil.copy(get_testdata_file(name), tmp_path / (name + ".dcm"))
    ds = dicomml.DicomImageDataset(tmp_path, frames=(0, 2))
    samples = _by_file(ds)
    cr = pydicom.dcmread(get_testdata_file("6154"))
    sample = samples["6154.dcm"][0]
    assert cr.PhotometricInterpretation == "MONOCHROME1"  # modality values: not inverted
    np.testing.assert_allclose(sample["image"][0].numpy(), apply_modality_lut(cr.pixel_array, cr),
                               rtol=0, atol=1e-3)
    np.testing.assert_allclose(sample["spacing"].numpy(), [float(v) for v in cr.ImagerPixelSpacing])
    us = samples["examples_ybr_color.dcm.dcm"]
    assert [s["frame"] for s in us] == [0, 1] and us[0]["image"].shape[0] == 3
    ref = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")).pixel_array[1]
    # lossy JPEG: the decoder pydicom picks depends on what is installed (the same bound as
    # test_decode_pydicom's)
    assert np.abs(us[1]["image"].numpy() - np.moveaxis(ref, -1, 0)).max() <= JPEG_LOSSY_TOLERANCE


def test_single_frame_slices_keep_their_lps_affine_and_values(tmp_path):
    """Each slice of a synthetic oblique CT series as an image: its affine and values equal
    the writer's ground truth for that slice."""
    truth = dicomml.synth.write_series(tmp_path, shape=(4, 12, 10), orientation="oblique")
    ds = dicomml.DicomImageDataset(tmp_path)
    assert len(ds) == 4
    for i in range(len(ds)):
        sample = ds[i]
        slices = [k for k in range(4)
                  if np.allclose(truth.affine @ [k, 0, 0, 1], sample["affine"].numpy()[:, 3])]
        assert len(slices) == 1 and sample["provenance"]["affine"] == "LPS"
        k = slices[0]
        np.testing.assert_allclose(sample["affine"].numpy()[:, 1:3], truth.affine[:, 1:3],
                                   atol=1e-4)
        np.testing.assert_allclose(sample["image"][0].numpy(), truth.array[k], atol=1e-3)


def test_presentation_window_and_padding_pass_through(tmp_path):
    """values="presentation" and window= reach decode.stages as read_pixels' do; the padding
    mask follows the orientation flip."""
    stored = _image(8)
    stored[0, :, :3] = 0  # padding along the left edge
    _write(tmp_path, "w.dcm", stored, orientation=("P", "L"), WindowCenter=[1500, 2000],
           WindowWidth=[1000, 3000], PixelPaddingValue=0, RescaleSlope=1, RescaleIntercept=0)
    path = str(tmp_path / "w.dcm")
    for window in (None, 1, (1800.0, 600.0)):
        sample = dicomml.DicomImageDataset(tmp_path, values="presentation", window=window)[0]
        expected = dicomml.read_pixels(path, values="presentation", window=window)
        np.testing.assert_array_equal(sample["image"].numpy(), expected)
    flipped = dicomml.DicomImageDataset(tmp_path, values="presentation", orient="A")[0]
    mask = flipped["padding_mask"]
    assert mask.shape == (1, ROWS, COLUMNS) and mask.dtype == torch.bool
    expected_mask = np.flip(stored[0] == 0, axis=-1)
    np.testing.assert_array_equal(mask[0].numpy(), expected_mask)
