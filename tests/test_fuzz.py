"""A short, bounded fuzz run of scan / load_series / read_pixels over mutated real files
(benchmarks/fuzz_scan_load.py has the long run), and a check that the harness really pins
hard crashes and hangs on the input that caused them."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_scan_load.py"


@pytest.fixture(scope="module")
def fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_scan_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_pins_crashes_and_hangs(fuzzer, tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMML_FUZZ_SELFTEST", "1")
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "a_empty.dcm").write_bytes(b"")
    (batch / "b_abort.dcm").write_bytes(b"ABORT and more")
    (batch / "c_hang.dcm").write_bytes(b"HANG!")
    (batch / "d_empty.dcm").write_bytes(b"")
    names = sorted(p.name for p in batch.iterdir())
    results = fuzzer.run_batch(batch, names, timeout=5, memory_mb=3072)
    assert results["b_abort.dcm"]["child"].startswith("crash:rc=-6")
    assert results["c_hang.dcm"] == {"child": "hang"}
    assert fuzzer.classify(results["c_hang.dcm"]) == ["hang"]
    for name in ("a_empty.dcm", "d_empty.dcm"):  # before and after the crash and the hang
        # pixels, load, many, and the scan's error record of the file
        assert fuzzer.classify(results[name]) == ["typed"] * 4, results[name]
        assert results[name]["scan_record"] == "E:NotDicomError"
    assert fuzzer.classify(results["scan"]) == ["ok"]


def test_mutations_change_real_files_and_hit_length_fields(fuzzer, tmp_path):
    seeds = fuzzer.seed_files(tmp_path)
    assert len(seeds) >= 8
    rng = random.Random(0)
    recipes, changed = [], 0
    for _ in range(200):
        data = seeds[rng.randrange(len(seeds))]
        mutated, recipe = fuzzer.mutate(data, rng)
        changed += mutated != data
        recipes += recipe
    assert changed > 180  # a length overwritten with its own value is a rare no-op
    kinds = {r.split("@")[0] for r in recipes}
    assert {"flip", "length", "truncate", "value", "delete", "duplicate"} <= kinds
    assert fuzzer.element_length_fields(seeds[0])  # the explicit VR walk finds headers


def test_short_fuzz_run_finds_no_crash_hang_or_untyped_error(fuzzer, tmp_path):
    summary = fuzzer.fuzz(30, seed=20261126, batch_size=30, timeout=30, work=tmp_path)
    outcomes = summary["outcomes"]
    # one batch scan; pixels, load and many per input; rows and the in-process dataset item
    # for those the scan catalogued (the scan's error record for the others), and the
    # DataLoader worker's item once per series (on its first file)
    assert 3 * 30 + 1 < sum(outcomes.values()) <= 6 * 30 + 1, outcomes
    assert summary["findings"] == [], summary["findings"]
