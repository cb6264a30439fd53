"""Optional extras: every import of a package that only an extra installs goes through
``dicomml._optional.require``, whose ImportError names the extra to install.

The messages are checked in a fresh interpreter where the package cannot be imported
(``sys.modules[name] = None`` is how Python marks a module unimportable), so each test sees
exactly what a user without the extra sees.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dicomml"
#: top-level module -> the extra that installs it (pyproject.toml [project.optional-dependencies])
OPTIONAL = {"highdicom": "seg", "nibabel": "nifti", "SimpleITK": "labels",
            "matplotlib": "viz", "monai": "monai", "torchio": "torchio"}
#: plain imports of optional packages that are deliberate, with the reason
SOFT = {
    ("catalog/audit.py", "matplotlib"): "the audit report's charts are skipped without it",
}


def _plain_imports():
    """(file relative to dicomml/, top-level module) of every import statement of an
    optional package outside dicomml/_optional.py."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_optional.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and \
                node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                if top in OPTIONAL:
                    found.append((path.relative_to(PACKAGE).as_posix(), top))
    return found


def test_optional_packages_are_imported_through_require():
    stray = [f for f in _plain_imports() if f not in SOFT]
    assert not stray, f"import these through dicomml._optional.require: {stray}"


def _error_without(module: str, code: str) -> str:
    """The ImportError message ``code`` raises with ``module`` unimportable."""
    script = (f"import sys\nsys.modules[{module!r}] = None\n"
              "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) +
              "except ImportError as exc:\n    print(exc)\nelse:\n    print('no error')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=PACKAGE.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("module", "code", "message"), [
    ("highdicom", "import dicomml\ndicomml.write_seg(None, None, 'x.dcm')",
     "write_seg() needs highdicom: pip install 'dicomml[seg]'"),
    ("nibabel", "from dicomml.labels.files import read_label_file\n"
                "read_label_file('mask.nii.gz')",
     "NIfTI label files needs nibabel: pip install 'dicomml[labels]'"),
    ("SimpleITK", "from dicomml.labels.files import read_label_file\n"
                  "read_label_file('mask.nrrd')",
     "NRRD / MHA label files needs SimpleITK: pip install 'dicomml[labels]'"),
    ("nibabel", "import numpy as np, dicomml\n"
                "dicomml.Volume(np.zeros((2, 2, 2)), np.eye(4)).to_nifti()",
     "to_nifti() needs nibabel: pip install 'dicomml[nifti]'"),
    ("matplotlib", "import numpy as np, dicomml\n"
                   "dicomml.viz.show_volume(dicomml.Volume(np.zeros((2, 4, 4)), np.eye(4)))",
     "dicomml.viz needs matplotlib: pip install 'dicomml[viz]'"),
    ("nibabel", "from dicomml import conformance\nconformance._canonical(None)",
     "dicomml conformance needs nibabel: pip install 'dicomml[nifti]'"),
])
def test_missing_extra_names_the_extra(module, code, message):
    assert _error_without(module, code) == message
