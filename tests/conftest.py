"""Shared test fixtures.

Owned by the integrator; add fixtures in your own test modules unless several modules need them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DICOMML_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """Hypothesis keeps caches (examples, constants, charmap) under its home folder,
    ``./.hypothesis`` by default, i.e. inside the repository: tests write nothing there, so the
    session points it at a temporary folder and removes that folder at the end."""
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:
        return
    config._dicomml_hypothesis_home = tempfile.mkdtemp(prefix="dicomml_hypothesis_")
    set_hypothesis_home_dir(config._dicomml_hypothesis_home)


def pytest_unconfigure(config):
    home = getattr(config, "_dicomml_hypothesis_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real public DICOM series with dcm2niix reference conversions."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):  # CI lays ../shared beside the clone: its absence is a failure
            pytest.fail(f"shared data not found at {SHARED_DATA} (CI=true)")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def run_dcm2niix():
    """The dcm2niix reference converter as ``run(source, out_dir, name="out") -> out_dir``:
    uncompressed NIfTI, no JSON sidecar, files named ``name*.nii``. Skips without dcm2niix."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")

    def run(source, out_dir, name: str = "out") -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True)
        subprocess.run([exe, "-b", "n", "-z", "n", "-f", name, "-o", str(out_dir), str(source)],
                       check=True, capture_output=True, timeout=60)
        return out_dir

    return run
