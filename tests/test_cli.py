"""The ``dicomml`` command line, run as a user runs it (``python -m dicomml ...`` in a child
process): help texts, exit codes, summaries and output file names, on empty, non-DICOM,
synthetic and real folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dicomml import synth
from dicomml.cli import _COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
#: reStructuredText / Sphinx markup that must not reach a terminal
RST = re.compile(r"``|:(?:func|meth|class|mod|data|attr|exc|ref):|`[^`\s][^`]*`")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "dicomml", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)


def _subparsers() -> dict:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return {"": parser, **action.choices}


@pytest.mark.parametrize("command", ["", *_COMMANDS])
def test_help_is_plain_text_in_complete_sentences(command):
    result = _run(*([command] if command else []), "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    assert not RST.search(result.stdout), RST.search(result.stdout)
    parser = _subparsers()[command]
    for text in (parser.description, parser.epilog):
        if text is None:
            continue
        flat = " ".join(text.split())
        assert not RST.search(flat), flat
        assert flat.endswith("."), f"{command or 'dicomml'}: ends mid-sentence: {flat!r}"
        assert flat[0].isupper() or flat.startswith("dicomml "), flat
        assert " ".join(flat.split()[-3:]) in " ".join(result.stdout.split())  # shown whole
    assert parser.description, f"{command}: no description"
    for action in parser._actions:
        assert not RST.search(action.help or ""), (command, action.help)


def test_every_command_is_listed_in_the_top_level_help():
    out = _run("--help", timeout=120).stdout
    for command in _COMMANDS:
        assert re.search(rf"^\s+{command}\s", out, re.M), command


# --- empty, non-DICOM and unreadable folders ------------------------------------------------
def _not_dicom_folder(root: Path) -> Path:
    folder = root / "notdicom"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "scan.dcm").write_bytes(b"\x00" * 300)  # a preamble without DICM
    return folder


def test_scan_of_an_empty_folder_says_so_and_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _run("scan", str(tmp_path / "empty"), "-o", str(tmp_path / "c.parquet"),
                  "--no-progress")
    assert result.returncode == 1
    assert "no DICOM files were indexed" in result.stdout
    assert "no DICOM file found" in result.stderr


def test_scan_of_a_non_dicom_folder_names_the_files(tmp_path):
    folder = _not_dicom_folder(tmp_path)
    result = _run("scan", str(folder), "-o", str(tmp_path / "c.parquet"), "--no-progress")
    assert result.returncode == 1
    assert "NotDicomError" in result.stdout and "notes.txt" in result.stdout
    assert "2 file(s) not DICOM or unreadable" in result.stderr


@pytest.mark.parametrize("kind", ["empty", "notdicom"])
def test_convert_of_a_folder_without_images_writes_nothing_and_fails(tmp_path, kind):
    folder = _not_dicom_folder(tmp_path) if kind == "notdicom" else tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    out = tmp_path / "out"
    result = _run("convert", str(folder), "-o", str(out), "--no-progress")
    assert result.returncode == 1
    assert "0 series written" in result.stdout
    assert "nothing to convert: no DICOM image series" in result.stdout
    if kind == "notdicom":
        assert "2 file(s) not indexed: 2 NotDicomError" in result.stdout
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="file permissions do not bind root")
def test_convert_of_an_unreadable_folder_fails_with_a_summary(tmp_path):
    folder = tmp_path / "locked"
    synth.write_series(folder, shape=(2, 4, 4), seed=1)
    for path in folder.iterdir():
        path.chmod(0)
    try:
        result = _run("convert", str(folder), "-o", str(tmp_path / "out"), "--no-progress")
    finally:
        for path in folder.iterdir():
            path.chmod(0o644)
    assert result.returncode == 1
    assert "not indexed" in result.stdout and "nothing to convert" in result.stdout


def test_convert_of_a_missing_folder_is_a_usage_error(tmp_path):
    result = _run("convert", str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "does not exist" in result.stderr


# --- real folders -----------------------------------------------------------------------------
def test_convert_names_files_by_series_number_and_description(tmp_path):
    src = tmp_path / "in"
    a = synth.write_series(src / "a", shape=(3, 8, 8), seed=1, series_number=3,
                           series_description="T1 axial/post")
    synth.write_series(src / "b", shape=(3, 8, 8), seed=2, series_number=7,
                       series_description="FLAIR", study_uid=a.study_uid,
                       patient_id=a.patient_id)
    out = tmp_path / "out"
    result = _run("convert", str(src), "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "3_T1_axial_post.json", "3_T1_axial_post.nii.gz", "7_FLAIR.json", "7_FLAIR.nii.gz"]
    assert f"2 series written to {out}" in result.stdout
    assert json.loads((out / "3_T1_axial_post.json").read_text())[
        "SeriesInstanceUID"] == a.series_uid


def test_convert_appends_the_series_key_only_on_a_name_collision(tmp_path):
    src = tmp_path / "in"
    a = synth.write_series(src / "a", shape=(3, 8, 8), seed=1, series_number=2,
                           series_description="DWI")
    b = synth.write_series(src / "b", shape=(3, 8, 8), seed=2, series_number=2,
                           series_description="DWI", study_uid=a.study_uid,
                           patient_id=a.patient_id)
    c = synth.write_series(src / "c", shape=(3, 8, 8), seed=3, series_number=5,
                           series_description="T2", study_uid=a.study_uid,
                           patient_id=a.patient_id)
    out = tmp_path / "out"
    assert _run("convert", str(src), "-o", str(out), "--no-progress").returncode == 0
    names = sorted(p.name for p in out.glob("*.nii.gz"))
    assert names == sorted([f"2_DWI_{a.series_uid}.nii.gz", f"2_DWI_{b.series_uid}.nii.gz",
                            "5_T2.nii.gz"])
    assert c.series_uid not in " ".join(names)


def test_convert_prints_each_skipped_series_once_with_its_reason(tmp_path):
    src = tmp_path / "in"
    good = synth.write_series(src / "good", shape=(4, 8, 8), seed=4, series_number=1,
                              series_description="ok")
    bad = synth.write_series(src / "bad", shape=(5, 8, 8), seed=5, series_number=2,
                             series_description="gap", slice_offsets=[0, 1, 2, 4, 5],
                             study_uid=good.study_uid, patient_id=good.patient_id)
    result = _run("convert", str(src), "-o", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 1
    assert result.stderr.count(bad.series_uid) == 1, result.stderr
    assert "skipped 2_gap" in result.stderr and "MissingSliceError" in result.stderr
    assert "1 series written" in result.stdout and "1 skipped" in result.stdout
    assert str(tmp_path / "out" / "1_ok.nii.gz") in result.stdout


def test_convert_shows_a_progress_bar_on_stderr_only(tmp_path):
    src = tmp_path / "in"
    synth.write_series(src, shape=(3, 8, 8), seed=1, series_description="x")
    env_cols = _run("convert", str(src), "-o", str(tmp_path / "out"))
    assert env_cols.returncode == 0
    assert "convert" in env_cols.stderr and "series" in env_cols.stderr  # the tqdm bar
    assert "it/s" not in env_cols.stdout and "series/s" not in env_cols.stdout


def test_convert_real_mosaic_and_philips_folders(shared_data, tmp_path):
    """Names as dcm2niix's (``%s_%p``) for the Siemens folder; Philips raw-data objects are
    ignored, said so, and do not make the run fail; the mosaic's sidecar reports the image
    matrix (128) and keeps the mosaic size (640) apart."""
    hfs = shared_data / "dcm_qa_decubitus" / "In" / "HFS"
    out = tmp_path / "hfs"
    result = _run("convert", str(hfs), "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    reference = sorted(p.stem for p in (shared_data / "dcm_qa_decubitus" / "Ref" / "HFS")
                       .glob("*.nii"))
    assert sorted(p.name[:-len(".nii.gz")] for p in out.glob("*.nii.gz")) == reference
    dwi = json.loads((out / "4_ep2d_diff_mddw_20_p2.json").read_text())
    assert (dwi["Rows"], dwi["Columns"]) == (128, 128)
    assert (dwi["StoredRows"], dwi["StoredColumns"]) == (640, 640)
    assert dwi["shape"][-2:] == [128, 128]

    enh = shared_data / "dcm_qa_philips_enh" / "In" / "enh"
    result = _run("convert", str(enh), "-o", str(tmp_path / "enh"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "ignored 2 object(s) that are not image series: 2 raw data" in result.stdout
    # %s_%p as dcm2niix names them (Ref/enh), less the "_real" suffix dcm2niix adds for
    # ImageType REAL: the protocol name, not the series description ("3DpCASL")
    assert sorted(p.name for p in (tmp_path / "enh").glob("*.nii.gz")) == [
        "1901_WIP_3DpCASL.nii.gz", "1903_WIP_SOURCE_-_3DpCASL.nii.gz"]
    ge = shared_data / "dcm_qa_ge" / "In" / "01_Ax_DWI_TENSOR_R2"
    result = _run("convert", str(ge), "-o", str(tmp_path / "ge"), "--no-progress")
    assert result.returncode == 0, result.stderr
    reference = shared_data / "dcm_qa_ge" / "Ref" / "01_Ax_DWI_TENSOR_R2"
    assert [p.name[:-len(".nii.gz")] for p in (tmp_path / "ge").glob("*.nii.gz")] == \
        [p.stem for p in reference.glob("*.nii")]


def test_scan_and_info_list_objects_that_are_not_images(shared_data, tmp_path):
    enh = shared_data / "dcm_qa_philips_enh" / "In" / "enh"
    catalog = tmp_path / "c.parquet"
    result = _run("scan", str(enh), "-o", str(catalog), "--no-progress")
    assert result.returncode == 0, result.stderr
    info = _run("info", str(catalog))
    assert info.returncode == 0
    for text in (result.stdout, info.stdout):
        assert "2 series, 2 other objects" in text
        assert "other objects (not image series" in text
        assert text.count("Raw Data Storage") == 2
