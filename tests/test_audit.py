"""The audit (dicomml.catalog.audit, ``dicomml audit``) on a synthetic folder with planted
identifying tags, burned-in annotations, broken geometry and a skipped file."""

from __future__ import annotations

import hashlib

import pydicom
import pytest

import dicomml
from dicomml.catalog.audit import IDENTIFYING
from dicomml.cli import main

PLANTED = {"PatientName": "Doe^Jane", "PatientBirthDate": "19700101",
           "InstitutionName": "General Hospital", "ReferringPhysicianName": "Who^Doctor",
           "OperatorsName": "Op^Erator"}


#: what dicomml.synth writes by default and the audit would list: removed everywhere, so that
#: only the planted values are found
STRIPPED = dict.fromkeys(("PatientName", "PatientBirthDate", "InstitutionName",
                          "ReferringPhysicianName", "StudyDate", "SeriesDate", "AcquisitionDate",
                          "ContentDate", "AccessionNumber"))


def _folder(root):
    common = dict(shape=(4, 8, 8), **STRIPPED)
    dicomml.synth.write_series(root / "ident", series_number=1, patient_id="P1",
                               **{**common, **PLANTED})
    dicomml.synth.write_series(root / "deid", series_number=2, seed=3, patient_id="P2",
                               PatientIdentityRemoved="YES",
                               DeidentificationMethod="dicomml test", **common)
    single = dict(common, shape=(1, 8, 8))
    dicomml.synth.write_series(root / "us", series_number=3, seed=4, patient_id="P3",
                               Modality="US", **single)
    dicomml.synth.write_series(root / "burned", series_number=4, seed=5, patient_id="P3",
                               Modality="SC", BurnedInAnnotation="YES", **single)
    dicomml.synth.write_series(root / "gap", series_number=5, seed=6, patient_id="P4",
                               slice_offsets=[0, 2, 4, 10], **common)
    for path in sorted((root / "ident").iterdir()):
        ds = pydicom.dcmread(path)
        ds.private_block(0x0011, "PLANTED CREATOR", create=True).add_new(0x01, "LO", "secret")
        ds.save_as(path)
    (root / "notes.txt").write_text("not dicom")


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit") / "data"
    _folder(root)
    before = _hashes(root)
    report = dicomml.scan(root, progress=False, workers=1).audit()
    return root, before, report


def _row(report, text):
    rows = report.findings[report.findings.finding.str.contains(text, regex=False)]
    assert len(rows) == 1, (text, report.findings.finding.tolist())
    return rows.iloc[0]


def test_each_planted_identifying_tag_is_listed(planted):
    _, _, report = planted
    for keyword in PLANTED:
        row = _row(report, f"identifying attribute {keyword} present")
        assert row.severity == "action"
        assert row["count"] == 1
    listed = report.findings.finding[report.findings.finding.str.startswith("identifying")]
    assert sorted(listed) == sorted(f"identifying attribute {k} present" for k in PLANTED)
    assert _row(report, "private tags present")["count"] == 1
    assert _row(report, "de-identification not declared")["count"] == 4
    assert _row(report, "de-identification declared")["count"] == 1
    assert set(PLANTED) <= set(IDENTIFYING)


def test_burned_in_geometry_and_skipped_files(planted):
    _, _, report = planted
    assert _row(report, "BurnedInAnnotation YES")["count"] == 1
    absent = _row(report, "BurnedInAnnotation absent")
    assert absent["count"] == 1 and "US" in absent.finding
    assert _row(report, "uneven slice spacing")["count"] == 1
    skipped = _row(report, "skipped files: NotDicomError")
    assert skipped["count"] == 1 and "notes.txt" in skipped.examples
    assert report.tables["modality"].set_index("Modality").series.to_dict() == \
        {"CT": 3, "SC": 1, "US": 1}
    assert report.counts["patients"] == 4 and report.counts["skipped"] == 1


def test_audit_modifies_nothing_and_the_cli_writes_a_page_with_plots(planted, tmp_path,
                                                                      capsys):
    root, before, _ = planted
    out = tmp_path / "report"
    assert main(["audit", str(root), "-o", str(out)]) == 0
    assert _hashes(root) == before
    page = (out / "audit.md").read_text()
    assert "identifying attribute PatientName present" in page
    assert "![modality](modality.png)" in page and (out / "modality.png").stat().st_size > 0
    assert "# dicomml audit" in capsys.readouterr().out


def test_audit_without_reading_files_reports_what_the_catalog_has(tmp_path):
    dicomml.synth.write_series(tmp_path / "a", shape=(2, 8, 8), PatientName="Doe^John")
    report = dicomml.Catalog.open(tmp_path / "a").audit(read_files=False)
    assert _row(report, "identifying attribute PatientName present")["count"] == 1
    assert _row(report, "files not read").severity == "info"
    assert not report.findings.finding.str.contains("private").any()
