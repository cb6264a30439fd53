"""Shared test fixtures.

Owned by the integrator; add fixtures in your own test modules unless several modules need them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DICOMML_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real public DICOM series with dcm2niix reference conversions."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):  # CI lays ../shared beside the clone: its absence is a failure
            pytest.fail(f"shared data not found at {SHARED_DATA} (CI=true)")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
