"""The Ray engine on a simulated multi-node cluster on this machine (``ray.cluster_utils``:
a head without CPUs and two 1-CPU worker nodes, all on 127.0.0.1): the same catalog and cache
as the local engine, also when a worker node is killed in the middle of a scan and of a cache
build (Ray retries the lost tasks; no cache entry is half-written)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _ray_helpers import (  # noqa: E402
    LOOPBACK,
    assert_same_cache,
    assert_same_catalog,
    reap,
    require_loopback,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(180)  # a Ray hang fails the test instead of stalling CI

import dicomml  # noqa: E402
from dicomml import transforms as T  # noqa: E402
from dicomml.cluster import RayEngine  # noqa: E402
from dicomml.dataset import VolumeCache  # noqa: E402

#: a killed node is declared dead after ~1 s instead of ~15 s (Ray's health-check defaults)
FAST_FAILURE = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head (0 CPUs: tasks run on the workers) + two 1-CPU nodes, shared by the module."""
    from ray.cluster_utils import Cluster

    require_loopback(ray)
    temp = tmp_path_factory.mktemp("ray")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False,
        "temp_dir": str(temp), "_system_config": FAST_FAILURE})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        ray.init(address=cluster.address, _node_ip_address=LOOPBACK, log_to_driver=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        reap(temp)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for i in range(8):
        dicomml.synth.write_series(root / f"s{i}", shape=(16, 8, 8), seed=i)
    return root


def _worker_node(cluster):
    return next(n for n in cluster.worker_nodes)


def _kill_later(cluster, delay: float) -> dict:
    """Remove a worker node (no graceful exit) after ``delay`` s, in a thread. Returns a dict
    that gets the kill time."""
    record = {}

    def kill():
        time.sleep(delay)
        cluster.remove_node(_worker_node(cluster), allow_graceful=False)
        record["killed"] = time.monotonic()

    thread = threading.Thread(target=kill)
    thread.start()
    record["thread"] = thread
    return record


def _slow_parser(seconds: float):
    from dicomml.catalog.header import parse_file_safe

    def parse(path, size=None):
        time.sleep(seconds)
        return parse_file_safe(path, size)

    return parse


def _slow_chain(seconds: float):
    """A cached (deterministic, keyed) chain whose last step takes ``seconds`` per series."""

    class Slow:
        deterministic = True

        def cache_key(self) -> str:
            return "slow"

        def __call__(self, sample):
            time.sleep(seconds)
            return sample

    return T.Compose([T.ResizeTo((4, 8, 8)), Slow()])


def test_cluster_gives_the_local_results(cluster, data, tmp_path):
    assert len(cluster.worker_nodes) == 2 and ray.cluster_resources()["CPU"] == 2
    local = dicomml.scan(data, workers=1, progress=False)
    engine = RayEngine(batch_size=8)
    assert_same_catalog(local, dicomml.scan(data, engine=engine, progress=False))
    assert engine.stats["tasks"] == 16
    chain = _slow_chain(0.0)
    dicomml.build_cache(local, tmp_path / "ray", transform=chain, engine="ray", progress=False)
    dicomml.build_cache(local, tmp_path / "local", transform=chain, workers=0, progress=False)
    assert_same_cache(tmp_path / "ray", tmp_path / "local")


def test_a_node_killed_mid_scan(cluster, data):
    local = dicomml.scan(data, workers=1, progress=False)
    engine = RayEngine(batch_size=4, parse=_slow_parser(0.03))  # ~2 s of parsing per CPU
    kill = _kill_later(cluster, 0.8)
    remote = dicomml.scan(data, engine=engine, progress=False)
    done = time.monotonic()
    kill["thread"].join()
    assert kill["killed"] < done  # the node died while the scan ran
    assert_same_catalog(local, remote)
    cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    cluster.wait_for_nodes()


def test_a_node_killed_mid_cache_build(cluster, data, tmp_path):
    local = dicomml.scan(data, workers=1, progress=False)
    chain = _slow_chain(0.4)  # 8 series, one per task: ~1.6 s per CPU
    kill = _kill_later(cluster, 0.6)
    result = dicomml.build_cache(local, tmp_path / "ray", transform=chain, engine="ray",
                                 progress=False)
    done = time.monotonic()
    kill["thread"].join()
    assert kill["killed"] < done
    assert (result["cached"], result["failed"]) == (8, 0)
    cache = VolumeCache(tmp_path / "ray")
    assert all(cache.load(key) is not None for key in cache.keys())  # whole entries only
    # the same key without the sleep (it changes nothing in the sample): a fast local build
    dicomml.build_cache(local, tmp_path / "local", transform=_slow_chain(0.0), workers=0,
                        progress=False)
    assert_same_cache(tmp_path / "ray", tmp_path / "local")
    # the last test: no replacement node (one started now would be shut down mid-start)
