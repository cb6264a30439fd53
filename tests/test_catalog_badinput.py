"""Bad input never stops a scan: every damaged file of the shared bad-input corpus
(tests/badfiles.py) lands in ``errors`` (or, for header-valid damage, in ``instances``),
nothing is raised, nothing is written, and the work per file stays bounded."""

from __future__ import annotations

import resource
import time

import pytest
from badfiles import build_corpus, tree_snapshot

from dicomml.catalog import scan
from dicomml.catalog.header import MAX_HEADER_BYTES, parse_file_safe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("bad"))


def test_each_bad_case_alone(corpus):
    for name, case in corpus.items():
        before = tree_snapshot(case.folder)
        cat = scan(case.folder, progress=False)
        assert tree_snapshot(case.folder) == before, name
        errors, instances = set(cat.errors.path), set(cat.instances.path)
        for culprit in map(str, case.culprits):
            in_errors, in_instances = culprit in errors, culprit in instances
            assert in_errors != in_instances, (name, culprit)
            if case.scan == "error":
                assert in_errors, name
            elif case.scan == "ok":
                assert in_instances, name
        reasons = cat.errors.set_index("path").reindex(list(map(str, case.culprits)))
        assert reasons.reason.dropna().str.len().gt(0).all(), name


def test_whole_corpus_in_one_folder(corpus, tmp_path):
    root = next(iter(corpus.values())).folder.parent
    before = tree_snapshot(root)
    start = time.perf_counter()
    cat = scan(root, progress=False, workers=2)
    assert time.perf_counter() - start < 60
    assert tree_snapshot(root) == before
    culprits = {str(c) for case in corpus.values() if case.scan == "error"
                for c in case.culprits}
    assert culprits <= set(cat.errors.path)
    assert len(cat.instances) > 20  # the good files around them are indexed
    assert set(cat.errors.error_type) <= {"NotDicomError", "TruncatedFileError",
                                          "InvalidDicomError", "MissingTagError", "DICOMDIR"}


def test_dicomdir_never_leads_outside(corpus):
    case = corpus["dicomdir_outside"]
    cat = scan(case.folder, progress=False)
    outside = {str(p) for p in case.extra["outside_paths"]}
    assert not outside & set(cat.instances.path)
    assert {str(p) for p in case.extra["inside_paths"]} <= set(cat.instances.path)
    assert list(cat.errors.error_type) == ["DICOMDIR"]


def test_deflate_bomb_is_bounded(corpus):
    bomb = corpus["deflate_bomb"].culprits[0]
    assert corpus["deflate_bomb"].extra["inflated_bytes"] > 2**30
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    row, err = parse_file_safe(str(bomb))
    elapsed = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert row is None and err[0] == "InvalidDicomError" and "inflates beyond" in err[1]
    assert (rss_after - rss_before) * 1024 < 4 * MAX_HEADER_BYTES  # ru_maxrss is in KiB
    assert elapsed < 10
