"""The layering of docs/architecture.md holds, and every dicomml name the page gives exists.

Imports are read from the source (``ast``), at module level and inside functions alike; the
rank of a package is its row in the architecture table.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest

import dicomml

ROOT = pathlib.Path(dicomml.__file__).parent
DOC = ROOT.parent / "docs" / "architecture.md"

#: the rows of the table in docs/architecture.md: a unit imports only units of lower rank
RANKS = {
    "errors": 0, "_lazy": 0, "_optional": 0, "_columns": 0, "_numbers": 0, "syntaxes": 0,
    "synth": 1, "catalog": 1, "web": 1.5, "decode": 2, "geometry": 3, "volume": 4, "loader": 5,
    "labels": 6, "dataset": 7, "cluster": 8, "transforms": 9, "interop": 10, "viz": 11,
    "convert": 12, "conformance": 12, "demo": 12, "cli": 12, "__main__": 13,
}
#: upward imports made at call time by convenience methods and engine hooks (named in the doc)
ALLOWED_UPWARD = {("dicomml.volume", "interop"),
                  # scan(url) and `dicomml scan URL` hand a DICOMweb server to dicomml.web
                  ("dicomml.catalog.scanner", "web"), ("dicomml.catalog.cli", "web"),
                  # scan(engine="ray") and build_cache(engine="ray") hand the loop to Ray
                  ("dicomml.catalog.scanner", "cluster"), ("dicomml.dataset.cli", "cluster"),
                  ("dicomml.catalog.cli", "cluster")}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """``dicomml.loader.pixels`` -> ``loader``; the root package's names -> their module's."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dicomml"


def _targets(node, module: str, is_package: bool) -> list[str]:
    """The dicomml modules an import statement reaches (``from dicomml import x`` resolved
    through the root package's lazy exports)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".")[: len(module.split(".")) - node.level + is_package]
        return [".".join(base + ([node.module] if node.module else []))]
    if node.module == "dicomml":
        return [dicomml._EXPORTS.get(a.name, f"dicomml.{a.name}") for a in node.names
                if a.name != "__version__"]
    return [node.module or ""]


def _imports() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, path.name == "__init__.py"):
                    if target.startswith("dicomml.") or target == "dicomml":
                        found.append((module, target, node.lineno))
    return found


def test_every_unit_has_a_rank():
    units = {_unit(m) for m, _, _ in _imports()} | {_unit(t) for _, t, _ in _imports()}
    assert units - {"dicomml"} <= set(RANKS)


def test_no_import_runs_back_up():
    upward = []
    for module, target, line in _imports():
        unit, other = _unit(module), _unit(target)
        if unit == other or "dicomml" in (unit, other) or (module, other) in ALLOWED_UPWARD:
            continue
        if RANKS[other] >= RANKS[unit]:
            upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_the_checker_sees_an_upward_import():
    """The rule can fail: a geometry module importing the loader is caught."""
    tree = ast.parse("from dicomml.loader import load_series\nfrom . import affine\n")
    targets = [t for node in tree.body for t in _targets(node, "dicomml.geometry.x", False)]
    assert targets == ["dicomml.loader", "dicomml.geometry"]
    assert RANKS[_unit(targets[0])] > RANKS["geometry"]


def _doc_names() -> list[str]:
    return sorted(set(re.findall(r"`(dicomml(?:\.\w+)+)", DOC.read_text())))


def test_the_doc_names_many_things():
    assert len(_doc_names()) > 30


@pytest.mark.parametrize("name", _doc_names())
def test_every_name_in_the_doc_exists(name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return
    pytest.fail(f"{name} does not exist")


def test_every_file_and_folder_in_the_doc_exists():
    paths = set(re.findall(r"`((?:\w+/)+(?:[\w*]+\.py)?|\w+\.py)`", DOC.read_text()))
    missing = [p for p in paths if not list(ROOT.glob(p.rstrip("/")))
               and not (ROOT.parent / p).exists()]
    assert len(paths) > 10 and missing == []
