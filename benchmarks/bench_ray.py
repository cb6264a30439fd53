"""Ray engine benchmark: scan and cache build, local engine vs Ray, in one run.

Corpus: bench_scan.py's (``make_corpus``: 100 small 64x64 files per series, cached in the
system temp folder, never in the repo; 20,000 files by default). Every Ray process stays on
127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before ``import ray``). Reports, as ratios
measured in this one run (best of ``--repeat`` rounds):

- scan: the local engine (1 process; a 2-process pool) vs the Ray engine on a local
  instance with 2 CPUs (tasks asking for 2 CPUs = 1 CPU; 1 CPU = 2 in parallel): Ray's
  overhead at equal CPUs (target <= 1.3x) and its 1 -> 2 CPU scaling (target >= 1.7x);
- cache build (``build_cache`` of every series, no transform): the same comparisons;
- a simulated cluster (``ray.cluster_utils.Cluster``: a head without CPUs + 1, then 2,
  1-CPU nodes): scan and cache build on 1 node vs 2 nodes (target >= 1.7x);
- Ray's task overhead: no-op tasks per second, and the batch size the engine measured;
- files/s per node (1-CPU node) and the hours for 1,000,000 files on N nodes that follow.

On a 2-core machine shared with other work, 2-CPU figures are bounded by the free cores:
the load average is printed before and after; read the ratios with it.

Usage::

    python benchmarks/bench_ray.py                     # 20,000 files
    python benchmarks/bench_ray.py --files 2000 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported
LOOPBACK = "127.0.0.1"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ray  # noqa: E402
from bench_scan import make_corpus  # noqa: E402

import dicomml  # noqa: E402
from dicomml.cluster import RayEngine  # noqa: E402
from dicomml.cluster.cache import warm_cache_ray  # noqa: E402
from dicomml.dataset._core import SeriesSource  # noqa: E402
from dicomml.dataset.cli import warm_cache  # noqa: E402


def best(repeat: int, run) -> float:
    """The shortest of ``repeat`` wall-clock times of ``run()`` (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def scan_local(root, workers):
    return lambda: dicomml.scan(root, workers=workers, progress=False)


def scan_ray(root, cpus_per_task=1, stats=None):
    def run():
        engine = RayEngine(num_cpus=cpus_per_task)
        dicomml.scan(root, engine=engine, progress=False)
        if stats is not None:
            stats.update(engine.stats)
    return run


def cache_local(catalog, workers, folder):
    def run():
        shutil.rmtree(folder, ignore_errors=True)
        warm_cache(SeriesSource(catalog, cache_dir=folder), workers=workers, progress=False)
    return run


def cache_ray(catalog, folder, cpus_per_task=1):
    def run():
        shutil.rmtree(folder, ignore_errors=True)
        warm_cache_ray(SeriesSource(catalog, cache_dir=folder), progress=False,
                       num_cpus=cpus_per_task)
    return run


def noop(x):
    return x


def tasks_per_second(n: int = 2000) -> float:
    task = ray.remote(noop)
    ray.get([task.remote(i) for i in range(100)])  # warm the workers
    start = time.perf_counter()
    ray.get([task.remote(i) for i in range(n)])
    return n / (time.perf_counter() - start)


def local_instance(root, catalog, repeat, work) -> dict:
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address=LOOPBACK,
             log_to_driver=False)
    try:
        out, stats = {}, {}
        scan_ray(root)()  # warm: workers started, modules imported
        cache_ray(catalog, work / "c")()
        out["ray scan 1 CPU"] = best(repeat, scan_ray(root, cpus_per_task=2))
        out["ray scan 2 CPUs"] = best(repeat, scan_ray(root, stats=stats))
        out["ray cache 1 CPU"] = best(repeat, cache_ray(catalog, work / "c", cpus_per_task=2))
        out["ray cache 2 CPUs"] = best(repeat, cache_ray(catalog, work / "c"))
        out["tasks/s"] = tasks_per_second()
        out["stats"] = stats
        return out
    finally:
        ray.shutdown()


def simulated_nodes(root, catalog, repeat, work) -> dict:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        ray.init(address=cluster.address, _node_ip_address=LOOPBACK, log_to_driver=False)
        cluster.wait_for_nodes()
        out = {}
        scan_ray(root)()
        cache_ray(catalog, work / "c")()
        out["scan 1 node"] = best(repeat, scan_ray(root))
        out["cache 1 node"] = best(repeat, cache_ray(catalog, work / "c"))
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes()
        scan_ray(root)()
        cache_ray(catalog, work / "c")()
        out["scan 2 nodes"] = best(repeat, scan_ray(root))
        out["cache 2 nodes"] = best(repeat, cache_ray(catalog, work / "c"))
        return out
    finally:
        ray.shutdown()
        cluster.shutdown()


def report(n: int, series: int, t: dict, nodes: dict) -> None:
    def row(name, seconds, unit_count, unit):
        print(f"  {name:<28} {seconds:7.2f} s  {unit_count / seconds:9.0f} {unit}/s")

    print(f"scan of {n} files:")
    for name in ("local 1 process", "local 2 processes", "ray scan 1 CPU", "ray scan 2 CPUs",
                 "scan 1 node", "scan 2 nodes"):
        row(name, {**t, **nodes}[name], n, "files")
    print(f"cache build of {series} series ({n} files):")
    for name in ("local cache 1 process", "local cache 2 processes", "ray cache 1 CPU",
                 "ray cache 2 CPUs", "cache 1 node", "cache 2 nodes"):
        row(name, {**t, **nodes}[name], series, "series")
    print("ratios (this run):")
    print(f"  scan  ray/local at 1 CPU  {t['ray scan 1 CPU'] / t['local 1 process']:.2f}x, "
          f"at 2 CPUs {t['ray scan 2 CPUs'] / t['local 2 processes']:.2f}x (target <= 1.3)")
    print(f"  cache ray/local at 1 CPU  {t['ray cache 1 CPU'] / t['local cache 1 process']:.2f}x,"
          f" at 2 CPUs {t['ray cache 2 CPUs'] / t['local cache 2 processes']:.2f}x "
          "(target <= 1.3)")
    print(f"  scan  1 -> 2 CPUs {t['ray scan 1 CPU'] / t['ray scan 2 CPUs']:.2f}x, "
          f"1 -> 2 nodes {nodes['scan 1 node'] / nodes['scan 2 nodes']:.2f}x (target >= 1.7)")
    print(f"  cache 1 -> 2 CPUs {t['ray cache 1 CPU'] / t['ray cache 2 CPUs']:.2f}x, "
          f"1 -> 2 nodes {nodes['cache 1 node'] / nodes['cache 2 nodes']:.2f}x (target >= 1.7)")
    stats = t["stats"]
    print(f"ray tasks: {t['tasks/s']:.0f} no-op tasks/s; the engine measured "
          f"{1e3 * stats['seconds_per_file']:.3f} ms/file and sent {stats['tasks']} tasks "
          f"(last batch {stats['batch_size']} files)")
    scan_rate = n / nodes["scan 1 node"]
    cache_rate = n / nodes["cache 1 node"]
    print(f"per 1-CPU node: scan {scan_rate:.0f} files/s, cache build {cache_rate:.0f} files/s")
    for count in (1, 4, 16, 64):
        print(f"  1,000,000 files on {count:2d} such nodes (linear): scan "
              f"{1e6 / (scan_rate * count) / 60:6.1f} min, cache build "
              f"{1e6 / (cache_rate * count) / 60:6.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the corpus' synthetic geometry warns on every load
    root = make_corpus(args.files)
    print(f"corpus {root}; {os.cpu_count()} cores; load average {load()} (start)")
    catalog = dicomml.scan(root, workers=1, progress=False)
    cache_local(catalog, 0, Path(tempfile.gettempdir()) / "dicomml_bench_ray_warm")()  # warm
    shutil.rmtree(Path(tempfile.gettempdir()) / "dicomml_bench_ray_warm", ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="dicomml_bench_ray_"))
    try:
        t = {"local 1 process": best(args.repeat, scan_local(root, 1)),
             "local 2 processes": best(args.repeat, scan_local(root, 2)),
             "local cache 1 process": best(args.repeat, cache_local(catalog, 0, work / "c")),
             "local cache 2 processes": best(args.repeat, cache_local(catalog, 2, work / "c"))}
        t.update(local_instance(root, catalog, args.repeat, work))
        nodes = simulated_nodes(root, catalog, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args.files, len(catalog.series), t, nodes)
    print(f"load average {load()} (end)")


if __name__ == "__main__":
    main()
