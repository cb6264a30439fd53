"""Every docstring example in the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile
from pathlib import Path

import pytest

import dicomml

MODULES = sorted(info.name for info in pkgutil.walk_packages(dicomml.__path__, "dicomml.")
                 if not info.name.endswith("__main__"))


def test_every_module_is_listed():
    assert {"dicomml.decode.located", "dicomml.catalog.header", "dicomml.synth._series",
            "dicomml.loader.pixels"} <= set(MODULES)


def run_doctests(module: str, temp_folder) -> doctest.TestResults:
    """Run ``module``'s docstring examples with tempfile's folder set to ``temp_folder``, so
    that the folders their ``tempfile.mkdtemp()`` calls create land there (examples stay
    short; the test's ``tmp_path`` is cleaned by pytest)."""
    Path(temp_folder).mkdir(parents=True, exist_ok=True)
    saved, tempfile.tempdir = tempfile.tempdir, str(temp_folder)
    try:
        return doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    finally:
        tempfile.tempdir = saved


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module, tmp_path):
    assert run_doctests(module, tmp_path).failed == 0


def test_every_public_name_resolves():
    for name in dicomml.__all__:
        assert getattr(dicomml, name) is not None, name
    assert dicomml.read_many.__module__ == "dicomml.decode.reader"
