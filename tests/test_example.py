"""The training example runs end to end (its own process, real DataLoader workers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "train_minimal.py"


def test_train_minimal_runs_and_reports_losses(tmp_path_factory):
    # the repository first on the path, so the checkout is tested even when not installed
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # its own temp folder (short: DataLoader workers bind AF_UNIX sockets under it): what the
    # example and torch put there (the corpus, torchinductor_<user>) is pytest's to remove
    tmp = tmp_path_factory.mktemp("example")
    result = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "6", "--workers", "2"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", result.stdout)]
    assert len(losses) == 6
    assert all(v == v and v < 100 for v in losses)  # finite numbers
    assert "labels joined on SeriesInstanceUID: 8/8 series labelled" in result.stdout
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("dicomml")]  # corpus removed
