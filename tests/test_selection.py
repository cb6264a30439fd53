"""Acquisition filters, the localizer rule and duplicates (dicomml.catalog.selection), against
hand-computed answers on /work/shared/data and synthetic studies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import dicomml
from dicomml.catalog.selection import (
    LOCALIZER_RULE,
    localizers,
    orientation_class,
    slice_spacings,
)

SAG = [0, 1, 0, 0, 0, -1]


def _scan(folder):
    return dicomml.scan(folder, progress=False, workers=1)


@pytest.fixture(scope="module")
def decubitus(shared_data):
    return _scan(shared_data / "dcm_qa_decubitus" / "In")


def _descriptions(cat):
    return sorted(cat.series.SeriesDescription)


def test_filters_on_the_decubitus_set(decubitus):
    # README: per position a 2D T1 sagittal series (256x256) and a DWI mosaic (128x128 tiles)
    t1, dwi = ["t1_fl2d_sag"] * 4, ["ep2d_diff_mddw_20_p2"] * 4
    assert _descriptions(decubitus.filter(orientation="sagittal")) == t1
    assert _descriptions(decubitus.filter(image_type="MOSAIC")) == dwi
    assert _descriptions(decubitus.filter(exclude_image_type="MOSAIC")) == t1
    assert _descriptions(decubitus.filter(matrix=(256, 256))) == t1
    assert _descriptions(decubitus.filter(matrix=[(128, 128)])) == dwi
    assert _descriptions(decubitus.filter(spacing=(1.0, 1.1))) == t1
    assert _descriptions(decubitus.filter(description="DIFF")) == dwi
    assert len(decubitus.filter(thickness=(4, 4))) == 8
    assert len(decubitus.filter(thickness=(None, 3.9))) == 0
    assert _descriptions(decubitus.filter(slice_spacing=(4.7, 4.9))) == t1
    assert _descriptions(decubitus.filter(image_type=["original", "primary"],
                                          min_slices=30)) == t1


def test_slice_spacing_agrees_with_the_header_tag(shared_data):
    for name in ("dcm_qa_decubitus", "dcm_qa_philips", "dcm_qa_ge", "dcm_qa_canon"):
        cat = _scan(shared_data / name / "In")
        spacing = slice_spacings(cat)
        for row in cat.series.itertuples():
            if np.isfinite(row.SpacingBetweenSlices):
                assert spacing[row.series_key] == pytest.approx(row.SpacingBetweenSlices,
                                                                abs=0.01), (name, row)


def test_orientation_tolerance_is_named_and_used(shared_data):
    canon = _scan(shared_data / "dcm_qa_canon" / "In")  # sagittal angulated about 3 axes
    assert len(canon.filter(orientation="oblique")) == 1
    assert len(canon.filter(orientation="sagittal", orientation_tolerance=30)) == 1
    assert len(canon.filter(orientation="sagittal")) == 0
    philips = _scan(shared_data / "dcm_qa_philips" / "In")
    # the EPI has 6 mm slices 8 mm apart (a gap): the slice spacing is not the thickness
    assert len(philips.filter(slice_spacing=(7.9, 8.1), thickness=(5.9, 6.1))) == 3
    with pytest.raises(ValueError, match="not among"):
        canon.filter(orientation="transverse")
    with pytest.raises(ValueError, match="range"):
        canon.filter(thickness=3)


def test_orientation_class_against_hand_computed_angles():
    tilt = np.radians(20)
    iop = [1, 0, 0, 0, np.cos(tilt), np.sin(tilt)]  # axial tilted 20 degrees about L
    assert orientation_class(iop) == ("oblique", pytest.approx(20))
    assert orientation_class(iop, 25) == ("axial", pytest.approx(20))
    assert orientation_class(SAG, angle=False) == "sagittal"
    assert orientation_class([1, 0, 0, 1, 0, 0]) [0] == "unknown"
    assert orientation_class(None)[0] == "unknown"


def _study(folder):
    """A CT study: an axial volume, a LOCALIZER topogram, an unlabelled sagittal single-image
    scout, a three-plane survey (one UID, three orientations, one slice each) and a single
    axial image parallel to the volume (not a localizer)."""
    common = dict(patient_id="P1", study_uid="1.2.3.4", shuffle=False)
    dicomml.synth.write_series(folder / "ax", shape=(12, 16, 16), series_number=2,
                               series_description="abdomen", **common)
    dicomml.synth.write_series(folder / "topo", shape=(1, 16, 16), orientation="coronal",
                               series_number=1, series_description="topogram",
                               ImageType="ORIGINAL\\PRIMARY\\LOCALIZER", **common)
    dicomml.synth.write_series(folder / "scout", shape=(1, 16, 16), orientation=SAG,
                               series_number=3, series_description="scout", **common)
    for plane in ("axial", "coronal", "sagittal"):
        dicomml.synth.write_series(folder / f"survey_{plane}", shape=(1, 16, 16),
                                   orientation=plane, series_uid="1.2.3.4.99", series_number=4,
                                   series_description="survey", **common)
    dicomml.synth.write_series(folder / "single", shape=(1, 16, 16), series_number=5,
                               series_description="single axial", **common)


def test_exclude_localizers_by_the_named_rule(tmp_path):
    _study(tmp_path / "study")
    cat = _scan(tmp_path / "study")
    found = localizers(cat)
    reasons = dict(zip(found.SeriesDescription + ":" + found.series_key, found.reason))
    assert sorted(found.SeriesDescription) == ["scout", "survey", "survey", "survey",
                                               "topogram"]
    assert [r for k, r in reasons.items() if k.startswith("topogram")] == \
        ["ImageType LOCALIZER"]
    assert [r for k, r in reasons.items() if k.startswith("scout")] == \
        ["single image 90 degrees from the study plane"]
    kept = cat.exclude_localizers()
    assert _descriptions(kept) == ["abdomen", "single axial"]
    assert "LOCALIZER" in LOCALIZER_RULE and "three-plane" in LOCALIZER_RULE
    assert len(cat) == 7  # nothing modified


def test_duplicates_files_series_and_pixels(tmp_path):
    data = tmp_path / "data"
    dicomml.synth.write_series(data / "a", shape=(3, 8, 8), patient_id="P1", seed=1)
    shutil.copytree(data / "a", data / "copy_of_a")  # the same files in two folders
    # the same pixels under new UIDs (seed and geometry equal, UIDs differ)
    dicomml.synth.write_series(data / "b", shape=(3, 8, 8), patient_id="P1", seed=1,
                               series_uid="1.2.826.0.1.3680043.8.498.77")
    cat = _scan(data)
    found = cat.duplicates()
    files = found[found.kind == "file"]
    assert len(files) == 3
    assert all("/a/" in k and "/copy_of_a/" in d for k, d in zip(files.keep, files.duplicate))
    assert "pixels" not in set(found.kind)
    with_pixels = cat.duplicates(pixels=True)
    pixel_rows = with_pixels[with_pixels.kind == "pixels"]
    assert len(pixel_rows) == 3 and all("/b/" in d or "/b/" in k for k, d in
                                        zip(pixel_rows.keep, pixel_rows.duplicate))
    clean = cat.drop_duplicates()
    assert len(clean.instances) == 6 and len(cat.instances) == 9
    assert len(cat.drop_duplicates(pixels=True).instances) == 3


def test_series_with_identical_instance_sets(tmp_path):
    data = tmp_path / "data"
    dicomml.synth.write_series(data / "a", shape=(2, 8, 8), series_uid="1.2.3.1", seed=2)
    import pydicom

    for path in sorted((data / "a").iterdir()):  # a re-exported copy: new series UID only
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.3.2"
        (data / "b").mkdir(exist_ok=True)
        ds.save_as(data / "b" / path.name)
    cat = _scan(data)
    found = cat.duplicates()
    assert found[found.kind == "series"][["keep", "duplicate"]].values.tolist() == \
        [["1.2.3.1", "1.2.3.2"]]
    clean = cat.drop_duplicates()
    assert list(clean.series.series_key) == ["1.2.3.1"] and len(clean.instances) == 2


def test_contrast_reads_contrast_bolus_agent(tmp_path):
    dicomml.synth.write_series(tmp_path / "pre", shape=(2, 8, 8), series_number=1,
                               series_description="pre")
    dicomml.synth.write_series(tmp_path / "post", shape=(2, 8, 8), series_number=2, seed=1,
                               series_description="post", ContrastBolusAgent="IODINE")
    dicomml.synth.write_series(tmp_path / "empty", shape=(2, 8, 8), series_number=3, seed=2,
                               series_description="empty agent", ContrastBolusAgent="")
    cat = _scan(tmp_path)
    assert _descriptions(cat.filter(contrast=True)) == ["post"]
    assert _descriptions(cat.filter(contrast=False)) == ["empty agent", "pre"]


def test_query_over_acquisition_values(decubitus):
    t1 = ["t1_fl2d_sag"] * 4
    assert _descriptions(decubitus.query("orientation == 'sagittal' and n_slices > 30")) == t1
    assert _descriptions(decubitus.query("slice_spacing > 5 and row_spacing > 1.5")) == \
        ["ep2d_diff_mddw_20_p2"] * 4
    assert len(decubitus.query("obliquity_deg > 10")) == 3  # the tilted DWI positions
    assert len(decubitus.query("orientation == 'oblique'", orientation_tolerance=40)) == 0
    assert len(decubitus.query("localizer")) == 0
