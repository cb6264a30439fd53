"""``dicomml demo`` end to end: real files, the real catalog, loader and DataLoader workers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dicomml import cli, demo


def test_cli_demo_runs_every_step(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert cli.main(["demo", "--out", str(out), "--patients", "1", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    for step in ("[1/4] write", "[2/4] scan", "[3/4] load", "[4/4] iterate"):
        assert step in text
    assert "skipped" not in text
    assert "65 files, 4 series, 2 studies" in text
    assert "vs ground truth: max |value error| 0," in text
    assert re.search(r"epoch 2: 4 volumes, .* = [0-9.]+ volumes/s", text)
    assert len([p for p in out.rglob("*") if p.is_file()]) == 65


def test_run_demo_returns_what_it_printed(tmp_path):
    lines = []
    result = demo.run_demo(tmp_path / "corpus", n_patients=1, workers=0,
                           say=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert result.skipped == []
    assert len(result.corpus) == 4 and len(result.catalog.series) == 4
    assert len(result.catalog.errors) == 0
    np.testing.assert_array_equal(np.asarray(result.volume.array), result.truth.array)
    np.testing.assert_allclose(np.asarray(result.volume.affine), result.truth.affine,
                               atol=1e-6)
    assert result.truth.modality == "CT" and result.truth.transfer_syntax != "1.2.840.10008.1.2.1"
    assert result.volumes_per_second > 0
    assert set(result.seconds) == {"write", "scan", "load", "iterate", "total"}
    table = demo.series_table(result.catalog)
    assert table.count("DEMO00001") == 4 and "JPEGLSLossless" in table
    assert any(line.startswith("done in") for line in lines)


def test_default_folder_is_temporary_and_removed():
    result = demo.run_demo(n_patients=1, workers=0, say=lambda *a, **k: None)
    assert result.skipped == [] and not result.folder.exists()


def test_refuses_a_non_empty_out_folder(tmp_path, capsys):
    keep = tmp_path / "user_file.txt"
    keep.write_text("mine")
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["user_file.txt"]
    assert keep.read_text() == "mine"


def test_a_missing_module_is_reported_as_skipped(tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr(demo, "_optional", lambda module, name: None)
    result = demo.run_demo(tmp_path / "corpus", n_patients=1, workers=0,
                           say=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert result.catalog is None and result.skipped == ["scan", "load", "iterate"]
    assert "[2/4] scan     skipped: dicomml.catalog is not available" in lines


def test_optional_skips_absent_modules_but_not_broken_ones(tmp_path, monkeypatch):
    assert demo._optional("dicomml.not_a_module", "x") is None
    assert demo._optional("dicomml.synth", "not_a_name") is None
    (tmp_path / "demo_probe_broken.py").write_text("import surely_not_installed_pkg_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="surely_not_installed_pkg_xyz"):
        demo._optional("demo_probe_broken", "x")
