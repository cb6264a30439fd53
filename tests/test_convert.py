"""``dicomml convert``: NIfTI + JSON sidecar, one series or all, through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dicomml import synth
from dicomml.cli import main

nib = pytest.importorskip("nibabel")


def _sidecar_of(nifti):
    return nifti.with_name(nifti.name.replace(".nii.gz", ".json"))


def _canonical(image):
    image = nib.as_closest_canonical(image)
    return image.affine, np.asarray(image.get_fdata())


def test_convert_folder_writes_every_series(tmp_path):
    src = tmp_path / "in"
    a = synth.write_series(src, shape=(4, 8, 8), seed=1, series_number=1)
    b = synth.write_series(src, shape=(5, 6, 6), seed=2, series_number=2, orientation="sagittal",
                           study_uid=a.study_uid, patient_id=a.patient_id)
    before = sorted(p.name for p in src.iterdir())
    out = tmp_path / "out"
    assert main(["convert", str(src), "-o", str(out)]) == 0
    assert sorted(p.name for p in src.iterdir()) == before  # nothing written next to inputs
    niftis = sorted(out.glob("*.nii.gz"))
    assert len(niftis) == 2
    for truth in (a, b):
        (path,) = [p for p in niftis if json.loads(_sidecar_of(p).read_text())[
            "SeriesInstanceUID"] == truth.series_uid]
        sidecar = json.loads(_sidecar_of(path).read_text())
        assert sidecar["SeriesInstanceUID"] == truth.series_uid
        assert sidecar["findings"] == []
        np.testing.assert_allclose(sidecar["affine_lps"], truth.affine, atol=1e-6)
        assert sidecar["shape"] == list(truth.array.shape)
        # world-space check of the written NIfTI against the ground truth
        ras = np.diag([-1.0, -1, 1, 1]) @ truth.affine[:, [2, 1, 0, 3]]
        expected = nib.Nifti1Image(truth.array.transpose(2, 1, 0).astype(np.float32), ras)
        got_affine, got = _canonical(nib.load(path))
        want_affine, want = _canonical(expected)
        np.testing.assert_allclose(got_affine, want_affine, atol=1e-4)
        np.testing.assert_allclose(got, want, atol=1e-3)


def test_convert_one_series_with_findings_in_the_sidecar(tmp_path, capsys):
    src = tmp_path / "in"
    truth = synth.write_series(src, shape=(6, 8, 8), gantry_tilt=10.0, seed=3)
    out = tmp_path / "out"
    with pytest.warns(Warning):
        code = main(["convert", str(src), "--series", truth.series_uid, "-o", str(out),
                     "--no-gzip"])
    assert code == 0
    (path,) = out.glob("*.nii")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert [f["kind"] for f in sidecar["findings"]] == ["tilt"]
    assert sidecar["sheared"] is True


def test_convert_reports_a_failing_series_and_goes_on(tmp_path, capsys):
    src = tmp_path / "in"
    good = synth.write_series(src / "good", shape=(4, 8, 8), seed=4, series_number=1)
    synth.write_series(src / "bad", shape=(5, 8, 8), seed=5, series_number=2,
                       slice_offsets=[0, 1, 2, 4, 5], study_uid=good.study_uid,
                       patient_id=good.patient_id)
    out = tmp_path / "out"
    assert main(["convert", str(src), "-o", str(out)]) == 1
    assert "skipped" in capsys.readouterr().err
    assert len(list(out.glob("*.nii.gz"))) == 1
    assert main(["convert", str(src), "-o", str(out / "r"), "--resample"]) == 0
    assert len(list((out / "r").glob("*.nii.gz"))) == 2


@pytest.mark.parametrize("saved", ["cat.parquet", "partitioned/"])
def test_convert_from_a_saved_catalog(tmp_path, saved, monkeypatch):
    """A catalog file, or a partitioned catalog folder (which the command used to scan as a
    folder of DICOM files, finding none), is loaded, never rescanned."""
    from dicomml.catalog import scan, scanner

    src = tmp_path / "in"
    truth = synth.write_series(src, shape=(3, 8, 8), seed=6)
    catalog = f"{tmp_path / saved.rstrip('/')}{'/' if saved.endswith('/') else ''}"
    scan(src, catalog=catalog, progress=False)

    def no_scan(*args, **kwargs):
        raise AssertionError("a saved catalog was scanned")

    monkeypatch.setattr(scanner, "scan", no_scan)
    out = tmp_path / "out"
    assert main(["convert", catalog, "-o", str(out)]) == 0
    (path,) = out.glob("*.nii.gz")
    assert json.loads(_sidecar_of(path).read_text())["SeriesInstanceUID"] == truth.series_uid
