"""Execute the notebooks headless (nbclient, kernel python3) on the demo corpus and on real
MR / 4D folders of ``../shared/data``, and check what they show. A notebook writes nothing into
the repository or next to the data, and leaves nothing in the temp folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPLORE, DATASET = "01_explore_catalog.ipynb", "02_dataset_and_transforms.ipynb"
MR_ONLY = "dcm_qa_ge/In/SliceTimingMPh"  # GE multi-phase fMRI: MR only, 10 phases
FOUR_D = "dcm_qa_philips/In/Magdeburg_2014/fmri"  # Philips fMRI: Temporal Position 1-3


def _repo_state() -> tuple:
    """The repository's top-level names and every notebook file's (size, mtime): a notebook
    run must change neither (it works in a temporary folder)."""
    notebooks = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in NOTEBOOKS.iterdir()}
    return sorted(os.listdir(REPO)), notebooks


def _tree_state(folder: Path) -> dict:
    """Every entry under ``folder`` with its size and mtime: nothing may be written there."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _execute(name: str, folder: Path | None, tmp_path_factory, monkeypatch):
    """Run a notebook on ``folder`` (None: its demo corpus) from a new working folder, with a
    new TMPDIR (short: DataLoader workers bind AF_UNIX sockets, at most 108 bytes, under it).
    Returns the executed notebook and that TMPDIR."""
    workdir, tmp = tmp_path_factory.mktemp("nbwork"), tmp_path_factory.mktemp("nbtmp")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]))
    if folder is None:
        monkeypatch.delenv("DICOMML_NOTEBOOK_FOLDER", raising=False)
    else:
        monkeypatch.setenv("DICOMML_NOTEBOOK_FOLDER", str(folder))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError on the first cell that fails
    assert not list(workdir.iterdir()), "the notebook wrote into its working folder"
    return notebook, tmp


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


def _left_in(tmp: Path) -> list[str]:
    """What the notebook left in its temp folder (the kernel's own ``ipykernel_*`` cell files
    are Jupyter's, not the notebook's)."""
    return sorted(p.name for p in tmp.iterdir() if not p.name.startswith("ipykernel_"))


@pytest.fixture(scope="module")
def repo_state_before():
    return _repo_state()


@pytest.fixture
def shared_folder(shared_data):
    def pick(relative: str) -> Path:
        folder = shared_data / relative
        if not folder.is_dir():
            pytest.fail(f"{folder} is missing from the shared data")
        return folder
    return pick


def test_notebooks_are_committed_without_outputs():
    for name in (EXPLORE, DATASET):
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert "parameters" in code[0].metadata.get("tags", []), name  # papermill-style
        assert "DICOMML_NOTEBOOK_FOLDER" in code[0].source, name


def test_01_on_the_demo_corpus(tmp_path_factory, monkeypatch, repo_state_before):
    notebook, tmp = _execute(EXPLORE, None, tmp_path_factory, monkeypatch)
    text = _text(notebook)
    # demo corpus (65 files) + a 4D MR series (3 x 12) + a CT with a missing slice (10); notes.dcm
    assert "111 files" in text and "1 errors" in text and "NotDicomError" in text
    assert "modalities: ['CT', 'MR']" in text
    assert "CT CT chest axial: 24 x 64 x 64" in text  # CT first, shown with the HU window
    assert "MR 4D, 3 time points: 3 x 12 x 48 x 48" in text and "3 volumes" in text
    # the gapped series fails to load in the gallery: reported, and the notebook goes on
    assert re.search(r"not loaded: \S+: MissingSliceError", text)
    assert "resampled: (11, 48, 48)" in text
    # one series (views, montage, histogram), 3 more 3D series, 3 volumes of the 4D series,
    # slice positions, show_series
    assert len(_outputs(notebook, "image/png")) == 11
    assert _left_in(tmp) == [], "the demo corpus was not removed"
    assert _repo_state() == repo_state_before


@pytest.mark.parametrize("relative", [MR_ONLY, FOUR_D])
def test_01_on_real_mr_and_4d_folders(relative, shared_folder, tmp_path_factory, monkeypatch,
                                      repo_state_before):
    folder = shared_folder(relative)
    before = _tree_state(folder)
    notebook, tmp = _execute(EXPLORE, folder, tmp_path_factory, monkeypatch)
    text = _text(notebook)
    assert "modalities: ['MR']" in text  # no CT: nothing filtered to an empty table
    volumes = re.findall(r"MR [^:\n]*: (\d+) x \d+ x \d+ x \d+, spacing", text)
    expected = {MR_ONLY: "10", FOUR_D: "3"}[relative]  # the 4D series loads whole
    assert volumes and set(volumes) == {expected}
    assert f"{expected} volumes" in text  # drawn volume by volume
    assert len(_outputs(notebook, "image/png")) >= 6
    assert _tree_state(folder) == before
    assert _left_in(tmp) == []
    assert _repo_state() == repo_state_before


def test_02_on_the_demo_corpus(tmp_path_factory, monkeypatch, repo_state_before):
    notebook, tmp = _execute(DATASET, None, tmp_path_factory, monkeypatch)
    text = _text(notebook)
    assert re.search(r"left out: \S+: MissingSliceError", text)
    assert "9 of 10 series prepared; channels: [1, 3]" in text  # 3D, and the 4D MR
    assert "(1, 32, 64, 64)" in text  # a prepared sample
    assert "CT after Window" in text and "MR after ClipNormalize" in text
    assert "epoch 0: 9 samples" in text and "epoch 1: 9 samples" in text
    assert len(_outputs(notebook, "image/png")) == 2  # the batch preview, the 4D volumes
    assert _left_in(tmp) == [], "the cache or the demo corpus was not removed"
    assert _repo_state() == repo_state_before


@pytest.mark.parametrize("relative", [FOUR_D])  # MR only and 4D (run time: one folder here)
def test_02_on_real_mr_and_4d_folders(relative, shared_folder, tmp_path_factory, monkeypatch,
                                      repo_state_before):
    folder = shared_folder(relative)
    before = _tree_state(folder)
    notebook, tmp = _execute(DATASET, folder, tmp_path_factory, monkeypatch)
    text = _text(notebook)
    prepared = re.search(r"(\d+) of (\d+) series prepared", text)
    assert prepared and prepared[1] == prepared[2] and int(prepared[1]) > 0
    n = prepared[1]
    assert f"epoch 0: {n} samples" in text and f"epoch 1: {n} samples" in text
    # MR by its percentiles: the 99th maps to 1, so about 1% of voxels there (Window(40, 400)
    # puts every value above 240 at 1: 13% of the Philips fMRI voxels, its whole bright head)
    at_one = re.search(r"MR after ClipNormalize: median [\d.]+, ([\d.]+)% of voxels at 1", text)
    assert at_one and float(at_one[1]) <= 2.0
    assert len(_outputs(notebook, "image/png")) >= 1
    assert _tree_state(folder) == before
    assert _left_in(tmp) == []
    assert _repo_state() == repo_state_before
