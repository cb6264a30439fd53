"""Every docstring example in the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dicomml

MODULES = sorted(info.name for info in pkgutil.walk_packages(dicomml.__path__, "dicomml.")
                 if not info.name.endswith("__main__"))


def test_every_module_is_listed():
    assert {"dicomml.decode.located", "dicomml.catalog.header", "dicomml.synth._series",
            "dicomml.loader.pixels"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_name_resolves():
    for name in dicomml.__all__:
        assert getattr(dicomml, name) is not None, name
    assert dicomml.read_many.__module__ == "dicomml.decode.reader"
