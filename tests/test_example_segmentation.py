"""The segmentation example runs end to end (its own process, real DataLoader workers) and
its loss goes down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "train_segmentation.py"


def test_train_segmentation_loss_goes_down(tmp_path_factory):
    pytest.importorskip("highdicom")
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    tmp = tmp_path_factory.mktemp("example")
    result = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "20", "--workers", "2"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", result.stdout)]
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert "label objects: 4" in result.stdout
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("dicomml")]
