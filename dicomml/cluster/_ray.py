"""Ray, imported on first use (the ``ray`` extra), and started when no instance is running.

Example
-------
>>> ray = ensure_ray()  # doctest: +SKIP
>>> ray.is_initialized()  # doctest: +SKIP
True
"""

from __future__ import annotations

from dicomml._optional import require


def ray_module():
    """The ``ray`` module, or ImportError naming the ``ray`` extra."""
    return require("ray", extra="ray", needed_by="dicomml.cluster")


def ensure_ray(address: str | None = None):
    """``ray``, connected: the running instance if ``ray.init`` was called, else
    ``ray.init(address)`` (None: the cluster named by ``RAY_ADDRESS``, or a new local one,
    without the dashboard)."""
    ray = ray_module()
    if not ray.is_initialized():
        options = {"include_dashboard": False} if address is None else {}
        ray.init(address=address, **options)
    return ray


def total_cpus(ray) -> int:
    """CPUs of the cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
