"""Execute the notebooks headless (nbclient, kernel python3) from a temporary working folder
and check what they show; nothing may be written into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _repo_state() -> tuple:
    """The repository's top-level names and every notebook file's (size, mtime): a notebook
    run must change neither (it works in a temporary folder)."""
    notebooks = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in NOTEBOOKS.iterdir()}
    return sorted(os.listdir(REPO)), notebooks


def _execute(name: str, workdir: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run a notebook with cwd = ``workdir`` and TMPDIR inside it (the demo data, caches)."""
    tmp = workdir / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


def _outputs(notebook, kind: str) -> list:
    return [out for cell in notebook.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if kind in out.get("data", {})]


def _text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def repo_state_before():
    return _repo_state()


def test_01_explore_catalog(tmp_path, monkeypatch, repo_state_before):
    notebook = _execute("01_explore_catalog.ipynb", tmp_path, monkeypatch)
    errors = [o for c in notebook.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = _text(notebook)
    assert "94 files, 4 series, 1 errors" in text  # 40 + 10 + 24 + 20 slices; notes.dcm
    assert "NotDicomError" in text
    assert "MissingSliceError" in text and "resampled: (11, 64, 64)" in text
    # orthogonal views (CT + 2 MR), montage, histogram, slice positions, show_series
    assert len(_outputs(notebook, "image/png")) == 7
    assert list((tmp_path / "tmp").iterdir()), "the demo archive went to the temp folder"
    assert _repo_state() == repo_state_before


def test_02_dataset_and_transforms(tmp_path, monkeypatch, repo_state_before):
    notebook = _execute("02_dataset_and_transforms.ipynb", tmp_path, monkeypatch)
    text = _text(notebook)
    assert "(1, 24, 48, 48)" in text  # prepared sample shape
    assert "epoch 0: 6 samples" in text and "epoch 1: 6 samples" in text
    assert len(_outputs(notebook, "image/png")) == 1  # the batch preview
    assert _repo_state() == repo_state_before
